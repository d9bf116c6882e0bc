"""Colorize photos and videos at their full resolution with a trained generator (`pix2color colorize`).

The network sees the photo's lightness resized to its training size S; the predicted ab is
upsampled to the photo's size and recombined with the photo's own full-resolution L, so edges
stay as sharp as the original (the recipe lives in `pix2color.lite`, shared with the TFLite path).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pix2color.lite import DEFAULT_MAX_PIXELS, FullResolutionColorizer, ImageError, read_image
from pix2color.video import DEFAULT_CRF, VIDEO_SUFFIXES, VideoError, colorize_video, is_video, video_output_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")  # Pillow reads TIFF too
OUTPUT_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}



def expand_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Files, folders (recursive: photos and videos) and globs -> [(file, path relative to its input)], unmatched."""
    from pix2color.data import list_image_files

    found, missing = [], []
    for item in inputs:
        matches = sorted(glob.glob(item, recursive=True)) if glob.has_magic(item) else [item]
        matches = [match for match in matches if os.path.exists(match)]
        if not matches:
            missing.append(item)
        for match in matches:
            path = Path(match)
            if path.is_dir():
                files = [Path(p) for p in list_image_files(path, IMAGE_SUFFIXES + VIDEO_SUFFIXES)]
                found += [(p, p.relative_to(path)) for p in files]
            else:
                found.append((path, Path(path.name)))
    return found, missing


def output_path(out: Path, relative: Path, image_format: str) -> Path:
    suffix = relative.suffix.lower().lstrip(".")
    if image_format == "same":
        image_format = {"jpeg": "jpg"}.get(suffix, suffix) if suffix in ("jpg", "jpeg", "png", "webp") else "png"
    return out / relative.with_suffix(f".{image_format}")


def save_image(rgb: np.ndarray, path: Path, quality: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image_format = OUTPUT_FORMATS[path.suffix.lstrip(".")]
    options = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    Image.fromarray(rgb).save(path, image_format, **options)


def side_by_side(*images: np.ndarray) -> np.ndarray:
    return np.concatenate(images, axis=1)


@dataclass
class ColorizeReport:
    written: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one line per file that could not be colorized


def colorize_files(
    files: list[tuple[Path, Path]],
    out: str | os.PathLike,
    recipe: FullResolutionColorizer,
    batch_size: int = 8,
    image_format: str = "same",
    quality: int = 95,
    compare: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_error: Callable[[str], None] = lambda message: None,
    on_progress: Callable[[int], None] = lambda count: None,
) -> ColorizeReport:
    """Colorize (file, relative output path) pairs from `expand_inputs` into `out`, a batch at a time.

    A file that cannot be read is reported (`on_error`, one line naming it) and skipped; the
    others still complete. `compare` also writes NAME_compare.jpg: grayscale | colorized | input.
    """
    out = Path(out)
    report = ColorizeReport()
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        readable, images = [], []
        for path, relative in chunk:
            try:
                images.append(read_image(path, max_pixels))
                readable.append(relative)
            except ImageError as error:
                report.failed.append(str(error))
                on_error(str(error))
        if images:
            for relative, image, result in zip(readable, images, recipe.colorize_batch(images)):
                target = output_path(out, relative, image_format)
                save_image(result, target, quality)
                report.written.append(target)
                if compare:
                    comparison = side_by_side(recipe.grayscale(image), result, image)
                    save_image(comparison, target.with_name(f"{target.stem}_compare.jpg"), quality)
        on_progress(len(chunk))
    return report


def split_photos_and_videos(files: list[tuple[Path, Path]]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    videos = [item for item in files if is_video(item[0], IMAGE_SUFFIXES)]
    return [item for item in files if item not in videos], videos


class _NoProgress:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def colorize_videos(
    files: list[tuple[Path, Path]],
    out: str | os.PathLike,
    recipe: FullResolutionColorizer,
    batch_size: int = 8,
    video_format: str = "mp4",
    codec: str | None = None,
    crf: int = DEFAULT_CRF,
    stabiliser_factory: Callable[[], Callable] | None = None,
    on_error: Callable[[str], None] = lambda message: None,
    on_note: Callable[[str], None] = lambda message: None,
    progress: Callable[[str, int | None], object] = lambda name, total: _NoProgress(),
) -> ColorizeReport:
    """Colorize videos one after the other into OUT/<name>.<video_format>.

    `stabiliser_factory()` makes a fresh stabiliser per video (None: frame by frame).
    `progress(name, total_frames)` returns a bar with `update(n)` and `close()` (tqdm's).
    A video that cannot be opened, or that ends early (its decodable frames are still written),
    is reported through `on_error` in one line; the others still complete.
    """
    out = Path(out)
    report = ColorizeReport()
    for path, relative in files:
        bar = None

        def start(total, path=path):
            nonlocal bar
            bar = progress(str(path), total)

        try:
            result = colorize_video(
                path, video_output_path(out, relative, video_format), recipe, batch_size,
                stabiliser_factory() if stabiliser_factory else None, codec, crf,
                on_start=start, on_frames=lambda count: bar.update(count),
            )
        except VideoError as error:
            report.failed.append(str(error))
            on_error(str(error))
            continue
        except OSError as error:  # the output side: disk full, no permission, ...
            message = f"{path}: could not write {video_output_path(out, relative, video_format)}: {error.strerror or error}"
            report.failed.append(message)
            on_error(message)
            continue
        finally:
            if bar is not None:
                bar.close()
        report.written.append(result.target)
        for note in result.notes:
            on_note(f"{path}: {note}")
        if result.problem:
            report.failed.append(result.problem)
            on_error(result.problem)
    return report
