"""Builds the command line parser of every `pix2color` command, then prints which of TensorFlow
and Keras that imported: `[]`, so that `--help` and a refused flag answer at once.

Run in a fresh process by tests/cli/test_bad_inputs.py
(`test_building_a_command_line_parser_imports_no_tensorflow`): python build_every_parser.py
"""

import importlib
import sys

for name in ('train', 'colorize', 'export', 'evaluate', 'ablation', 'plots', 'serve', 'turing'):
    importlib.import_module('pix2color.cli.' + name).build_parser()
print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))
