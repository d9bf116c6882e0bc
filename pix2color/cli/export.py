"""`pix2color export` / `python export/export_model.py`: SavedModel and TFLite files."""

from __future__ import annotations

import argparse
import sys

from pix2color import export
from pix2color.export import FORMATS, TFLITE_VARIANTS
from pix2color.loading import MODES
from pix2color.quiet import import_quietly


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pix2color export", description=export.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/pix2color", help="run folder or .keras generator")
    parser.add_argument("--out", default="exported", help="output folder")
    parser.add_argument("--formats", default="savedmodel,tflite", help="comma-separated: " + ", ".join(FORMATS))
    parser.add_argument("--variants", default=",".join(TFLITE_VARIANTS), help="TFLite variants")
    parser.add_argument("--modes", default=",".join(MODES), help="inference modes to export to TFLite")
    args = parser.parse_args(argv)
    formats, variants, modes = (tuple(v for v in s.split(",") if v) for s in (args.formats, args.variants, args.modes))
    for name, values, allowed in (("--formats", formats, FORMATS), ("--variants", variants, TFLITE_VARIANTS),
                                  ("--modes", modes, MODES)):
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            parser.error(f"{name}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")

    import_quietly()
    from pix2color.loading import load_generator

    try:
        generator = load_generator(args.model)
    except (ValueError, OSError) as error:
        print(f"pix2color export: error: {error}", file=sys.stderr)
        return 2
    export.export_generator(generator, args.out, formats, variants, modes)
    return 0

