"""Synthetic video clips made from the sample photos, for the video benchmark and tests.

A clip is a few shots; each shot moves a virtual camera over one photo (a pan or a zoom), and the
shots are joined by hard cuts. Because every frame is rendered from a known photo by a known
affine map, the true colours of every frame and the exact motion between frames are known: the
benchmark measures flicker after compensating the *true* motion, not an estimated one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from pix2color.colorizing.video import frame_to_rgb, open_video, pixel_format
from pix2color.data import sample_photos_dir


@dataclass
class Shot:
    """One photo seen through a window of the clip's aspect ratio, moving from `start` to `end`.

    A window is (centre x, centre y, width), all as fractions of the photo's width/height (the
    width as a fraction of the photo's width); it moves linearly over the shot.
    """

    photo: str
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    frames: int


@dataclass
class Clip:
    frames: list[np.ndarray]  # true colour frames, uint8 RGB (H, W, 3)
    cameras: list[np.ndarray]  # per frame: 2x3 affine, frame pixel (x, y, 1) -> photo pixel
    shot_of_frame: list[int]
    fps: int

    @property
    def cuts(self) -> list[int]:
        """Indices of the first frame of every shot after the first."""
        return [t for t in range(1, len(self.frames)) if self.shot_of_frame[t] != self.shot_of_frame[t - 1]]


def default_shots(seconds: float = 6.0, fps: int = 24) -> list[Shot]:
    """Three shots of `seconds` / 3 each: a pan, a zoom in, a diagonal pan with a zoom out."""
    photos = {path.name.split("__")[1]: str(path) for path in sample_photos_dir().glob("*__view.jpg")}
    frames = round(seconds * fps / 3)
    return [
        Shot(photos["GreenMeadow"], (0.35, 0.5, 0.7), (0.65, 0.5, 0.7), frames),
        Shot(photos["LadyBird"], (0.5, 0.5, 0.95), (0.5, 0.45, 0.55), frames),
        Shot(photos["FreshFlower"], (0.4, 0.4, 0.6), (0.6, 0.6, 0.85), frames),
    ]


def render(shots: list[Shot], width: int = 640, height: int = 360, fps: int = 24) -> Clip:
    """Render every frame of the shots with OpenCV (bicubic), keeping each frame's camera."""
    frames, cameras, shot_of_frame = [], [], []
    for index, shot in enumerate(shots):
        photo = np.asarray(Image.open(shot.photo).convert("RGB"))
        photo_height, photo_width = photo.shape[:2]
        for t in range(shot.frames):
            s = t / max(shot.frames - 1, 1)
            centre_x, centre_y, window = (a + (b - a) * s for a, b in zip(shot.start, shot.end))
            scale = window * photo_width / width  # photo pixels per frame pixel
            camera = np.array([[scale, 0.0, centre_x * photo_width - scale * width / 2],
                               [0.0, scale, centre_y * photo_height - scale * height / 2]], np.float64)
            frames.append(cv2.warpAffine(photo, camera, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                         borderMode=cv2.BORDER_REFLECT))
            cameras.append(camera)
            shot_of_frame.append(index)
    return Clip(frames, cameras, shot_of_frame, fps)


def motion_to_previous(clip: Clip, t: int) -> np.ndarray:
    """2x3 affine: pixel of frame t -> where the same scene point is in frame t - 1."""
    previous = np.vstack([clip.cameras[t - 1], [0.0, 0.0, 1.0]])
    current = np.vstack([clip.cameras[t], [0.0, 0.0, 1.0]])
    return (np.linalg.inv(previous) @ current)[:2]


def write_clip(clip: Clip, path: str | os.PathLike, crf: int = 10, audio_seconds: float | None = None,
               tone_hz: float = 440.0, rotation: int = 0, times: list[Fraction] | None = None) -> Path:
    """Encode the frames as H.264 (yuv420p, or yuv444p for odd sizes) in an mp4/mkv/mov file,
    with a sine tone as AAC audio (`audio_seconds`, default the clip's length; 0 for none),
    optionally a display rotation and each frame's time in seconds (a variable frame rate)."""
    path = Path(path)
    height, width = clip.frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=clip.fps)
        video.codec_context.time_base = Fraction(1, 1000 * clip.fps)
        video.width, video.height = width, height
        video.pix_fmt = pixel_format("libx264", width, height)
        video.codec_context.options = {"crf": str(crf)}
        if rotation:
            video.set_display_rotation(rotation)
        audio_seconds = len(clip.frames) / clip.fps if audio_seconds is None else audio_seconds
        audio = container.add_stream("aac", rate=48_000, layout="mono") if audio_seconds else None
        for index, rgb in enumerate(clip.frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            time_base = Fraction(1, 1000 * clip.fps)
            frame.pts = round((times[index] if times else Fraction(index, clip.fps)) / time_base)
            frame.time_base = time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            samples = int(audio_seconds * 48_000)
            tone = (0.3 * np.sin(2 * np.pi * tone_hz * np.arange(samples) / 48_000)).astype(np.float32)
            for start in range(0, samples, 1024):
                frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 48_000, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return path


def read_frames(path: str | os.PathLike) -> list[np.ndarray]:
    """Every frame of a video as uint8 RGB (H, W, 3), as stored (not rotated)."""
    with open_video(path) as container:
        return [frame_to_rgb(frame) for frame in container.decode(video=0)]
