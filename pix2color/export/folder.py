"""An export folder, written whole: `savedmodel/` (for serving) and `tflite/` (for phones).

    pix2color export --model runs/pix2color --out exported --formats savedmodel,tflite
"""

from __future__ import annotations

from pathlib import Path

from pix2color.colorizing.loading import MODES, load_generator
from pix2color.export.one_file import DEVICE_RUNNER
from pix2color.export.savedmodel import export_savedmodel
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


def export_generator(generator, out: str, formats=FORMATS, variants=TFLITE_VARIANTS, modes=MODES,
                     log=print, overwrite: bool = False) -> list[Path]:
    out_dir = Path(out)
    written = []
    if "savedmodel" in formats:
        written.append(export_savedmodel(generator, out_dir / "savedmodel", overwrite))
        log(f"wrote {written[-1]}")
    if "tflite" in formats:
        written += export_tflite(generator, out_dir / "tflite", variants, modes, log, overwrite)
    return written
