"""`srgan dataset clips`: synthetic video clips from still photos.

A virtual camera pans across each photo (and zooms slowly) along a straight path with a
random direction and speed: every frame is a `size` x `size` view resampled with bicubic
interpolation at sub-pixel positions, so consecutive frames hold the same scene shifted
by fractions of a pixel -- the motion a video super-resolution network learns to use.
Photos are split between train and val (never both), like `srgan dataset prepare`.

Output: DST/{train,val}/<photo>_<k>/frame_0000.png ... (HR frames; training makes the LR
frames with MATLAB bicubic).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from srgan.errors import BadInputError
from srgan.imaging.clips import as_rgb
from srgan.imaging.io import (
    Image,
    ImageMeta,
    list_images,
    read_image,
    tensor_to_pixels,
    write_image,
)
from srgan.imaging.resize import imresize
from srgan.training.data.patches import pixels_to_unit_tensor
from srgan.training.data.prepare import split_sources


@dataclass(frozen=True)
class ClipSettings:
    frames: int = 7
    size: int = 192  # frame side (HR pixels)
    clips_per_photo: int = 2
    max_shift: float = 2.0  # camera speed: at most this many frame pixels per frame
    max_zoom: float = 0.01  # zoom: at most this relative change of scale per frame
    shrink: float = 2.0  # MATLAB-bicubic shrink of the photo first (sharper, less noise)
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.frames < 1 or self.size < 8 or self.clips_per_photo < 1:
            raise BadInputError("--frames >= 1, --size >= 8 and --clips-per-photo >= 1")
        if self.max_shift < 0 or not 0 <= self.max_zoom < 0.2 or self.shrink < 1:
            raise BadInputError("--max-shift >= 0, 0 <= --max-zoom < 0.2 and --shrink >= 1")
        if not 0 <= self.val_fraction < 1:
            raise BadInputError("--val-fraction must be in [0, 1)")


@dataclass(frozen=True)
class ClipReport:
    train_clips: int
    val_clips: int
    skipped_photos: int


def camera_path(
    height: int, width: int, settings: ClipSettings, rng: np.random.Generator
) -> list[tuple[float, float, float]] | None:
    """(centre y, centre x, source pixels per frame pixel) for each frame, staying inside
    the photo; None when the photo is too small for a view."""
    s, last = settings, settings.frames - 1
    zoom0 = rng.uniform(1.0, 1.2)
    rate = rng.uniform(-s.max_zoom, s.max_zoom)
    angle, speed = rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 1.0) * s.max_shift
    zooms = [zoom0 * (1 + rate) ** t for t in range(s.frames)]
    half = s.size * max(zooms) / 2 + 2  # + bicubic support
    room_y, room_x = height - 2 * half, width - 2 * half
    if room_y < 0 or room_x < 0:
        return None
    dy, dx = speed * zoom0 * math.sin(angle) * last, speed * zoom0 * math.cos(angle) * last
    dy = math.copysign(min(abs(dy), room_y), dy)  # slow down to fit the photo
    dx = math.copysign(min(abs(dx), room_x), dx)
    y0 = half + rng.uniform(0, room_y - abs(dy)) + max(-dy, 0)
    x0 = half + rng.uniform(0, room_x - abs(dx)) + max(-dx, 0)
    steps = [t / last if last else 0.0 for t in range(s.frames)]
    return [(y0 + dy * f, x0 + dx * f, zoom) for f, zoom in zip(steps, zooms, strict=True)]


def render(photo: torch.Tensor, path: list[tuple[float, float, float]], size: int) -> torch.Tensor:
    """Frames [T, 3, size, size] of `photo` [3, H, W] along `path` (bicubic, clamped)."""
    height, width = photo.shape[-2:]
    offsets = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2
    grids = []
    for cy, cx, zoom in path:
        ys = (cy + offsets * zoom) * 2 / height - 1  # align_corners=False coordinates
        xs = (cx + offsets * zoom) * 2 / width - 1
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        grids.append(torch.stack((grid_x, grid_y), dim=-1))
    grid = torch.stack(grids).float()
    source = photo.unsqueeze(0).expand(len(path), -1, -1, -1)
    frames = F.grid_sample(source, grid, mode="bicubic", padding_mode="border", align_corners=False)
    return frames.clamp_(0, 1)


def make_clips(
    source: Path,
    target: Path,
    settings: ClipSettings = ClipSettings(),
    progress: Callable[[str], None] | None = None,
) -> ClipReport:
    paths = list_images(source) if source.is_dir() else []
    if not paths:
        raise BadInputError(f"{source}: no images found")
    held_out = split_sources(paths, settings.val_fraction, settings.seed)
    counts = {"train": 0, "val": 0}
    skipped = 0
    for index, path in enumerate(paths):
        photo = pixels_to_unit_tensor(np.ascontiguousarray(as_rgb(read_image(path).pixels)))
        if settings.shrink > 1:
            photo = imresize(photo, scale=1 / settings.shrink).clamp_(0, 1)
        split = "val" if path in held_out else "train"
        made = 0
        for k in range(settings.clips_per_photo):
            rng = np.random.default_rng([settings.seed, index, k])
            route = camera_path(photo.shape[1], photo.shape[2], settings, rng)
            if route is None:
                continue
            frames = render(photo, route, settings.size)
            folder = target / split / f"{path.stem}_{k}"
            for t, frame in enumerate(frames):
                image = Image(tensor_to_pixels(frame), ImageMeta())
                write_image(folder / f"frame_{t:04d}.png", image)
            made += 1
        counts[split] += made
        skipped += made == 0
        if progress:
            progress(path.name)
    return ClipReport(counts["train"], counts["val"], skipped)
