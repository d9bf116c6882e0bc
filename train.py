#!/usr/bin/env python
"""Train pix2color: `python train.py --gamma 0.001` trains the report's final model.

See `python train.py --help`; this file only calls `pix2color.cli.train.main`.
"""

import sys

from pix2color.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
