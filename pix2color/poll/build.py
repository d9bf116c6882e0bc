"""Building a poll: photos -> pairs whose two colour versions differ only in their colours.

A participant can download every image of a trial, so nothing in the files may tell the original
from the colorization but the colours a person judges. The photo itself would: its gray is its
own lightness rounded to 8 bits, so a program recomputing a gray from each colour version finds
the served gray in the photo pixel for pixel, and not quite in a colorization. So (`render_pair`):

- both colour versions are rendered by one step (`render`) from the photo's lightness and a, b
  on the network's S x S grid: the colorization's a, b are the network's prediction, the
  original's the photo's own averaged over the same grid (`recipe.ab_on_grid`); the grid is
  upsampled bilinearly, as `FullResolutionColorizer.finish` does;
- both grids are first blurred a little (Gaussian, `GRID_BLUR` of a cell): a network's decoder
  leaves a faint pattern of period 2 on its grid (about 0.5 delta E, invisible), which a program
  finds at once and a photo's averaged colours do not have;
- a colour with no sRGB equivalent (a network may predict one) loses chroma at its own hue and
  lightness (`recipe.keep_in_gamut`), where clipping each channel would change its lightness;
- before rounding to 8 bits both get a fine dither (Gaussian, `DITHER` of a level, drawn anew
  for each image). Where the photo's colour is flat, the original's float colour lies within
  rounding of the photo's own pixels; without the dither it would round back onto them exactly,
  with a lightness less noisy than any colorization's;
- the gray shown is made from the two versions themselves: each pixel's gray level is that of
  the original or of the colorization, half and half at random. So a version's recomputed gray
  agrees with the served gray exactly as often as the other's, whatever their rounding.

The original therefore differs from the photo by its colour detail finer than the grid (and the
blur), by the dither and by the rounding; docs/web.md gives the measured difference. The
colorization differs from what `pix2color colorize` writes by the same blur of its colours, the
dither, and where its colours leave the gamut.
tests/poll/test_blind.py plays a program that tries to tell them apart.
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pix2color.colorizing.files import IMAGE_SUFFIXES
from pix2color.colorizing.loading import load_network
from pix2color.colorizing.recipe import (
    FullResolutionColorizer,
    ab_on_grid,
    keep_in_gamut,
    lab_to_rgb,
    lightness_of_8bit,
)
from pix2color.photos import ImageError, read_image
from pix2color.poll.storage import PROTOCOLS, PollError, PollImages, check_poll_folder, write_poll
from pix2color.training.run_folder import is_run_or_poll_folder

DITHER = 1.0  # standard deviation, in 8-bit levels (docs/web.md: how much smaller ones leave to tell)
GRID_BLUR = 1.0  # standard deviation, in cells of the network's grid


def smoothed(grid: np.ndarray, sigma: float = GRID_BLUR) -> np.ndarray:
    """`grid` (S, S, C) float32 blurred by a Gaussian of `sigma` cells along both axes, out to 3
    sigma (edges reflected, OpenCV's BORDER_REFLECT_101)."""
    taps = 2 * int(np.ceil(3 * sigma)) + 1
    return cv2.GaussianBlur(grid, (taps, taps), sigma, borderType=cv2.BORDER_REFLECT_101)


def render(lightness: np.ndarray, ab_small: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Full-resolution L (H, W) + a, b on the network's grid, network units (S, S, 2) -> the uint8
    RGB a poll shows: the module's docstring says how, and why."""
    height, width = lightness.shape
    ab_small = smoothed(np.ascontiguousarray(ab_small, np.float32))
    a, b = (np.asarray(Image.fromarray(np.ascontiguousarray(ab_small[..., k] * 110.0, np.float32), mode="F")
                       .resize((width, height), Image.Resampling.BILINEAR), np.float32) for k in range(2))
    a, b = keep_in_gamut(lightness, a, b)
    rgb = lab_to_rgb(np.stack([lightness, a, b], axis=-1)) * 255.0 + rng.normal(0.0, DITHER, (height, width, 3))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def render_pair(recipe: FullResolutionColorizer, rgb: np.ndarray, source: str,
                rng: np.random.Generator) -> PollImages:
    """One pair of a poll from a uint8 RGB photo: its original and its colorization rendered alike,
    and a gray made of theirs (the module's docstring says why)."""
    lightness, network_input = recipe.prepare(rgb)
    predicted = recipe.predict_ab(network_input[None])[0]
    original = render(lightness, ab_on_grid(rgb, recipe.image_size), rng)
    colorized = render(lightness, predicted, rng)
    grays = [recipe.finish(lightness_of_8bit(version), np.zeros((1, 1, 2), np.float32))
             for version in (original, colorized)]
    gray = np.where(rng.random(lightness.shape)[..., None] < 0.5, *grays)
    return PollImages(source, gray=gray, original=original, generated=colorized)


def list_photos(photos: str | Path, log=print) -> list[str]:
    """The images under `photos` (recursive), leaving out pix2color run and poll folders as
    training does: their plots and poll images are pictures pix2color drew, not photos."""
    from pix2color.data import list_image_files  # pix2color.data loads TensorFlow: only when building a poll

    if not Path(photos).is_dir():
        raise PollError(f"--photos {photos}: not a folder")
    reason = is_run_or_poll_folder(photos)
    if reason:
        raise PollError(f"--photos {photos}: {reason}, not a folder of photos")

    def skip_folder(path: str) -> bool:
        why = is_run_or_poll_folder(path)
        if why:
            log(f"left out {path}: {why}, not photos")
        return why is not None

    return list_image_files(photos, IMAGE_SUFFIXES, skip_folder=skip_folder)


def choose_photos(paths: list[str], count: int, seed: int) -> list[str]:
    if len(paths) < count:
        raise PollError(f"{count} pairs asked for, but only {len(paths)} photos found")
    return sorted(random.Random(seed).sample(sorted(paths), count))


def read_scaled(path: str, max_side: int) -> np.ndarray:
    """The photo as uint8 RGB, scaled down (Lanczos) to at most `max_side` pixels a side."""
    try:
        rgb = read_image(path)
    except ImageError as error:
        raise PollError(str(error)) from None
    image = Image.fromarray(rgb)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        rgb = np.asarray(image)
    return rgb


def build_poll(
    model,
    photos: str | Path,
    out: str | Path,
    pairs: int = 20,
    protocol: str = "report",
    mode: str = "deterministic",
    seed: int = 0,
    max_side: int = 768,
    log=print,
) -> Path:
    """Pick `pairs` photos (seeded), render each pair with `model` and write the poll folder.

    `model`: a run folder, `.keras` file or SavedModel (loaded in the inference `mode`), or a
    loaded `pix2color.colorizing.loading.Network`. Photos larger than `max_side` are first scaled down. The
    report's poll used its final model.
    """
    if protocol not in PROTOCOLS:
        raise PollError(f"--protocol must be one of {', '.join(PROTOCOLS)} (got {protocol!r})")
    check_poll_folder(out)
    chosen = choose_photos(list_photos(photos, log), pairs, seed)
    network = model if hasattr(model, "predict_ab") else load_network(model, mode)
    recipe = FullResolutionColorizer(network.predict_ab, network.image_size)
    prepared, rng = [], np.random.default_rng(seed)
    for path in chosen:
        prepared.append(render_pair(recipe, read_scaled(path, max_side), str(path), rng))
        log(f"pair {len(prepared)}: {path}")
    described = str(model) if not hasattr(model, "predict_ab") else "a network given in Python"
    return write_poll(out, prepared, protocol, seed, {"model": described, "mode": mode, "photos": str(photos)})
