"""The Python API: `srgan.load_model` and `srgan.upscale`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import overload

import numpy as np
import torch
from PIL import Image as PILImage

from srgan.defaults import DEFAULT_MODEL, DEFAULT_TILE_PAD
from srgan.imaging.io import Image, ImageMeta, pil_to_pixels, read_image
from srgan.inference.upscaler import (
    AlphaMode,
    Precision,
    UpscaleOptions,
    resolve_device,
    upscale_image,
)
from srgan.zoo.descriptor import LoadedModel
from srgan.zoo.onnx_generic import GenericOnnx
from srgan.zoo.registry import load_model as _load_model


def load_model(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    device: str | torch.device = "auto",
    scale: float | None = None,
) -> LoadedModel:
    """A named model (`natural`, `anime`, `anime-video`, `bicubic`) or a weights file
    (.pth, .safetensors, ncnn .param), ready on `device` ('auto' picks CUDA, MPS or CPU)."""
    chosen = str(device) if isinstance(device, torch.device) else resolve_device(device)
    return _load_model(str(name_or_path), scale, chosen)


@overload
def upscale(
    image: np.ndarray, model: LoadedModel | GenericOnnx | str = ..., **options
) -> np.ndarray: ...
@overload
def upscale(
    image: PILImage.Image, model: LoadedModel | GenericOnnx | str = ..., **options
) -> PILImage.Image: ...
@overload
def upscale(
    image: Image | str | os.PathLike[str], model: LoadedModel | GenericOnnx | str = ..., **options
) -> Image: ...


def upscale(
    image,
    model: LoadedModel | GenericOnnx | str = DEFAULT_MODEL,
    *,
    outscale: float | None = None,
    tile: int | None = None,
    tile_pad: int = DEFAULT_TILE_PAD,
    alpha_mode: AlphaMode = "model",
    precision: Precision = "fp32",
    device: str | torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Upscale an image given as a path, an `srgan.imaging.Image`, a numpy array
    ((H, W) or (H, W, C), uint8 or uint16) or a PIL image; returns the same kind
    (an `Image` for paths). Tiles are blended seamlessly; alpha, depth and gray are kept.
    `device` defaults to the device the model is on. An .onnx file of any architecture
    runs with ONNX Runtime on the CPU."""
    from srgan.zoo.selection import is_onnx_file, open_onnx_file

    loaded: LoadedModel | GenericOnnx
    if isinstance(model, LoadedModel | GenericOnnx):
        loaded = model
    elif is_onnx_file(str(model)):
        loaded = open_onnx_file(Path(model))
    else:
        loaded = load_model(model, device or "auto")
    if isinstance(loaded, GenericOnnx):
        target = "cpu"
    elif device is None:
        target = str(loaded.device)
    else:
        target = str(device) if isinstance(device, torch.device) else resolve_device(device)
    options = UpscaleOptions(tile, tile_pad, outscale, alpha_mode, precision, target)

    if isinstance(image, np.ndarray):
        pixels = image[..., None] if image.ndim == 2 else image
        if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim != 3:
            raise ValueError("arrays must be (H, W) or (H, W, C) of uint8 or uint16")
        if pixels.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"arrays need 1 to 4 channels, got {pixels.shape[2]}")
        meta = ImageMeta(bit_depth=16 if pixels.dtype == np.uint16 else 8)
        result = upscale_image(loaded, Image(pixels, meta), options, progress).pixels
        return result[..., 0] if image.ndim == 2 else result
    if isinstance(image, PILImage.Image):
        result = upscale(
            pil_to_pixels(image),
            loaded,
            outscale=outscale,
            tile=tile,
            tile_pad=tile_pad,
            alpha_mode=alpha_mode,
            precision=precision,
            device=target,
            progress=progress,
        )
        return PILImage.fromarray(result[..., 0] if result.shape[2] == 1 else result)
    decoded = image if isinstance(image, Image) else read_image(image)
    return upscale_image(loaded, decoded, options, progress)
