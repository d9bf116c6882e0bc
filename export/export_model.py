#!/usr/bin/env python
"""Export a trained generator: `python export/export_model.py --model RUN --out DIR`.

The same as `pix2color export`; see `pix2color/export.py` and `pix2color/cli/export.py`.
"""

import sys

from pix2color.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
