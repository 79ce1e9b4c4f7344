"""Comparison pictures: rows of images side by side (e.g. bicubic | model | ground truth),
as 8-bit RGB arrays for TensorBoard, sample files and comparison sheets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from srgan.imaging.io import Image

GAP = 4
CROP = 120  # HR pixels of the centre crop shown per image


def as_rgb8(image: Image) -> np.ndarray:
    """The colour channels of an image as (H, W, 3) uint8."""
    pixels = image.pixels[..., :3] if image.channels >= 3 else image.pixels[..., :1]
    if pixels.dtype != np.uint8:
        pixels = (pixels.astype(np.float64) / 257).round().astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def centre_crop(pixels: np.ndarray, side: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    side_h, side_w = min(height, side), min(width, side)
    top, left = (height - side_h) // 2, (width - side_w) // 2
    return pixels[top : top + side_h, left : left + side_w]


def side_by_side(images: Sequence[np.ndarray], gap: int = GAP) -> np.ndarray:
    height = max(image.shape[0] for image in images)
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for image in images:
        padded = np.full((height, image.shape[1], 3), 255, np.uint8)
        padded[: image.shape[0]] = image[..., :3]
        parts += [padded, spacer]
    return np.concatenate(parts[:-1], axis=1)


def stack_rows(rows: Sequence[np.ndarray], gap: int = GAP) -> np.ndarray:
    width = max(row.shape[1] for row in rows)
    parts: list[np.ndarray] = []
    for row in rows:
        padded = np.full((row.shape[0], width, 3), 255, np.uint8)
        padded[:, : row.shape[1]] = row
        parts += [padded, np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=0)


def comparison_grid(rows: Sequence[Sequence[Image]], crop: int = CROP) -> np.ndarray:
    """One row per entry, its images' centre crops (`crop` pixels at most) side by side."""
    return stack_rows(
        [side_by_side([centre_crop(as_rgb8(image), crop) for image in row]) for row in rows]
    )
