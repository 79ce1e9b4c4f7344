"""Validation during training: the benchmark protocol on a folder (PSNR/SSIM on Y,
border = scale) and a comparison grid (bicubic | model | ground truth) of centre crops."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

from srgan.inference.evaluate import ScoreTable, evaluate_models
from srgan.inference.upscaler import UpscaleOptions, upscale_image
from srgan.zoo.descriptor import LoadedModel, ModelDescriptor


def as_loaded_model(model: nn.Module, scale: int, name: str = "training") -> LoadedModel:
    return LoadedModel(model, ModelDescriptor(name, "SRResNet", scale))


def validate(model: LoadedModel, paths: Sequence[Path]) -> ScoreTable:
    (table,) = evaluate_models([model], paths, model.scale)
    return table


def comparison_grid(
    model: LoadedModel, paths: Sequence[Path], crop: int = 120, gap: int = 4
) -> np.ndarray:
    """One row per image: the bicubic upscale, the model's output and the HR centre crop
    (`crop` x `crop` HR pixels), side by side."""
    from srgan.imaging.io import Image, ImageMeta, read_image
    from srgan.imaging.transform import resize_image

    scale = model.scale
    side = crop - crop % scale
    rows = []
    for path in paths:
        hr = read_image(path)
        top, left = max((hr.height - side) // 2, 0), max((hr.width - side) // 2, 0)
        pixels = hr.pixels[top : top + side, left : left + side, :3]
        if pixels.dtype != np.uint8:
            pixels = (pixels.astype(np.float64) / 257).round().astype(np.uint8)
        if pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        patch = Image(np.ascontiguousarray(pixels), ImageMeta())
        lr = resize_image(patch, scale=1 / scale)
        bicubic = resize_image(lr, size=(patch.height, patch.width))
        sr = upscale_image(model, lr, UpscaleOptions(tile=0, device=str(model.device)))
        rows.append(side_by_side([bicubic.pixels, sr.pixels, patch.pixels], gap))
    return stack_rows(rows, gap)


def side_by_side(images: list[np.ndarray], gap: int) -> np.ndarray:
    height = max(image.shape[0] for image in images)
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for image in images:
        padded = np.full((height, image.shape[1], 3), 255, np.uint8)
        padded[: image.shape[0]] = image[..., :3]
        parts += [padded, spacer]
    return np.concatenate(parts[:-1], axis=1)


def stack_rows(rows: list[np.ndarray], gap: int) -> np.ndarray:
    width = max(row.shape[1] for row in rows)
    parts: list[np.ndarray] = []
    for row in rows:
        padded = np.full((row.shape[0], width, 3), 255, np.uint8)
        padded[:, : row.shape[1]] = row
        parts += [padded, np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=0)
