"""`srgan upscale` and `srgan downscale`."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import console
from srgan.cli.common import (
    DEFAULT_QUALITY,
    Backend,
    BatchSettings,
    Bf16,
    ChunkSize,
    Conservative,
    Denoise,
    Device,
    Half,
    MaxMemory,
    MaxPixels,
    OnnxLayout,
    OnnxOrder,
    OnnxRange,
    Pattern,
    PngCompression,
    Precision,
    Quality,
    Recursive,
    ReportFile,
    Sequential,
    Shard,
    SkipExisting,
    Threads,
    Tile,
    TilePad,
    batch_settings,
    model_variant,
    onnx_hints,
    parse_size,
    plan_for,
    precision_from,
    run_jobs,
    seconds_since_start,
    warn_int8_quality,
)
from srgan.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MODEL, DEFAULT_PNG_LEVEL, DEFAULT_TILE_PAD
from srgan.errors import BadInputError
from srgan.imaging.io import Image, encode_image, output_format, write_bytes_atomically
from srgan.inference.backends import open_model
from srgan.inference.image_job import (
    FileSettings,
    PreparedUpscale,
    describe,
    finish_upscale,
    prepare_upscale,
    resize_file,
)
from srgan.inference.job_memory import memory_limit
from srgan.inference.pipeline import Stages, Timings
from srgan.inference.upscaler import UpscaleOptions, make_runner, resolve_device, upscale_image

log = logging.getLogger("srgan.cli")

InputPath = Annotated[
    Path, typer.Argument(metavar="IN", help="An image file or a folder of images.", readable=False)
]
OutputPath = Annotated[
    Path,
    typer.Argument(
        metavar="OUT", help="Output file (format from its extension) or folder.", readable=False
    ),
]


def upscale(
    source: InputPath,
    target: OutputPath,
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Model name (see `srgan models`) or weights file."),
    ] = DEFAULT_MODEL,
    scale: Annotated[
        float | None,
        typer.Option(
            "--scale",
            "-s",
            help="Model scale: picks it for bicubic and the file of Real-CUGAN / waifu2x, "
            "checks it for others.",
        ),
    ] = None,
    denoise: Denoise = None,
    conservative: Conservative = False,
    outscale: Annotated[
        float | None,
        typer.Option("--outscale", help="Final scale, any factor: model, then MATLAB bicubic."),
    ] = None,
    tile: Tile = None,
    tile_pad: TilePad = DEFAULT_TILE_PAD,
    alpha_mode: Annotated[
        str, typer.Option("--alpha-mode", help="Upscale alpha with the model or bicubic.")
    ] = "model",
    device: Device = "auto",
    backend: Backend = "auto",
    precision: Precision = "fp32",
    half: Half = False,
    bf16: Bf16 = False,
    onnx_layout: OnnxLayout = None,
    onnx_range: OnnxRange = None,
    onnx_order: OnnxOrder = None,
    suffix: Annotated[str, typer.Option("--suffix", help="Add _SUFFIX to output names.")] = "",
    ext: Annotated[
        str, typer.Option("--ext", help="Output format for folders: auto (keep), png, jpg...")
    ] = "auto",
    quality: Quality = DEFAULT_QUALITY,
    png_compression: PngCompression = DEFAULT_PNG_LEVEL,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    max_memory: MaxMemory = None,
    recursive: Recursive = False,
    pattern: Pattern = None,
    skip_existing: SkipExisting = False,
    threads: Threads = 1,
    sequential: Sequential = False,
    chunk_size: ChunkSize = None,
    shard: Shard = None,
    report: ReportFile = None,
) -> None:
    """Upscale an image or a folder of images; alpha, 16-bit depth and gray are kept.

    For folders (also as `srgan batch-process` / `srgan batch`): --recursive keeps the
    structure, --skip-existing resumes, --threads runs files in parallel, --shard i/n splits
    the work across machines, and a file that fails is reported while the others go on.
    The next file is read and the previous one written while the network computes.
    """
    start_up = seconds_since_start()  # interpreter, imports and arguments
    settings = batch_settings(
        recursive, pattern, skip_existing, threads, sequential, chunk_size, shard, report
    )
    folder = source.is_dir()
    try:
        options = UpscaleOptions(
            tile=tile,
            tile_pad=tile_pad,
            outscale=outscale,
            alpha_mode=alpha_mode,  # type: ignore[arg-type]
            precision=precision_from(precision, half, bf16),  # type: ignore[arg-type]
            device=resolve_device(device),
            parallel_images=settings.workers if folder else 1,
        )
    except (ValueError, RuntimeError) as exc:
        raise BadInputError(str(exc)) from None
    model = model_variant(model, scale, denoise, conservative)
    jobs = plan_for(source, target, settings, suffix, ext)
    timings = Timings()
    with timings.measure("model"):
        # The backend is chosen for all cores whatever --threads: parallel and sequential
        # runs then use the same one, and write the same bytes.
        hints = onnx_hints(onnx_layout, onnx_range, onnx_order)
        loaded = open_model(model, scale, options.device, options.precision, backend, onnx=hints)
        runner = make_runner(loaded, options)  # one per run: loads once, keeps fp32 fallbacks
    log.info("model %s (%s), x%g", loaded.name, loaded.descriptor.architecture, loaded.scale)
    warn_int8_quality(loaded.name, options.precision)
    log.info(
        "ready %.2f s after the process started (start-up %.2f s, then the model %.2f s)",
        seconds_since_start(),
        start_up,
        timings.seconds["model"],
    )

    files = FileSettings(
        memory_limit(max_memory, settings.workers if folder else 1),
        max_pixels,
        quality,
        png_compression,
    )
    targets = {job.source: job.target for job in jobs}

    def read(src: Path) -> PreparedUpscale:
        with timings.measure("decode"):
            return prepare_upscale(loaded, src, targets[src], options, files)

    def compute(job: PreparedUpscale) -> Image | None:
        """PNG and TIFF are written here, band by band as the network finishes them;
        other formats are encoded and written by the writer thread."""
        with console.tile_progress(source.name, enabled=not folder) as progress:
            if job.plan.streamed:
                finish_upscale(loaded, job, options, files, progress, runner, timings)
                return None
            tiled = replace(options, tile=job.tile)
            with timings.measure("compute"):
                return upscale_image(loaded, job.image, tiled, progress, runner)

    def write(result: Image | None, dst: Path) -> None:
        if result is None:
            return  # streamed by `compute`
        with timings.measure("encode"):
            encoded = encode_image(
                result, output_format(dst), quality, png_compression, name=dst.name
            )
        with timings.measure("write"):
            write_bytes_atomically(dst, encoded)
        log.info("wrote %s: %s", dst, describe(result))

    run_jobs(jobs, Stages(read, compute, write), "upscale", settings, folder=folder)
    log.info("timing: %s; total %.2f s", timings.describe(), seconds_since_start())


def downscale(
    source: InputPath,
    target: OutputPath,
    scale: Annotated[
        float | None, typer.Option("--scale", "-s", help="Shrink by this factor, e.g. 4.")
    ] = None,
    size: Annotated[
        str | None, typer.Option("--size", help="Exact output size WIDTHxHEIGHT.")
    ] = None,
    quality: Quality = DEFAULT_QUALITY,
    png_compression: PngCompression = DEFAULT_PNG_LEVEL,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    max_memory: MaxMemory = None,
) -> None:
    """Shrink with MATLAB's antialiased bicubic imresize (makes LR inputs for evaluation)."""
    if (scale is None) == (size is None):
        raise BadInputError("give exactly one of --scale or --size")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise BadInputError(f"--scale must be a positive number, got {scale}")
    exact_size = parse_size(size) if size else None
    settings = BatchSettings()
    jobs = plan_for(source, target, settings)

    files = FileSettings(memory_limit(max_memory), max_pixels, quality, png_compression)
    shrink = None if exact_size else 1 / scale  # type: ignore[operator]

    def action(src: Path, dst: Path) -> None:
        resize_file(src, dst, files, scale=shrink, size=exact_size)

    run_jobs(jobs, action, "downscale", settings, folder=source.is_dir())
