"""One image file in, one image file out: header, memory plan, decode, upscale, write.

The order is the point: the header is read and the whole job's memory is planned
(`job_memory`) and the output's size checked against its format before a pixel is
decoded; then the result is written band by band as the tiling engine finishes its rows
(PNG, TIFF) or collected and encoded (other formats). Nothing here prints.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from srgan.defaults import DEFAULT_MAX_PIXELS, DEFAULT_PNG_LEVEL
from srgan.errors import BadInputError
from srgan.imaging.header import ImageHeader, probe_image
from srgan.imaging.io import Image, check_output_size, output_format, read_image, write_rows
from srgan.inference.job_memory import MemoryPlan, format_bytes, plan_resize, plan_upscale
from srgan.inference.pipeline import Timings, prefetched
from srgan.inference.tiling import DEFAULT_TILE_CANDIDATES, Forward
from srgan.inference.upscaler import (
    MIN_TILE,
    AnyModel,
    TileProgress,
    UpscaleOptions,
    exact_tile_pad,
    halves_activations,
    tile_for_size,
    upscale_rows,
)
from srgan.user_files import shown

__all__ = [
    "FileSettings",
    "PreparedUpscale",
    "describe",
    "finish_upscale",
    "prepare_upscale",
    "read_within",
    "resize_file",
    "upscale_file",
    "upscale_plan",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileSettings:
    """How files are read and written: the input pixel limit, the memory one job may
    use (bytes), JPEG/WebP quality and the PNG zlib level."""

    memory_limit: int
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    quality: int = 95
    compress_level: int = DEFAULT_PNG_LEVEL


def describe(image: Image | ImageHeader) -> str:
    channels = image.channels
    layout = {1: "gray", 2: "gray+alpha", 3: "RGB", 4: "RGBA"}.get(channels, f"{channels}-ch")
    depth = image.meta.bit_depth if isinstance(image, Image) else image.bit_depth
    icc = ", ICC profile" if isinstance(image, Image) and image.meta.icc_profile else ""
    return f"{image.width}x{image.height} {layout} {depth}-bit{icc}"


def upscale_plan(
    model: AnyModel,
    header: ImageHeader,
    source: Path,
    target: Path,
    options: UpscaleOptions,
    memory_limit: int | None = None,
) -> tuple[MemoryPlan, int]:
    """The memory plan of upscaling `source` into `target`, and the tile side it uses.

    With an automatic tile (`options.tile` None) and a `memory_limit` the first plan does
    not fit, smaller tiles are tried: a wide image or a tight limit gets shorter bands."""
    tile = tile_for_size(model, header.height, header.width, options, header.channels)
    plan = _plan_with_tile(model, header, source, target, options, tile)
    if options.tile is not None or memory_limit is None or plan.peak <= memory_limit:
        return plan, tile
    if not model.descriptor.tileable or model.scale != int(model.scale):
        return plan, tile
    longest = max(header.height, header.width)
    for smaller in sorted(DEFAULT_TILE_CANDIDATES, reverse=True):
        if smaller >= (tile or longest):
            continue
        candidate = _plan_with_tile(model, header, source, target, options, smaller)
        plan, tile = candidate, smaller
        if candidate.peak <= memory_limit:
            break
    return plan, tile


def _plan_with_tile(
    model: AnyModel,
    header: ImageHeader,
    source: Path,
    target: Path,
    options: UpscaleOptions,
    tile: int,
) -> MemoryPlan:
    descriptor = model.descriptor
    outscale = options.outscale
    scale = float(model.scale)
    if descriptor.in_channels == 0 and outscale is not None:  # bicubic: one exact resize
        scale, outscale = outscale, None
    return plan_upscale(
        header,
        source,
        output_format(target),
        scale,
        outscale,
        tile,
        exact_tile_pad(model, tile, options.tile_pad),
        descriptor.memory_per_pixel,
        half_precision=halves_activations(model, options.precision),
        activations_on_host=options.device == "cpu",
    )


@dataclass
class PreparedUpscale:
    """A decoded input whose job was planned and checked: what `finish_upscale` needs."""

    image: Image
    target: Path
    plan: MemoryPlan
    tile: int


def prepare_upscale(
    model: AnyModel,
    source: Path,
    target: Path,
    options: UpscaleOptions,
    settings: FileSettings,
) -> PreparedUpscale:
    """Read `source`'s header, plan the job's memory and check the output's size (refusing
    before decoding a job that would not fit in `settings.memory_limit` or whose result the
    output format cannot hold), then decode it."""
    header = probe_image(source, settings.max_pixels)
    log.info("read %s: %s", source, describe(header))
    limit = settings.memory_limit
    plan, tile = upscale_plan(model, header, source, target, options, limit)
    forced = options.tile is not None and (tile == 0 or tile > MIN_TILE)  # --tile can shrink
    _check_plan(plan, header, settings, tile_flag=forced)
    image = read_image(source, settings.max_pixels)
    if _differs(image, header):  # the file changed, or its header told less than the truth
        actual = _header_of(image, header)
        plan, tile = upscale_plan(model, actual, source, target, options, limit)
        _check_plan(plan, header, settings, tile_flag=forced)
    return PreparedUpscale(image, target, plan, tile)


def finish_upscale(
    model: AnyModel,
    job: PreparedUpscale,
    options: UpscaleOptions,
    settings: FileSettings,
    progress: TileProgress | None = None,
    runner: Forward | None = None,
    timings: Timings | None = None,
) -> None:
    """Upscale a prepared input into its target. PNG and TIFF are encoded band by band
    while the next band computes (`prefetched`); other formats are collected, then
    encoded. `timings` gets compute and encode seconds (encode: time not spent waiting
    for the network)."""
    rows = upscale_rows(model, job.image, replace(options, tile=job.tile), progress, runner)
    ahead = prefetched(rows, timings)
    started = time.perf_counter()
    write_rows(
        job.target, ahead.rows, job.image.meta, settings.quality,
        compress_level=settings.compress_level,
    )  # fmt: skip
    if timings is not None:
        timings.add("encode", time.perf_counter() - started - ahead.waited)
    log.info(
        "wrote %s: %dx%d%s",
        job.target,
        rows.width,
        rows.height,
        " (streamed)" if job.plan.streamed else "",
    )


def upscale_file(
    model: AnyModel,
    source: Path,
    target: Path,
    options: UpscaleOptions,
    settings: FileSettings,
    progress: TileProgress | None = None,
    runner: Forward | None = None,
) -> MemoryPlan:
    """Upscale one file into another (`prepare_upscale`, then `finish_upscale`)."""
    job = prepare_upscale(model, source, target, options, settings)
    finish_upscale(model, job, options, settings, progress, runner)
    return job.plan


def resize_file(
    source: Path,
    target: Path,
    settings: FileSettings,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
) -> MemoryPlan:
    """MATLAB-bicubic resize of one file (`scale`, or `size` as (height, width)), planned
    like `upscale_file` and written band by band where the format allows."""
    from srgan.imaging.resize import output_size, resize_rows
    from srgan.imaging.rows import stream_array

    header = probe_image(source, settings.max_pixels)
    log.info("read %s: %s", source, describe(header))
    out_size = size or output_size(header.height, header.width, scale)  # type: ignore[arg-type]
    plan = plan_resize(header, source, output_format(target), out_size)
    _check_plan(plan, header, settings, tile_flag=False)
    image = read_image(source, settings.max_pixels)
    # The header's size is upright, so is the image: the planned size stays right.
    rows = resize_rows(stream_array(image.pixels), scale=scale if size is None else None, size=size)
    write_rows(target, rows, image.meta, settings.quality, compress_level=settings.compress_level)
    log.info("wrote %s: %dx%d", target, rows.width, rows.height)
    return plan


def read_within(
    path: Path,
    max_pixels: int | None,
    memory_limit: int,
    bytes_per_pixel: float,
    purpose: str = "process it",
) -> Image:
    """`read_image`, refused before decoding (one line) when decoding plus `bytes_per_pixel`
    of work per pixel (float copies, metrics, a model's activations) exceeds the limit."""
    header = probe_image(path, max_pixels)
    need = header.decode_peak + int(header.pixel_count * bytes_per_pixel)
    if need > memory_limit:
        raise BadInputError(
            f"{shown(path)}: a {header.width}x{header.height} image needs about "
            f"{format_bytes(need)} of memory to {purpose} but {format_bytes(memory_limit)} "
            "may be used (refuse such files early with --max-pixels, or allow more memory "
            "with --max-memory)"
        )
    return read_image(path, max_pixels)


def _check_plan(
    plan: MemoryPlan, header: ImageHeader, settings: FileSettings, tile_flag: bool
) -> None:
    width, height = plan.output_size
    check_output_size(plan.name, plan.output_format, width, height, header.channels)
    log.info(
        "memory: about %d MB planned of %d MB allowed%s",
        plan.peak >> 20,
        settings.memory_limit >> 20,
        " (output written band by band)" if plan.streamed else "",
    )
    plan.check(settings.memory_limit, tile_flag=tile_flag)


def _differs(image: Image, header: ImageHeader) -> bool:
    return (image.width, image.height, image.channels, image.meta.bit_depth) != (
        header.width,
        header.height,
        header.channels,
        header.bit_depth,
    )


def _header_of(image: Image, header: ImageHeader) -> ImageHeader:
    return replace(
        header,
        width=image.width,
        height=image.height,
        channels=image.channels,
        bit_depth=image.meta.bit_depth,
    )
