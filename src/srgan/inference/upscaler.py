"""Upscale decoded images with any `LoadedModel`, keeping alpha, gray and bit depth.

The image stays in its stored dtype on the CPU; tiles are converted to float, moved to
the device, run, and blended back into a preallocated output (see `tiling`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from srgan.errors import BadInputError
from srgan.imaging.io import Image
from srgan.imaging.resize import imresize, output_size
from srgan.inference.tiling import auto_tile_size, available_memory_bytes, tiled_upscale
from srgan.zoo.bicubic import load_bicubic
from srgan.zoo.descriptor import LoadedModel

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "bf16"]
AlphaMode = Literal["model", "bicubic"]
TileProgress = Callable[[int, int], None]

DEFAULT_TILE_PAD = 16
_BICUBIC_PAD = 3  # the bicubic kernel reaches 2 input pixels: 3 makes tiles exact
_TILE_BUDGET_FRACTION = 0.25
_CPU_TILE_BUDGET = 1 << 30  # bigger CPU tiles are no faster; keep the footprint modest


_PRECISIONS = ("fp32", "fp16", "bf16")
_ALPHA_MODES = ("model", "bicubic")
MIN_TILE = 16
_SMALL_PAD = 4


@dataclass(frozen=True)
class UpscaleOptions:
    """How to run a model over an image; validated on creation (ValueError).

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
    parallel_images: int = 1  # images upscaled at once: the automatic tile budget is split

    def __post_init__(self) -> None:
        if self.tile is not None and self.tile != 0 and self.tile < MIN_TILE:
            raise ValueError(f"--tile must be 0 (whole image) or at least {MIN_TILE}")
        if self.tile_pad < 0:
            raise ValueError("--tile-pad must not be negative")
        if self.outscale is not None and not (math.isfinite(self.outscale) and self.outscale > 0):
            raise ValueError(f"--outscale must be a positive number, got {self.outscale}")
        if self.alpha_mode not in _ALPHA_MODES:
            raise ValueError(f"alpha mode {self.alpha_mode!r}: use model or bicubic")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: use fp32, fp16 or bf16")


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
    model stays in fp32 from then on (`LoadedModel.fp32_only`), with one warning, since
    such overflow tends to recur on every image.
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
        if self.dtype != torch.float32 and not model.fp32_only and not supported[self.dtype]:
            log.warning("%s does not support %s; running in fp32", model.name, precision)
            model.fp32_only = True
        if model.fp32_only:
            self.dtype = torch.float32
        model.module.to(device)

    def __call__(self, tile: torch.Tensor) -> torch.Tensor:
        x = tile.to(self.device, non_blocking=True)
        if self.dtype != torch.float32 and not self.model.fp32_only:
            with torch.autocast(self.device.type, dtype=self.dtype):
                out = self.model.module(x)
            if torch.isfinite(out).all():
                return out.float().cpu()
            log.warning(
                "%s produced NaN/inf in %s; falling back to fp32 for the rest of the run",
                self.model.name,
                str(self.dtype).removeprefix("torch."),
            )
            self.model.fp32_only = True
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
    budget //= max(1, options.parallel_images)
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
    is_network = model.descriptor.in_channels != 0
    if is_network and tile and options.tile_pad < _SMALL_PAD:
        log.warning("--tile-pad %d is too little context: tile borders may show", options.tile_pad)
    log.info(
        "%s: %s, tile %s, pad %d",
        model.name,
        options.device,
        tile or "whole image",
        options.tile_pad,
    )
    runner = ModelRunner(model, options.device, options.precision)
    groups = _channel_groups(model, image, runner, options)
    height, width, channels = image.pixels.shape
    output = np.empty((height * scale, width * scale, channels), dtype=image.pixels.dtype)
    for index, (selection, forward, pad) in enumerate(groups):

        def report(done: int, count: int, index: int = index) -> None:
            if progress:
                progress(index * count + done, len(groups) * count)

        tiled_upscale(
            image.pixels[..., selection],
            forward,
            scale,
            tile,
            pad,
            size_multiple=model.descriptor.size_multiple,
            progress=report,
            out=output[..., selection],
        )
    return output


def _channel_groups(
    model: LoadedModel, image: Image, runner: ModelRunner, options: UpscaleOptions
) -> list[tuple[slice, Callable[[torch.Tensor], torch.Tensor], int]]:
    """Which channels go through which forward function, with their tile padding."""
    wanted = model.descriptor.in_channels
    if wanted == 0:  # channel-agnostic (bicubic): everything at once
        return [(slice(None), runner, max(options.tile_pad, _BICUBIC_PAD))]
    colour_channels = 3 if image.channels >= 3 else 1
    if wanted == 1 and colour_channels == 3:
        raise BadInputError(f"model {model.name} takes gray images; this one is in colour")
    colour = slice(0, colour_channels)
    gray_forward = runner if wanted == 1 else _gray_through_colour(runner)
    groups = [(colour, runner if colour_channels == wanted else gray_forward, options.tile_pad)]
    if image.has_alpha:
        alpha = slice(image.channels - 1, image.channels)
        if options.alpha_mode == "model":
            groups.append((alpha, gray_forward, options.tile_pad))
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
    outscale = options.outscale
    if model.descriptor.in_channels == 0 and outscale is not None:
        model, outscale = load_bicubic(outscale), None  # scale-free: resize once, exactly
    pixels = upscale_pixels(model, image, options, progress)
    if outscale is not None and outscale != model.scale:
        size = output_size(image.height, image.width, outscale)
        with torch.inference_mode():
            tensor = imresize(Image(pixels, image.meta).to_tensor(), size=size).clamp_(0, 1)
            return Image.from_tensor(tensor, image.meta)
    return Image(pixels, image.meta)
