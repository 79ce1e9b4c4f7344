"""`srgan dataset degrade`: LR copies of a folder of HR images made by a training
degradation (Real-ESRGAN's, or bicubic), with a seed, so that a held-out set can be
scored degraded the way the training pairs were (`srgan eval --lr`, `data.val_lr`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from srgan.defaults import DEFAULT_MAX_PIXELS
from srgan.errors import BadInputError
from srgan.imaging.clips import as_rgb, natural_sorted
from srgan.imaging.io import (
    Image,
    ImageMeta,
    list_images,
    read_image,
    tensor_to_pixels,
    write_image,
)
from srgan.imaging.transform import crop_to_multiple
from srgan.training.data.degradation_config import DegradationConfig
from srgan.training.data.degradations import DegradationName, DegradationRng, make_degradation
from srgan.training.data.patches import pixels_to_unit_tensor


def degrade_folder(
    source: Path,
    target: Path,
    scale: int = 4,
    name: DegradationName = "realesrgan",
    config: DegradationConfig | None = None,
    seed: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Write TARGET/<stem>.png for each image of SOURCE: its colour channels, cropped to
    a multiple of `scale` (as evaluation crops the HR), degraded with the draws of
    `[seed, index]`. Returns the number of images."""
    paths = natural_sorted(list_images(source)) if source.is_dir() else []
    if not paths:
        raise BadInputError(f"{source}: no images found")
    if scale < 1:
        raise BadInputError(f"--scale must be a positive integer, not {scale}")
    degradation = make_degradation(name, config, scale)
    for index, path in enumerate(paths):
        image = crop_to_multiple(read_image(path, max_pixels), scale)
        if min(image.height, image.width) < scale:
            raise BadInputError(f"{path}: smaller than the scale {scale}")
        pixels = as_rgb(image.pixels)
        if pixels.dtype != np.uint8:
            pixels = (pixels.astype(np.float64) / 257).round().astype(np.uint8)
        hr = pixels_to_unit_tensor(np.ascontiguousarray(pixels))[None]
        with torch.inference_mode():
            lr = degradation(hr, DegradationRng.from_seed([seed, index]))
        write_image(target / f"{path.stem}.png", Image(tensor_to_pixels(lr[0]), ImageMeta()))
        if progress:
            progress(path.name)
    return len(paths)
