"""The Python API: `srgan.load_model` and `srgan.upscale`."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, overload

import numpy as np
from PIL import Image as PILImage

from srgan.defaults import DEFAULT_MODEL, DEFAULT_TILE_PAD
from srgan.imaging.io import Image, ImageMeta, pil_to_pixels, read_image
from srgan.inference.backends import AnyModel, open_model
from srgan.inference.upscaler import (
    AlphaMode,
    Precision,
    UpscaleOptions,
    make_runner,
    resolve_device,
    upscale_image,
)
from srgan.zoo.descriptor import LoadedModel

if TYPE_CHECKING:
    import torch
    from typing_extensions import TypedDict, Unpack

    from srgan.inference.tiling import Forward

    class UpscaleKeywords(TypedDict, total=False):
        """`upscale`'s keyword options, for its overloads."""

        outscale: float | None
        tile: int | None
        tile_pad: int
        alpha_mode: AlphaMode
        precision: Precision
        device: str | torch.device | None
        progress: Callable[[int, int], None] | None


def load_model(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    device: str | torch.device = "auto",
    scale: float | None = None,
    *,
    backend: str = "auto",
    precision: Precision = "fp32",
) -> AnyModel:
    """A named model (`natural`, `anime`, `anime-video`, `bicubic`) or a weights file
    (.pth, .safetensors, ncnn .param, .onnx: srgan's exports, and any single-image ONNX SR
    model, which runs with ONNX Runtime on the CPU), ready on `device`
    ('auto' picks CUDA, MPS or CPU).

    On a GPU (and with backend='torch') this is a PyTorch `LoadedModel` (`.module` is the
    network). On the CPU, `backend='auto'` picks what `srgan upscale` picks: the backend
    measured fastest for this model on this machine (ONNX Runtime, ncnn or PyTorch; the
    measurement is made once and cached). `precision='int8'` runs a quantized copy."""
    return open_model(str(name_or_path), scale, resolve_device(str(device)), precision, backend)


_runners: dict[int, tuple[tuple[str, str], Forward]] = {}
_runners_lock = threading.Lock()


def _runner_for(model: AnyModel, options: UpscaleOptions) -> Forward:
    """One runner per model (an ONNX Runtime session or ncnn net is costly to create),
    dropped when the model is."""
    wanted = (options.device, options.precision)
    key = id(model)
    with _runners_lock:
        known = _runners.get(key)
        if known is not None and known[0] == wanted:
            return known[1]
    runner = make_runner(model, options)
    with _runners_lock:
        if key not in _runners:
            weakref.finalize(model, _runners.pop, key, None)
        _runners[key] = (wanted, runner)
    return runner


@overload
def upscale(
    image: np.ndarray, model: AnyModel | str = ..., **options: Unpack[UpscaleKeywords]
) -> np.ndarray: ...
@overload
def upscale(
    image: PILImage.Image, model: AnyModel | str = ..., **options: Unpack[UpscaleKeywords]
) -> PILImage.Image: ...
@overload
def upscale(
    image: Image | str | os.PathLike[str],
    model: AnyModel | str = ...,
    **options: Unpack[UpscaleKeywords],
) -> Image: ...


def upscale(
    image,
    model: AnyModel | str = DEFAULT_MODEL,
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
    A model name is opened as `load_model` does (the backend measured fastest here on the
    CPU). `device` defaults to the device the model is on."""
    if isinstance(model, (str, os.PathLike)):
        loaded = load_model(model, device or "auto", precision=precision)
    else:
        loaded = model
    if device is not None:
        target = resolve_device(str(device))
    else:
        target = str(loaded.device) if isinstance(loaded, LoadedModel) else "cpu"
    options = UpscaleOptions(tile, tile_pad, outscale, alpha_mode, precision, target)
    runner = None if isinstance(loaded, LoadedModel) else _runner_for(loaded, options)

    if isinstance(image, np.ndarray):
        pixels = image[..., None] if image.ndim == 2 else image
        if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim != 3:
            raise ValueError("arrays must be (H, W) or (H, W, C) of uint8 or uint16")
        if pixels.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"arrays need 1 to 4 channels, got {pixels.shape[2]}")
        meta = ImageMeta(bit_depth=16 if pixels.dtype == np.uint16 else 8)
        result = upscale_image(loaded, Image(pixels, meta), options, progress, runner).pixels
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
    return upscale_image(loaded, decoded, options, progress, runner)
