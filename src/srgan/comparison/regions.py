"""Where models disagree: a per-pixel disagreement map and the windows that hold most of it.

Pure numpy on decoded pixels, so it works on any output the upscaler gives (any depth,
gray or colour). The map is the standard deviation across the outputs of their luma
(BT.601 weights) in [0, 1]; windows are scored with a summed-area table and picked
greedily, each new one kept clear of those already chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from srgan.errors import BadInputError

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MIN_CROP = 8


@dataclass(frozen=True)
class Region:
    """A rectangle in output pixels: left `x`, top `y`, width `w`, height `h`."""

    x: int
    y: int
    w: int
    h: int

    def as_text(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}

    def fits(self, height: int, width: int) -> bool:
        return self.x + self.w <= width and self.y + self.h <= height

    def clipped(self, height: int, width: int) -> Region:
        """The part of the region inside a `width` x `height` image (at least 1 pixel)."""
        x, y = min(self.x, width - 1), min(self.y, height - 1)
        return Region(x, y, max(1, min(self.w, width - x)), max(1, min(self.h, height - y)))

    def overlaps(self, other: Region) -> bool:
        return not (
            self.x + self.w <= other.x
            or other.x + other.w <= self.x
            or self.y + self.h <= other.y
            or other.y + other.h <= self.y
        )


def parse_region(text: str) -> Region:
    """'x,y,w,h' (output pixels) -> Region, or BadInputError."""
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise BadInputError(f"--crop {text!r}: expected x,y,w,h in output pixels") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise BadInputError(f"--crop {text!r}: x and y must be >= 0, w and h >= 1")
    return Region(x, y, w, h)


def luma(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8/uint16 pixels -> (H, W) float32 luma in [0, 1]; alpha is ignored."""
    peak = float(np.iinfo(pixels.dtype).max)
    if pixels.shape[2] >= 3:
        value = pixels[..., :3].astype(np.float32) @ _LUMA
    else:
        value = pixels[..., 0].astype(np.float32)
    return value / peak


def disagreement(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel standard deviation of the outputs' luma (H, W); zeros for one output."""
    if not outputs:
        raise ValueError("no outputs to compare")
    shape = outputs[0].shape[:2]
    if any(o.shape[:2] != shape for o in outputs):
        raise ValueError("outputs of different sizes")
    mean = np.zeros(shape, np.float32)
    square = np.zeros(shape, np.float32)
    for output in outputs:  # one luma plane at a time: memory stays at three planes
        y = luma(output)
        mean += y
        square += y * y
    mean /= len(outputs)
    variance = np.maximum(square / len(outputs) - mean * mean, 0.0)
    return np.sqrt(variance, out=variance)


def default_crop_size(height: int, width: int) -> int:
    """A crop side that shows detail when magnified: a fifth of the short side, 32-128."""
    return int(min(max(min(height, width) // 5, 32), 128, height, width))


def strongest_regions(score_map: np.ndarray, size: int, count: int) -> list[Region]:
    """Up to `count` non-overlapping `size` x `size` windows with the largest summed score,
    strongest first (an image smaller than `size` gives one window over all of it)."""
    height, width = score_map.shape
    side_h, side_w = min(size, height), min(size, width)
    if side_h < 1 or side_w < 1 or count < 1:
        return []
    table = np.zeros((height + 1, width + 1), np.float64)
    table[1:, 1:] = score_map.astype(np.float64).cumsum(0).cumsum(1)
    sums = (
        table[side_h:, side_w:]
        - table[:-side_h, side_w:]
        - table[side_h:, :-side_w]
        + table[:-side_h, :-side_w]
    )
    chosen: list[Region] = []
    for _ in range(count):
        index = int(np.argmax(sums))
        best = sums.flat[index]
        if not np.isfinite(best) or (chosen and best <= 0):
            break
        y, x = divmod(index, sums.shape[1])
        region = Region(int(x), int(y), side_w, side_h)
        chosen.append(region)
        # Every window overlapping this one starts within a window-sized margin of it.
        top, left = max(0, y - side_h + 1), max(0, x - side_w + 1)
        sums[top : y + side_h, left : x + side_w] = -np.inf
    return chosen
