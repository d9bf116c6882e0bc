"""Temporal stabilisation of a video's colours: steady where the scene is steady, following it
where it moves, starting afresh at scene cuts.

Frame-by-frame colorization flickers: the network sees each frame on its own, so the same wall
can change colour from one frame to the next. The stabiliser blends each frame's predicted ab
with the previous *output* ab, warped onto the current frame by dense optical flow (OpenCV's
DIS flow on the lightness). Where the warp explains the current frame well (small lightness
error) the previous colour weighs `strength`; where it does not (occlusions, new content,
lighting changes) the prediction takes over. A scene cut, where almost nothing of the previous
frame can be found in the current one, resets the memory so no colour crosses the cut.

Everything happens on a RESOLUTION x RESOLUTION image, squashed as the network's input is, so the
cost does not grow with the video's size; the ab is upsampled to it first, so that warping it
again and again does not blur a small network's colours.
"""

from __future__ import annotations

import numpy as np

DEFAULT_STRENGTH = 0.8
# A pixel is "explained" by the warped previous frame when their lightness differs by less than
# MATCH_LEVEL (of 255); a frame where fewer than CUT_MATCHED of the pixels are explained starts a
# new shot.
MATCH_LEVEL = 12.0
CUT_MATCHED = 0.5


RESOLUTION = 256


def _to_gray8(lightness: np.ndarray, size: int) -> np.ndarray:
    """Lab L (H, W) in [0, 100] -> uint8 (size, size), squashed as the network's input."""
    import cv2

    small = cv2.resize(np.asarray(lightness, np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small * 2.55), 0, 255).astype(np.uint8)


class Stabiliser:
    """Feed it a video's frames in order: `stabiliser(lightness, ab) -> ab`.

    lightness: the frame's Lab L (H, W) in [0, 100]; ab: the network's prediction (S, S, 2).
    Returns ab at `resolution` x `resolution`. `cuts` lists the indices (0-based, counting every
    frame fed) where a new shot was detected.
    """

    def __init__(self, strength: float = DEFAULT_STRENGTH, resolution: int = RESOLUTION):
        import cv2

        if not 0.0 <= strength < 1.0:
            raise ValueError(f"the stabiliser's strength must be in [0, 1) (got {strength})")
        self.strength, self.resolution = strength, resolution
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (gray, output ab)
        self._grid: np.ndarray | None = None
        self.frames = 0
        self.cuts: list[int] = []

    def reset(self) -> None:
        self._previous = None

    def __call__(self, lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
        import cv2

        gray = _to_gray8(lightness, self.resolution)
        ab = cv2.resize(np.asarray(ab, np.float32), (self.resolution, self.resolution), interpolation=cv2.INTER_LINEAR)
        index, self.frames = self.frames, self.frames + 1
        if self._previous is None or self.strength == 0.0:
            self._previous = (gray, ab)
            return ab
        previous_gray, previous_ab = self._previous
        warped_gray, warped_ab, inside = self._warp_previous(gray, previous_gray, previous_ab)
        error = np.abs(gray.astype(np.float32) - warped_gray)
        matched = (error < MATCH_LEVEL) & inside
        if matched.mean() < CUT_MATCHED:
            self.cuts.append(index)
            self._previous = (gray, ab)
            return ab
        # Full weight where the warp explains the pixel, fading out as the lightness error grows.
        weight = self.strength * np.exp(-((error / MATCH_LEVEL) ** 2)) * inside
        result = weight[..., None] * warped_ab + (1.0 - weight[..., None]) * ab
        self._previous = (gray, result)
        return result

    def _warp_previous(self, gray, previous_gray, previous_ab):
        """The previous frame's lightness and output ab moved onto the current frame."""
        import cv2

        flow = self._flow.calc(gray, previous_gray, None)  # (S, S, 2): where each pixel was before
        if self._grid is None or self._grid.shape[:2] != gray.shape:
            rows, columns = np.indices(gray.shape, dtype=np.float32)
            self._grid = np.stack([columns, rows], axis=-1)
        where = self._grid + flow
        height, width = gray.shape
        inside = ((where[..., 0] >= 0) & (where[..., 0] <= width - 1)
                  & (where[..., 1] >= 0) & (where[..., 1] <= height - 1))
        warped_gray = cv2.remap(previous_gray.astype(np.float32), where, None, cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        warped_ab = cv2.remap(previous_ab, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return warped_gray, warped_ab, inside
