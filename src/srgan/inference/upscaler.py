"""Upscale decoded images with any `LoadedModel`, keeping alpha, gray and bit depth.

The image stays in its stored dtype on the CPU; tiles are converted to float, moved to
the device, run, and blended back into a preallocated output (see `tiling`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from srgan.imaging.io import Image
from srgan.imaging.resize import imresize, output_size
from srgan.inference.tiling import auto_tile_size, available_memory_bytes, tiled_upscale
from srgan.zoo.descriptor import LoadedModel

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "bf16"]
AlphaMode = Literal["model", "bicubic"]
TileProgress = Callable[[int, int], None]

DEFAULT_TILE_PAD = 16
_BICUBIC_PAD = 3  # the bicubic kernel reaches 2 input pixels: 3 makes tiles exact
_TILE_BUDGET_FRACTION = 0.25
_CPU_TILE_BUDGET = 1 << 30  # bigger CPU tiles are no faster; keep the footprint modest


@dataclass(frozen=True)
class UpscaleOptions:
    """How to run a model over an image.

    tile: core tile side in input pixels; None picks one from the memory available, 0
    runs the whole image at once. tile_pad: context pixels around each tile (the overlap
    is blended). outscale: final scale (model, then MATLAB bicubic to ceil(H * outscale)).
    """

    tile: int | None = None
    tile_pad: int = DEFAULT_TILE_PAD
    outscale: float | None = None
    alpha_mode: AlphaMode = "model"
    precision: Precision = "fp32"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA if available, then MPS, else CPU; also 'cpu', 'cuda', 'cuda:N', 'mps'."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: use auto, cpu, cuda, cuda:N or mps")
    return device


class ModelRunner:
    """Runs a model on CPU float tiles at the chosen device and precision.

    A half-precision tile whose output holds NaN or inf is recomputed in fp32, and the
    rest of the run stays in fp32 (with a warning), since such overflow tends to recur.
    """

    def __init__(self, model: LoadedModel, device: torch.device, precision: Precision) -> None:
        self.model = model
        self.device = device
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
            precision
        ]
        supported = {
            torch.float16: model.descriptor.supports_half,
            torch.bfloat16: model.descriptor.supports_bf16,
        }
        if not supported.get(self.dtype, True):
            log.warning("%s does not support %s; running in fp32", model.name, precision)
            self.dtype = torch.float32
        model.module.to(device)

    def __call__(self, tile: torch.Tensor) -> torch.Tensor:
        x = tile.to(self.device, non_blocking=True)
        if self.dtype != torch.float32:
            with torch.autocast(self.device.type, dtype=self.dtype):
                out = self.model.module(x)
            if torch.isfinite(out).all():
                return out.float().cpu()
            log.warning(
                "%s produced NaN/inf in %s; falling back to fp32 for the rest of the run",
                self.model.name,
                str(self.dtype).removeprefix("torch."),
            )
            self.dtype = torch.float32
        return self.model.module(x).float().cpu()


def _gray_through_colour(run: Callable[[torch.Tensor], torch.Tensor]):
    """Feed a 1-channel tile to a 3-channel network and average the result back."""

    def forward(tile: torch.Tensor) -> torch.Tensor:
        return run(tile.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)

    return forward


def choose_tile(model: LoadedModel, image: Image, options: UpscaleOptions) -> int:
    """The tile side to use: the user's, or the largest that fits the memory budget."""
    if options.tile is not None:
        return options.tile
    if not model.descriptor.tileable or model.descriptor.memory_per_pixel <= 0:
        return 0
    if options.device.type == "cpu":
        budget = min(_CPU_TILE_BUDGET, int(available_memory_bytes(options.device) * 0.25))
    else:
        budget = int(available_memory_bytes(options.device) * _TILE_BUDGET_FRACTION)
    bytes_per_pixel = model.descriptor.memory_per_pixel
    if options.precision != "fp32":
        bytes_per_pixel /= 2
    tile = auto_tile_size(bytes_per_pixel, budget)
    return 0 if tile >= max(image.height, image.width) else tile


@torch.inference_mode()
def upscale_pixels(
    model: LoadedModel,
    image: Image,
    options: UpscaleOptions = UpscaleOptions(),
    progress: TileProgress | None = None,
) -> np.ndarray:
    """(H, W, C) pixels -> (H*s, W*s, C) pixels at the model's scale, same dtype."""
    if model.scale != int(model.scale):  # only bicubic has fractional scales: no tiles
        tensor = imresize(image.to_tensor(), scale=model.scale).clamp_(0, 1)
        return Image.from_tensor(tensor, image.meta).pixels
    scale = int(model.scale)
    tile = choose_tile(model, image, options)
    log.info(
        "%s: %s, tile %s, pad %d",
        model.name,
        options.device,
        tile or "whole image",
        options.tile_pad,
    )
    runner = ModelRunner(model, options.device, options.precision)
    pixels = image.pixels
    groups = _channel_groups(model, image, runner, options)
    total = len(groups)
    results = []
    for index, (channels, forward, pad) in enumerate(groups):

        def report(done: int, count: int, index: int = index) -> None:
            if progress:
                progress(index * count + done, total * count)

        results.append(
            tiled_upscale(
                np.ascontiguousarray(pixels[..., channels]),
                forward,
                scale,
                tile,
                pad,
                size_multiple=model.descriptor.size_multiple,
                progress=report,
            )
        )
    return np.concatenate(results, axis=2) if len(results) > 1 else results[0]


def _channel_groups(
    model: LoadedModel, image: Image, runner: ModelRunner, options: UpscaleOptions
) -> list[tuple[slice, Callable[[torch.Tensor], torch.Tensor], int]]:
    """Which channels go through which forward function, with their tile padding."""
    if model.descriptor.in_channels == 0:  # channel-agnostic (bicubic): everything at once
        return [(slice(None), runner, max(options.tile_pad, _BICUBIC_PAD))]
    colour = slice(0, 3) if image.channels >= 3 else slice(0, 1)
    colour_forward = runner if image.channels >= 3 else _gray_through_colour(runner)
    groups = [(colour, colour_forward, options.tile_pad)]
    if image.has_alpha:
        alpha = slice(image.channels - 1, image.channels)
        if options.alpha_mode == "model":
            groups.append((alpha, _gray_through_colour(runner), options.tile_pad))
        else:
            scale = model.scale

            def bicubic(tile: torch.Tensor) -> torch.Tensor:
                return imresize(tile, scale=scale)

            groups.append((alpha, bicubic, _BICUBIC_PAD))
    return groups


def upscale_image(
    model: LoadedModel,
    image: Image,
    options: UpscaleOptions = UpscaleOptions(),
    progress: TileProgress | None = None,
) -> Image:
    """Upscale a decoded image; the result keeps its bit depth, channels and metadata."""
    pixels = upscale_pixels(model, image, options, progress)
    if options.outscale is not None and options.outscale != model.scale:
        size = output_size(image.height, image.width, options.outscale)
        with torch.inference_mode():
            tensor = imresize(Image(pixels, image.meta).to_tensor(), size=size).clamp_(0, 1)
            return Image.from_tensor(tensor, image.meta)
    return Image(pixels, image.meta)


def upscale_tensor(
    model: LoadedModel, x: torch.Tensor, outscale: float | None = None
) -> torch.Tensor:
    """(C, H, W) float in [0, 1] -> upscaled float (C, H', W'), untiled, for evaluation."""
    with torch.inference_mode():
        channels = x.shape[0]
        batch = x.unsqueeze(0).to(model.device)
        if model.descriptor.in_channels == 3 and channels == 1:
            result = model.module(batch.expand(-1, 3, -1, -1)).mean(1, keepdim=True)
        else:
            result = model.module(batch)
        result = result.squeeze(0).float().cpu().clamp_(0, 1)
        if outscale is not None and outscale != model.scale:
            size = output_size(x.shape[1], x.shape[2], outscale)
            result = imresize(result, size=size).clamp_(0, 1)
        return result
