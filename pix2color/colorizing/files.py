"""Colorize photos and videos at their full resolution with a trained generator (`pix2color colorize`).

The network sees the photo's lightness resized to its training size S; the predicted ab is
upsampled to the photo's size and recombined with the photo's own full-resolution L, so edges
stay as sharp as the original (`pix2color.colorizing.recipe.FullResolutionColorizer`, the recipe the LiteRT
runner uses too).
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pix2color.colorizing.recipe import FullResolutionColorizer
from pix2color.colorizing.video import DEFAULT_CRF, VIDEO_SUFFIXES, VideoError, colorize_video, is_video
from pix2color.errors import first_line
from pix2color.outputs import OutputExists, Planned, Wanted, exists_message, plan_outputs, quoted, write_output
from pix2color.photos import (
    DEFAULT_MAX_PIXELS,
    SOFTWARE,
    ImageError,
    Photo,
    TooManyPixels,
    not_a_file,
    output_exif,
    read_photo,
    srgb_profile,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")  # Pillow reads TIFF too
# Looked at in a folder besides those: more formats Pillow reads (AVIF), and photos it cannot (HEIC,
# JPEG XL, camera raw), each then one line, never a video.
PHOTO_SUFFIXES = IMAGE_SUFFIXES + (".avif", ".jfif", ".jp2", ".heic", ".heif", ".jxl", ".dng", ".cr2", ".cr3", ".nef",
                                   ".arw", ".orf", ".rw2", ".raf")
OUTPUT_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}


def expand_inputs(inputs: list[str], out: str | os.PathLike | None = None) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Files, folders (recursive: photos and videos) and globs -> [(file, its output's path below
    the output folder, before the suffix)], and one line for each input that cannot be read.

    A folder's files keep their folders below it, a glob's matches their folders below the glob's
    leading folders without wildcards (`photos/**/*.jpg` keeps those below photos/), and a file
    named on its own its name: so outputs do not collide where the inputs did not. Each file is
    listed once, however many inputs name it. An input that names nothing, and anything named
    like a photo or a video that is not a regular file (a broken symlink, a FIFO, which would
    block its reader, a socket, a device, a symlinked folder, which is not searched) is a line.
    A folder's search leaves out the output folder `out` and the images an earlier run wrote (their
    EXIF says so: `made_by_pix2color`), so that running again finds the same inputs, and skips
    them when their outputs exist.
    """
    found, failed, seen = [], [], set()
    left_out = os.path.realpath(out) if out is not None and os.fspath(out).strip() else None
    for item in inputs:
        matches, base = _matches(item)
        if not matches:
            failed.append(f"{quoted(item)}: no such file or no match")
        for path, relative in itertools.chain.from_iterable(_files_of(Path(m), base, failed, left_out)
                                                            for m in matches):
            if os.path.realpath(path) not in seen:
                seen.add(os.path.realpath(path))
                found.append((path, relative))
    return found, failed


def _matches(item: str) -> tuple[list[str], Path | None]:
    """The paths an input names (broken symlinks included), and the folder a glob's matches are
    relative to."""
    if not glob.has_magic(item):
        return ([item] if os.path.lexists(item) else []), None
    literal = itertools.takewhile(lambda part: not glob.has_magic(part), Path(item).parts[:-1])
    return sorted(glob.glob(item, recursive=True)), Path(*literal)


def _files_of(path: Path, base: Path | None, failed: list[str], left_out: str | None = None) -> list[tuple[Path, Path]]:
    """The regular files `path` names (itself, or the photos and videos below a folder, but for
    `left_out` and an earlier run's outputs); a line in `failed` for each other thing."""
    if not path.is_dir():
        problem = not_a_file(path)
        if problem:
            failed.append(f"{quoted(path)}: {problem}")
            return []
        return [(path, _below(path, base) if base is not None else Path(path.name))]
    files = []
    for directory, subfolders, names in os.walk(path):
        subfolders[:] = [name for name in subfolders if os.path.realpath(os.path.join(directory, name)) != left_out]
        for name in [name for name in subfolders if os.path.islink(os.path.join(directory, name))]:
            failed.append(f"{quoted(os.path.join(directory, name))}: a symlink to a folder, not searched")
        for name in names:
            file = Path(directory, name)
            if file.suffix.lower() not in PHOTO_SUFFIXES + VIDEO_SUFFIXES:
                continue
            problem = not_a_file(file)  # first: a FIFO would block the reader of its header
            if problem:
                failed.append(f"{quoted(file)}: {problem}")
            elif not (file.suffix.lower() in IMAGE_SUFFIXES and made_by_pix2color(file)):
                files.append(file)
    return [(file, _below(file, path if base is None else base)) for file in sorted(files, key=str)]


def _below(path: Path, root: Path) -> Path:
    relative = Path(os.path.relpath(path, root))
    return Path(path.name) if ".." in relative.parts else relative


def output_name(relative: Path, image_format: str) -> Path:
    """A photo's output path below the output folder: `relative` with the suffix `image_format`
    asks for ('same' keeps jpg/png/webp and writes png otherwise)."""
    suffix = relative.suffix.lower().lstrip(".")
    if image_format == "same":
        image_format = {"jpeg": "jpg"}.get(suffix, suffix) if suffix in ("jpg", "jpeg", "png", "webp") else "png"
    return relative.with_suffix(f".{image_format}")


def plan(photos: list[tuple[Path, Path]], videos: list[tuple[Path, Path]], out: str | os.PathLike,
         image_format: str = "same", video_format: str = "mp4", compare: bool = False,
         overwrite: bool = False) -> tuple[list[Planned], list[Planned]]:
    """Every input's outputs (`pix2color.outputs.plan_outputs`' rules), photos and videos planned
    together so that they never share an output either."""
    wanted = [Wanted(path, output_name(relative, image_format), compare) for path, relative in photos]
    wanted += [Wanted(path, relative.with_suffix(f".{video_format}")) for path, relative in videos]
    planned = plan_outputs(wanted, out, overwrite)
    return planned[: len(photos)], planned[len(photos) :]


def save_image(rgb: np.ndarray, path: Path, quality: int, overwrite: bool = False, photo: Photo | None = None) -> None:
    """`rgb` in the format the suffix names, with `pix2color.outputs.write_output`'s rule, carrying
    what `photo`, its input, had: its EXIF (Orientation 1, no thumbnail), DPI, transparency (PNG
    and WebP) and, if it had an ICC profile, an sRGB one (its pixels were converted to sRGB);
    a lossless WebP stays lossless."""
    from PIL import Image

    image_format = OUTPUT_FORMATS[path.suffix.lstrip(".")]
    image = Image.fromarray(rgb)
    options = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    options["exif"] = photo.exif if photo is not None and photo.exif else output_exif()
    if photo is not None:
        if photo.alpha is not None and image_format in ("PNG", "WEBP"):
            image.putalpha(Image.fromarray(photo.alpha))
        if photo.dpi and image_format in ("JPEG", "PNG"):
            options["dpi"] = photo.dpi
        if photo.icc_profile:
            options["icc_profile"] = srgb_profile()
        if image_format == "WEBP" and photo.lossless:
            options = {**options, "lossless": True, "quality": 100}
    write_output(path, lambda handle: image.save(handle, image_format, **options), overwrite)


def made_by_pix2color(path: str | os.PathLike) -> bool:
    """An image an earlier run wrote: its EXIF Software says pix2color (read from its header)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return str(image.getexif().get(0x0131, "")).startswith(SOFTWARE)
    except Exception:  # noqa: BLE001 - anything Pillow cannot open is no output of ours
        return False


def carried_notes(photo: Photo, source: Path) -> list[str]:
    """What of an input its output does not carry, one line each (its transparency: `ColorizeReport.alpha_lost`)."""
    return [f"{quoted(source)}: {photo.frames} pages or frames; the first is colorized"] if photo.frames > 1 else []


def keeps_alpha(path: Path) -> bool:
    return OUTPUT_FORMATS[path.suffix.lstrip(".")] in ("PNG", "WEBP")


def side_by_side(*images: np.ndarray) -> np.ndarray:
    return np.concatenate(images, axis=1)


@dataclass
class ColorizeReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # outputs that appeared after the plan: left alone
    failed: list[str] = field(default_factory=list)  # one line per file that could not be colorized or written
    notes: list[str] = field(default_factory=list)  # one line per input whose output cannot carry all it had
    alpha_lost: list[Path] = field(default_factory=list)  # inputs with transparency written where none is kept
    compare_failed: list[str] = field(default_factory=list)  # NAME_compare.jpg that could not be written


def colorize_files(
    planned: list[Planned],
    recipe: FullResolutionColorizer,
    batch_size: int = 8,
    quality: int = 95,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_error: Callable[[str], None] = lambda message: None,
    on_skip: Callable[[str], None] = lambda message: None,
    on_progress: Callable[[int], None] = lambda count: None,
) -> ColorizeReport:
    """Colorize photos planned by `plan` (those without a target are skipped), a batch at a time.

    A file that cannot be read or written is reported (`on_error`, one line naming it); an output
    that appeared since the plan is left alone (`on_skip`); the others still complete. Where
    planned, NAME_compare.jpg is written too: grayscale | colorized | input.
    """
    todo = [item for item in planned if item.target is not None]
    report = ColorizeReport()
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        readable, photos = [], []
        for item in chunk:
            try:
                photos.append(read_photo(item.source, max_pixels))
                readable.append(item)
            except ImageError as error:
                message = str(error) + ("; --max-pixels raises the limit" if isinstance(error, TooManyPixels) else "")
                report.failed.append(message)
                on_error(message)
        results = recipe.colorize_batch([photo.rgb for photo in photos]) if photos else []
        for item, photo, result in zip(readable, photos, results):
            save = _Saver(item, report, quality, overwrite, on_error, on_skip)
            if save(result, item.target, photo):
                report.written.append(item.target)
                report.notes += carried_notes(photo, item.source)
                if photo.alpha is not None and not keeps_alpha(item.target):
                    report.alpha_lost.append(item.source)
                if item.compare:
                    save(side_by_side(recipe.grayscale(photo.rgb), result, photo.rgb), item.compare)
        on_progress(len(chunk))
    return report


@dataclass
class _Saver:
    """Saves one input's outputs; a failure or a name taken since the plan becomes one line."""

    item: Planned
    report: ColorizeReport
    quality: int
    overwrite: bool
    on_error: Callable[[str], None]
    on_skip: Callable[[str], None]

    def __call__(self, rgb: np.ndarray, path: Path, photo: Photo | None = None) -> bool:
        try:
            save_image(rgb, path, self.quality, self.overwrite, photo)
            return True
        except OutputExists:
            if path == self.item.target:
                self.report.skipped.append(path)
            self.on_skip(exists_message(path))
        except (OSError, ValueError) as error:  # ValueError: what the encoder refuses (WebP over 16383 px, ...)
            reason = getattr(error, "strerror", None) or first_line(error)
            message = f"{quoted(self.item.source)}: could not write {quoted(path)}: {reason}"
            # Inputs are counted once: a comparison image that fails beside a written output is counted apart.
            (self.report.failed if path == self.item.target else self.report.compare_failed).append(message)
            self.on_error(message)
        return False


def split_photos_and_videos(files: list[tuple[Path, Path]]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """Photos are what Pillow opens (AVIF included) or is named like a photo (HEIC: then one line
    when it is read); videos the rest that FFmpeg finds a video stream in."""
    videos = [item for item in files if not _is_photo(item[0]) and is_video(item[0], PHOTO_SUFFIXES)]
    return [item for item in files if item not in videos], videos


def _is_photo(path: Path) -> bool:
    if path.suffix.lower() in PHOTO_SUFFIXES:
        return True
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False


class _NoProgress:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


class _VideoBar:
    """One video's progress bar: made only once `colorize_video` knows the frame count (`on_start`),
    so a video that fails before then shows none."""

    def __init__(self, progress: Callable[[str, int | None], object], source: Path):
        self.progress, self.source = progress, source
        self.bar = None

    def start(self, total: int | None) -> None:
        self.bar = self.progress(str(self.source), total)

    def update(self, count: int) -> None:
        self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def colorize_videos(
    planned: list[Planned],
    recipe: FullResolutionColorizer,
    batch_size: int = 8,
    codec: str | None = None,
    crf: int = DEFAULT_CRF,
    stabiliser_factory: Callable[[], Callable] | None = None,
    overwrite: bool = False,
    on_error: Callable[[str], None] = lambda message: None,
    on_note: Callable[[str], None] = lambda message: None,
    on_skip: Callable[[str], None] = lambda message: None,
    progress: Callable[[str, int | None], object] = lambda name, total: _NoProgress(),
) -> ColorizeReport:
    """Colorize videos planned by `plan` one after the other (those without a target are skipped).

    `stabiliser_factory()` makes a fresh stabiliser per video (None: frame by frame).
    `progress(name, total_frames)` returns a bar with `update(n)` and `close()` (tqdm's).
    A video that cannot be opened or written, or that ends early (its decodable frames are still
    written), is reported through `on_error` in one line; an output that appeared since the plan
    is left alone (`on_skip`); the others still complete.
    """
    report = ColorizeReport()
    for item in planned:
        if item.target is None:
            continue
        bar = _VideoBar(progress, item.source)
        try:
            result = colorize_video(
                item.source, item.target, recipe, batch_size, stabiliser_factory() if stabiliser_factory else None,
                codec, crf, overwrite, on_start=bar.start, on_frames=bar.update,
            )
        except OutputExists:
            report.skipped.append(item.target)
            on_skip(exists_message(item.target))
            continue
        except (VideoError, OSError) as error:  # OSError: the output side (disk full, no permission, ...)
            message = _video_failure(item, error)
            report.failed.append(message)
            on_error(message)
            continue
        finally:
            bar.close()
        report.written.append(result.target)
        for note in result.notes:
            on_note(f"{quoted(item.source)}: {note}")
        if result.problem:
            report.failed.append(result.problem)
            on_error(result.problem)
    return report


def _video_failure(item: Planned, error: VideoError | OSError) -> str:
    """The one line for a video that could not be colorized: a `VideoError` already names the input
    and says why; an OSError comes from writing the output, so the line names both files."""
    if isinstance(error, VideoError):
        return str(error)
    return f"{quoted(item.source)}: could not write {quoted(item.target)}: {error.strerror or error}"
