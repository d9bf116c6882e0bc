#!/usr/bin/env python
"""On-device colorization with a pix2color .tflite file: LiteRT, numpy and Pillow only.

    python export/colorize_tflite.py exported/tflite/generator_deterministic_float32.tflite photo.jpg -o out/

No TensorFlow is imported. On a device without pix2color installed, copy `pix2color/lite.py`
(self-contained) next to the model and run `python lite.py MODEL PHOTO... -o OUT` instead.
The input/output tensor contract is in `pix2color/lite.py` and docs/export.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not

from pix2color.lite import main  # noqa: E402 - numpy, Pillow and LiteRT only

if __name__ == "__main__":
    sys.exit(main())
