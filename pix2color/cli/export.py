"""`pix2color export` / `python export/export_model.py`: SavedModel and TFLite files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pix2color import export
from pix2color.cli import ArgumentParser, RawHelpFormatter, command
from pix2color.colorizing.loading import MODES
from pix2color.export import folder
from pix2color.export.folder import FORMATS
from pix2color.export.tflite import TFLITE_VARIANTS

PROG = "pix2color export"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=export.__doc__, formatter_class=RawHelpFormatter)
    parser.add_argument("--model", default="runs/pix2color", help="run folder or .keras generator")
    parser.add_argument("--out", default="exported", help="output folder: savedmodel/ and tflite/ inside it")
    parser.add_argument("--formats", default="savedmodel,tflite", help="comma-separated: " + ", ".join(FORMATS))
    parser.add_argument("--variants", default=",".join(TFLITE_VARIANTS), help="TFLite variants, comma-separated")
    parser.add_argument("--modes", default=",".join(MODES), help="inference modes to export to TFLite")
    parser.add_argument("--overwrite", action="store_true", help="replace files an earlier export wrote there")
    return parser


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    formats, variants, modes = (tuple(v for v in s.split(",") if v) for s in (args.formats, args.variants, args.modes))
    for name, values, allowed in (("--formats", formats, FORMATS), ("--variants", variants, TFLITE_VARIANTS),
                                  ("--modes", modes, MODES)):
        unknown = sorted(set(values) - set(allowed))
        if unknown or not values:
            parser.error(f"{name}: " + (f"unknown {', '.join(unknown)}" if unknown else "none given")
                         + f" (choose from {', '.join(allowed)})")
    if not args.out.strip():
        parser.error("--out is empty (an unset variable?): give a folder, . for the current one")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"--out {args.out}: is a file, not a folder")
    targets = folder.export_targets(args.out, formats, variants, modes)
    existing = [str(path) for path in targets if os.path.lexists(path)]
    if existing and not args.overwrite:
        parser.error(f"{existing[0]} exists (an earlier export?): --overwrite replaces it, or choose another --out")
    try:  # --overwrite replaces what an export wrote, never a folder or file of the user's
        folder.refuse_what_no_export_wrote(targets)
    except FileExistsError as error:
        parser.error(f"{error.filename} {error.strerror}")

    from pix2color.quiet import import_quietly

    import_quietly()
    from pix2color.colorizing.loading import load_generator

    try:
        generator = load_generator(args.model, log=print)
        folder.export_generator(generator, args.out, formats, variants, modes, overwrite=args.overwrite)
    except ValueError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: cannot write {error.filename or args.out}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0
