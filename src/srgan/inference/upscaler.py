"""Upscale decoded images with any model, keeping alpha, gray and bit depth.

The image stays in its stored dtype on the CPU; tiles are converted to float, run by a
backend (PyTorch on any device; ONNX Runtime or ncnn on the CPU), and blended back into a
preallocated output (see `tiling`). This module imports PyTorch only when the model or
the options need it, so the ONNX Runtime and ncnn backends start without it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from srgan.defaults import DEFAULT_TILE_PAD
from srgan.errors import BadInputError
from srgan.imaging.io import Image
from srgan.imaging.rows import RowStream, collect, stream_array
from srgan.inference.backends import backend_of, default_threads, runner_for
from srgan.inference.backends.base import AnyModel
from srgan.inference.tiling import Forward, auto_tile_size, available_memory_bytes, tiled_rows
from srgan.zoo.onnx_generic import GenericOnnx

log = logging.getLogger(__name__)

__all__ = [
    "AnyModel",
    "UpscaleOptions",
    "make_runner",
    "model_rows",
    "upscale_image",
    "upscale_pixels",
    "upscale_rows",
]

Precision = Literal["fp32", "fp16", "bf16", "int8"]
AlphaMode = Literal["model", "bicubic"]
TileProgress = Callable[[int, int], None]

_BICUBIC_PAD = 3  # the bicubic kernel reaches 2 input pixels: 3 makes tiles exact
_TILE_BUDGET_FRACTION = 0.25
_CPU_TILE_BUDGET = 1 << 30  # bigger CPU tiles are no faster; keep the footprint modest
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
_ALPHA_MODES = ("model", "bicubic")
MIN_TILE = 16
_SMALL_PAD = 4


@dataclass(frozen=True)
class UpscaleOptions:
    """How to run a model over an image; validated on creation (ValueError).

    tile: core tile side in input pixels; None picks one from the memory available, 0
    runs the whole image at once. tile_pad: context pixels around each tile (the overlap
    is blended). outscale: final scale (model, then MATLAB bicubic to ceil(H * outscale)).
    device: 'cpu', 'cuda', 'cuda:N' or 'mps' (see `resolve_device` for 'auto').
    """

    tile: int | None = None
    tile_pad: int = DEFAULT_TILE_PAD
    outscale: float | None = None
    alpha_mode: AlphaMode = "model"
    precision: Precision = "fp32"
    device: str = "cpu"
    parallel_images: int = 1  # images upscaled at once: memory and threads are split

    def __post_init__(self) -> None:
        if self.tile is not None and self.tile != 0 and self.tile < MIN_TILE:
            raise ValueError(f"--tile must be 0 (whole image) or at least {MIN_TILE}")
        if self.tile_pad < 0:
            raise ValueError("--tile-pad must not be negative")
        if self.outscale is not None and not (math.isfinite(self.outscale) and self.outscale > 0):
            raise ValueError(f"--outscale must be a positive number, got {self.outscale}")
        if self.alpha_mode not in _ALPHA_MODES:
            raise ValueError(f"alpha mode {self.alpha_mode!r}: use model or bicubic")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: use {', '.join(PRECISIONS)}")
        object.__setattr__(self, "device", str(self.device))


def resolve_device(name: str = "auto") -> str:
    """'auto' -> CUDA if available, then MPS, else CPU; explicit names are checked.

    A CPU-only PyTorch build answers 'cpu' without being imported (it cannot see a GPU),
    which keeps start-up fast for the ncnn backend."""
    if name == "auto":
        if _cpu_only_torch():
            return "cpu"
        from srgan.inference.backends.torch import cuda_or_mps

        return cuda_or_mps()
    if name == "cpu":
        return "cpu"
    from srgan.inference.backends.torch import check_device

    return check_device(name)


def _cpu_only_torch() -> bool:
    """Whether PyTorch can only use the CPU here, told without importing it (fast): no GPU
    driver devices, or a PyTorch build without GPU libraries."""
    import importlib.util
    import platform
    from pathlib import Path

    if platform.system() == "Darwin":
        return False  # MPS: only torch can tell
    if platform.system() == "Linux" and not any(
        Path(device).exists() for device in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")
    ):
        return True
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return True
    libraries = Path(spec.origin).parent / "lib"
    gpu_libraries = ("libtorch_cuda.so", "libtorch_hip.so", "torch_cuda.dll")
    return not any((libraries / name).exists() for name in gpu_libraries)


def choose_tile(model: AnyModel, image: Image, options: UpscaleOptions) -> int:
    """The tile side to use: the user's, or the largest that fits the memory budget."""
    return tile_for_size(model, image.height, image.width, options, image.channels)


def tile_for_size(
    model: AnyModel, height: int, width: int, options: UpscaleOptions, channels: int = 3
) -> int:
    """`choose_tile` for an image of this size (known from its header, before decoding).

    On the CPU the band of output rows a row of tiles fills (float32, the whole output
    width) shares the budget with the activations: a wide image gets shorter tiles."""
    largest = model.max_tile_input if isinstance(model, GenericOnnx) else 0
    if largest:  # a fixed input size: tiles and their context must fit in it
        core = largest - 2 * options.tile_pad
        if core < MIN_TILE and core < max(height, width):
            raise BadInputError(
                f"{model.name} takes {largest}x{largest} inputs: --tile-pad "
                f"{options.tile_pad} leaves tiles of {core} pixels; use --tile-pad "
                f"{max(0, (largest - MIN_TILE) // 2)} or less"
            )
        if options.tile is not None and 0 < options.tile <= core:
            return options.tile
        if options.tile is not None:
            log.info("%s: tiles of %d, as its fixed input size allows", model.name, core)
        return 0 if core >= max(height, width) else core
    if options.tile is not None:
        return options.tile
    if not model.descriptor.tileable or model.descriptor.memory_per_pixel <= 0:
        return 0
    scale = max(1.0, float(model.scale))
    row_bytes = scale * (width * scale) * channels * 4 if options.device == "cpu" else 0.0
    per_pixel = model.descriptor.memory_per_pixel
    return tile_for_budget(model, per_pixel, height, width, options, row_bytes)


def halves_activations(model: AnyModel, precision: str) -> bool:
    """Whether the model's activations take half the fp32 memory at this precision."""
    return precision in ("fp16", "bf16") and backend_of(model).half_activations


def tile_for_budget(
    model: AnyModel,
    bytes_per_pixel: float,
    height: int,
    width: int,
    options: UpscaleOptions,
    bytes_per_tile_row: float = 0.0,
) -> int:
    """The largest tile side whose activations (`bytes_per_pixel` per input pixel in fp32)
    and band (`bytes_per_tile_row` per input row of tile) fit this device's budget, shared
    between parallel images; 0 when the image fits whole."""
    available = available_memory_bytes(options.device)
    if options.device == "cpu":
        budget = min(_CPU_TILE_BUDGET, int(available * 0.25))
    else:
        budget = int(available * _TILE_BUDGET_FRACTION)
    budget //= max(1, options.parallel_images)
    if halves_activations(model, options.precision):
        bytes_per_pixel /= 2
    tile = auto_tile_size(bytes_per_pixel, budget, bytes_per_tile_row=bytes_per_tile_row)
    return 0 if tile >= max(height, width) else tile


def backend_name(model: AnyModel) -> str:
    return backend_of(model).name


def make_runner(
    model: AnyModel, options: UpscaleOptions, threads: int | None = None, spinning: bool = True
) -> Forward:
    """The tile forward for a model. ONNX Runtime and ncnn get `threads` (default: the
    cores shared between parallel images, or all of them for ONNX Runtime, whose one
    session serves every image) and, with `spinning` off, threads that sleep as soon as
    they are idle rather than busy-wait for the next call (for callers that run other
    work on the same cores between calls); PyTorch uses its global thread setting."""
    if threads is None:
        shared = backend_of(model).shares_threads
        threads = default_threads(1 if shared else options.parallel_images)
    return runner_for(model, threads, options.device, options.precision, spinning)


def upscale_pixels(
    model: AnyModel,
    image: Image,
    options: UpscaleOptions = UpscaleOptions(),
    progress: TileProgress | None = None,
    runner: Forward | None = None,
) -> np.ndarray:
    """(H, W, C) pixels -> (H*s, W*s, C) pixels at the model's scale, same dtype.

    Pass `runner` (from `make_runner`) to reuse one across many images."""
    return collect(model_rows(model, image, options, progress, runner))


def model_rows(
    model: AnyModel,
    image: Image,
    options: UpscaleOptions = UpscaleOptions(),
    progress: TileProgress | None = None,
    runner: Forward | None = None,
) -> RowStream:
    """The model's output at its own scale as a stream of finished rows (see `tiling`)."""
    if model.scale != int(model.scale):  # only bicubic has fractional scales: no tiles
        from srgan.imaging.resize import resize_rows

        return resize_rows(stream_array(image.pixels), scale=model.scale)
    scale = int(model.scale)
    tile = choose_tile(model, image, options)
    is_network = model.descriptor.in_channels != 0
    if is_network and tile and options.tile_pad < _SMALL_PAD:
        log.warning("--tile-pad %d is too little context: tile borders may show", options.tile_pad)
    log.info(
        "%s: %s %s on %s, tile %s, pad %d",
        model.name,
        backend_name(model),
        getattr(model, "precision", options.precision),
        options.device,
        tile or "whole image",
        options.tile_pad,
    )
    runner = runner or make_runner(model, options)
    groups = channel_groups(model, image, runner, options)
    bicubic_alpha = image.has_alpha and options.alpha_mode == "bicubic"
    tiles = [0] * len(groups)

    def reporter(index: int) -> TileProgress:
        def report(done: int, count: int) -> None:
            tiles[index] = done
            if progress:
                progress(sum(tiles), len(groups) * count)

        return report

    parts = []
    for index, (selection, forward, pad) in enumerate(groups):
        source = image.pixels[..., selection]
        if is_network and not (bicubic_alpha and index == len(groups) - 1):
            exact = exact_tile_pad(model, tile, pad)
            if exact != pad:
                log.info("%s: tile padding %d -> %d, so that tiles match the whole image",
                         model.name, pad, exact)  # fmt: skip
            pad = exact
            forward = _with_whole_image_statistics(model, source, tile, forward)
        stream = tiled_rows(
            source,
            forward,
            scale,
            tile,
            pad,
            size_multiple=model.descriptor.size_multiple,
            progress=reporter(index),
        )
        parts.append((selection, stream))
    if len(parts) == 1:
        return parts[0][1]
    height, width, channels = image.pixels.shape
    blocks = _interleave(parts, width * scale, channels, image.pixels.dtype)
    return RowStream(height * scale, width * scale, channels, image.pixels.dtype, blocks)


def _interleave(
    parts: list[tuple[slice, RowStream]], width: int, channels: int, dtype: np.dtype
) -> Iterator[np.ndarray]:
    """Rows made of the channels of several streams (colour, alpha), each advanced in
    turn, so that only the rows some stream is ahead by are held."""
    sources = [iter(stream) for _, stream in parts]
    held: list[list[np.ndarray]] = [[] for _ in parts]
    ready = [0] * len(parts)  # rows held per stream
    height = parts[0][1].height
    emitted = 0
    while emitted < height:
        behind = min(range(len(parts)), key=lambda i: ready[i])
        block = next(sources[behind])
        held[behind].append(block)
        ready[behind] += block.shape[0]
        count = min(ready)
        if count == 0:
            continue
        out = np.empty((count, width, channels), dtype=dtype)
        for index, (selection, _) in enumerate(parts):
            rows = np.concatenate(held[index]) if len(held[index]) > 1 else held[index][0]
            out[..., selection] = rows[:count]
            held[index] = [rows[count:]] if rows.shape[0] > count else []
            ready[index] -= count
        emitted += count
        yield out


def exact_tile_pad(model: AnyModel, tile: int, pad: int) -> int:
    """The tile padding used: tiles of a network that reads `context` pixels around each
    output pixel are exact with twice that (the blend ignores the outer half)."""
    context = model.descriptor.context
    if not tile or not context or pad >= 2 * context:
        return pad
    return 2 * context


def _with_whole_image_statistics(
    model: AnyModel, source: np.ndarray, tile: int, forward: Forward
) -> Forward:
    """Squeeze-excitation networks pool over the whole image: `forward` with those
    statistics fixed while it runs a tile, computed before its first tile (see
    `srgan.zoo.global_stats`). The statistics belong to this forward, not to the thread,
    so interleaved streams (colour, alpha) each keep their own."""
    if isinstance(model, GenericOnnx):  # any ONNX file: its own pools, nothing to fix
        return forward
    if not (model.descriptor.global_statistics and tile and max(source.shape[:2]) > tile):
        return forward
    from srgan.zoo.global_stats import WholeImageStatistics, whole_image_statistics

    channels = model.descriptor.in_channels
    computed: list[WholeImageStatistics] = []

    def run(batch: np.ndarray) -> np.ndarray:
        if not computed:
            computed.append(whole_image_statistics(model, source, tile, channels))
        with computed[0].applied():
            return forward(batch)

    return run


def _gray_through_colour(run: Forward) -> Forward:
    """Feed a 1-channel tile to a 3-channel network and average the result back."""

    def forward(tile: np.ndarray) -> np.ndarray:
        return run(np.repeat(tile, 3, axis=1)).mean(axis=1, keepdims=True, dtype=np.float32)

    return forward


def channel_groups(
    model: AnyModel, image: Image, runner: Forward, options: UpscaleOptions
) -> list[tuple[slice, Forward, int]]:
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
            from srgan.inference.backends.torch import bicubic_forward

            groups.append((alpha, bicubic_forward(model.scale), _BICUBIC_PAD))
    return groups


def upscale_image(
    model: AnyModel,
    image: Image,
    options: UpscaleOptions = UpscaleOptions(),
    progress: TileProgress | None = None,
    runner: Forward | None = None,
) -> Image:
    """Upscale a decoded image; the result keeps its bit depth, channels and metadata."""
    return Image(collect(upscale_rows(model, image, options, progress, runner)), image.meta)


def upscale_rows(
    model: AnyModel,
    image: Image,
    options: UpscaleOptions = UpscaleOptions(),
    progress: TileProgress | None = None,
    runner: Forward | None = None,
) -> RowStream:
    """`upscale_image` as a stream of finished rows, for writers that encode them as they
    come (`imaging.io.write_rows`): the model's bands, then `--outscale`'s banded MATLAB
    resize. Same pixels as `upscale_image`."""
    model, outscale, runner = _scale_free(model, options.outscale, runner)
    rows = model_rows(model, image, options, progress, runner)
    if outscale is not None and outscale != model.scale:
        from srgan.imaging.resize import output_size, resize_rows

        rows = resize_rows(rows, size=output_size(image.height, image.width, outscale))
    return rows


def _scale_free(
    model: AnyModel, outscale: float | None, runner: Forward | None
) -> tuple[AnyModel, float | None, Forward | None]:
    """A scale-free model (bicubic) resizes once, exactly, to the final scale."""
    if model.descriptor.in_channels == 0 and outscale is not None:
        from srgan.zoo.bicubic import load_bicubic

        return load_bicubic(outscale), None, None
    return model, outscale, runner
