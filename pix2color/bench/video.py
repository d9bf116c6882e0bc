"""`bench video`: a clip made from the sample photos colorized end to end: fps, flicker, PSNR."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from pix2color.bench import clips
from pix2color.bench.timing import median_seconds
from pix2color.colorizing.loading import Network, load_network
from pix2color.colorizing.recipe import FullResolutionColorizer, rgb_to_lab
from pix2color.colorizing.stabilise import Stabiliser
from pix2color.colorizing.video import colorize_video
from pix2color.networks import build_generator


def flicker_and_psnr(clip, frames: list, tolerance: float = 2.0) -> tuple[float, float]:
    """(flicker in Lab ab units, mean per-frame PSNR in dB) of colorized `frames` of `clip`.

    Flicker: mean |ab_t - ab_{t-1} moved by the true motion| over the pixels seen in both frames
    whose true ab moved with them to within `tolerance`, over every pair of frames in one shot.
    """
    height, width = frames[0].shape[:2]
    true_ab = [rgb_to_lab(frame / 255.0)[..., 1:] for frame in clip.frames]
    output_ab = [rgb_to_lab(frame / 255.0)[..., 1:] for frame in frames]
    ones = np.ones((height, width), np.float32)
    changes = []
    for t in range(1, len(frames)):
        if clip.shot_of_frame[t] != clip.shot_of_frame[t - 1]:
            continue
        motion = clips.motion_to_previous(clip, t)

        def moved(image):
            return cv2.warpAffine(image, motion, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)

        steady = ((moved(ones) > 0.999)
                  & (np.abs(true_ab[t] - moved(true_ab[t - 1])).max(axis=-1) < tolerance))
        changes.append(np.abs(output_ab[t] - moved(output_ab[t - 1]))[steady].mean())
    errors = [np.mean((frame.astype(np.float64) - truth) ** 2) for frame, truth in zip(frames, clip.frames)]
    return float(np.mean(changes)), float(np.mean([10 * np.log10(255.0**2 / max(e, 1e-10)) for e in errors]))


def bench_video(model: str | None, width: int, height: int, seconds: float, fps: int, batch_size: int,
                strength: float, repeats: int, workdir: str | None, log=print) -> list[dict]:
    """The clip colorized through the real decode / colorize / encode path, stabiliser off then on."""
    if model:
        network = load_network(model)
    else:
        generator = build_generator(256)
        network = Network(lambda x: generator.predict_on_batch(x), 256)
        model = "an untrained 256 px U-Net"
    recipe = FullResolutionColorizer(network.predict_ab, network.image_size)
    work = Path(workdir or tempfile.mkdtemp(prefix="pix2color-bench-video-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = clips.render(clips.default_shots(seconds, fps), width, height, fps)
    source = clips.write_clip(clip, work / "clip.mp4")
    log(f"clip: {len(clip.frames)} frames, {width}x{height} at {fps} fps, cuts at frames {clip.cuts}; "
        f"model: {model} ({network.image_size} px)")
    batch = np.stack([recipe.prepare(frame)[1] for frame in clip.frames[:batch_size]])
    network.predict_ab(batch)
    network_fps = batch_size / median_seconds(lambda: network.predict_ab(batch), repeats)
    log(f"network alone: {network_fps:.1f} frames/s at batch {batch_size}")
    rows = []
    for stabilise in ("off", "on"):
        stabiliser = Stabiliser(strength) if stabilise == "on" else None
        started = time.perf_counter()
        result = colorize_video(source, work / f"stabilise_{stabilise}.mp4", recipe, batch_size, stabiliser)
        elapsed = time.perf_counter() - started
        flicker, psnr = flicker_and_psnr(clip, clips.read_frames(result.target))
        row = {"config": f"stabilise {stabilise}", "frames": result.frames, "fps": result.frames / elapsed,
               "network_fps": network_fps, "flicker_ab": flicker, "psnr_db": psnr, "cuts_detected": result.cuts,
               "cuts": clip.cuts, "strength": strength if stabiliser else None, "width": width, "height": height,
               "image_size": network.image_size, "batch_size": batch_size}
        rows.append(row)
        log(f"stabilise {stabilise}: {row['fps']:.1f} frames/s ({row['fps'] / network_fps:.2f}x the network), "
            f"flicker {flicker:.3f}, PSNR {psnr:.2f} dB"
            + (f", cuts detected at {result.cuts}" if stabiliser else ""))
    off, on = rows
    log(f"stabiliser: flicker x{on['flicker_ab'] / off['flicker_ab']:.2f}, PSNR {on['psnr_db'] - off['psnr_db']:+.2f} dB")
    return rows
