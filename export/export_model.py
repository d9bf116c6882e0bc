#!/usr/bin/env python
"""Export a trained generator: `python export/export_model.py --model RUN --out DIR`.

The same as `pix2color export`; see `pix2color/export/` and `pix2color/cli/export.py`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not

from pix2color.cli.export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
