"""`srgan dataset prepare`: cut HR photos into overlapping sub-images, make matching LR
folders with MATLAB bicubic, and split train/val by source photo (no leakage)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srgan.errors import BadInputError
from srgan.imaging.io import Image, list_images, read_image, write_image
from srgan.imaging.transform import resize_image


@dataclass(frozen=True)
class PrepareSettings:
    size: int = 480  # sub-image side (HR pixels)
    step: int = 240  # distance between sub-images; less than size gives overlap
    scales: tuple[int, ...] = (4,)
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size <= 0 or self.step <= 0:
            raise BadInputError("--size and --step must be positive")
        if not 0 <= self.val_fraction < 1:
            raise BadInputError("--val-fraction must be in [0, 1)")
        for scale in self.scales:
            if scale < 1 or self.size % scale:
                raise BadInputError(f"--size {self.size} must be a multiple of --scale {scale}")


@dataclass(frozen=True)
class PrepareReport:
    train_images: int
    val_images: int
    train_patches: int
    val_patches: int


def _starts(length: int, size: int, step: int) -> list[int]:
    """Sub-image origins along one axis; the last one is moved to touch the border."""
    if length < size:
        return []
    starts = list(range(0, length - size + 1, step))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def split_sources(paths: Sequence[Path], val_fraction: float, seed: int) -> set[Path]:
    """The source photos held out for validation (a seeded random choice)."""
    count = round(len(paths) * val_fraction)
    if val_fraction > 0 and len(paths) > 1:
        count = max(1, count)
    order = np.random.default_rng(seed).permutation(len(paths))
    return {paths[i] for i in order[:count]}


def prepare_dataset(
    source: Path,
    target: Path,
    settings: PrepareSettings = PrepareSettings(),
    progress: Callable[[str], None] | None = None,
) -> PrepareReport:
    paths = list_images(source) if source.is_dir() else []
    if not paths:
        raise BadInputError(f"{source}: no images found")
    held_out = split_sources(paths, settings.val_fraction, settings.seed)
    counts = {"train": [0, 0], "val": [0, 0]}
    for path in paths:
        split = "val" if path in held_out else "train"
        image = read_image(path)
        counts[split][0] += 1
        for top in _starts(image.height, settings.size, settings.step):
            for left in _starts(image.width, settings.size, settings.step):
                pixels = image.pixels[top : top + settings.size, left : left + settings.size]
                patch = Image(np.ascontiguousarray(pixels), image.meta)
                name = f"{path.stem}_y{top:04d}_x{left:04d}.png"
                write_image(target / split / "HR" / name, patch)
                for scale in settings.scales:
                    lr = resize_image(patch, scale=1 / scale)
                    write_image(target / split / f"LR_x{scale}" / name, lr)
                counts[split][1] += 1
        if progress:
            progress(path.name)
    return PrepareReport(counts["train"][0], counts["val"][0], counts["train"][1], counts["val"][1])
