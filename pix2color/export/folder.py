"""An export folder, written whole: `savedmodel/` (for serving) and `tflite/` (for phones).

    pix2color export --model runs/pix2color --out exported --formats savedmodel,tflite
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from pix2color.colorizing.loading import MODES, load_generator
from pix2color.export.one_file import DEVICE_RUNNER, NOT_REPLACEABLE, is_unedited_runner
from pix2color.export.savedmodel import export_savedmodel, not_an_export
from pix2color.export.tflite import TFLITE_VARIANTS, export_tflite

FORMATS = ("savedmodel", "tflite")


def export(model: str, out: str, formats=FORMATS, variants=TFLITE_VARIANTS, modes=MODES, log=print,
           overwrite: bool = False):
    """Library entry: load a generator (run folder or .keras) and write the requested formats."""
    return export_generator(load_generator(model), out, formats, variants, modes, log, overwrite)


def export_targets(out: str | Path, formats=FORMATS, variants=TFLITE_VARIANTS, modes=MODES) -> list[Path]:
    """The files and folders an export writes (to check, before any work, that none exists)."""
    out = Path(out)
    targets = [out / "savedmodel"] if "savedmodel" in formats else []
    if "tflite" in formats:
        targets += [out / "tflite" / f"generator_{mode}_{variant}.tflite" for mode in modes for variant in variants]
        targets.append(out / "tflite" / DEVICE_RUNNER)
    return targets


def not_written_by_export(target: Path) -> list[str]:
    """What in `target` (one of `export_targets`) no export wrote: [] when `--overwrite` may replace
    it. A savedmodel/ folder may hold an export's files only, a runner must be as an export signed
    it (not one of the user's, nor one they edited), and every other target must be a file."""
    if not os.path.lexists(target):
        return []
    if target.name == "savedmodel":
        return not_an_export(target)
    if target.is_symlink() or not target.is_file():
        return ["not a file"]
    if target.name == DEVICE_RUNNER and not is_unedited_runner(target):
        return [NOT_REPLACEABLE]
    return []


def refuse_what_no_export_wrote(targets: list[Path]) -> None:
    """`FileExistsError` naming the first target `--overwrite` must leave as it is, if any."""
    for target in targets:
        foreign = not_written_by_export(target)
        if foreign:
            raise FileExistsError(errno.EEXIST, f"holds what no export writes ({', '.join(foreign[:3])}): left as it is, "
                                                "--overwrite or not; choose another --out", str(target))


def export_generator(generator, out: str, formats=FORMATS, variants=TFLITE_VARIANTS, modes=MODES,
                     log=print, overwrite: bool = False) -> list[Path]:
    """Write the requested formats into `out`; what exists is replaced only with `overwrite`, and
    never what no export wrote (checked before any work)."""
    out_dir = Path(out)
    refuse_what_no_export_wrote(export_targets(out, formats, variants, modes))
    written = []
    if "savedmodel" in formats:
        written.append(export_savedmodel(generator, out_dir / "savedmodel", overwrite))
        log(f"wrote {written[-1]}")
    if "tflite" in formats:
        written += export_tflite(generator, out_dir / "tflite", variants, modes, log, overwrite)
    return written
