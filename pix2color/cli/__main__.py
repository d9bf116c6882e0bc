"""`python -m pix2color.cli COMMAND ...` (the same as `pix2color COMMAND ...`)."""

import sys

from pix2color.cli import main

sys.exit(main())
