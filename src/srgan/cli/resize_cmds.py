"""`srgan upscale` and `srgan downscale`."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import console
from srgan.cli.common import (
    DEFAULT_QUALITY,
    BatchSettings,
    ChunkSize,
    Conservative,
    Denoise,
    MaxMemory,
    MaxPixels,
    OnnxLayout,
    OnnxOrder,
    OnnxRange,
    Pattern,
    PngCompression,
    Quality,
    Recursive,
    ReportFile,
    Sequential,
    Shard,
    SkipExisting,
    Threads,
    batch_settings,
    model_variant,
    onnx_hints,
    parse_size,
    plan_for,
    run_jobs,
)
from srgan.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MODEL, DEFAULT_PNG_LEVEL, DEFAULT_TILE_PAD
from srgan.errors import BadInputError
from srgan.inference.image_job import FileSettings, resize_file, upscale_file
from srgan.inference.job_memory import memory_limit
from srgan.inference.upscaler import UpscaleOptions, make_runner, resolve_device
from srgan.zoo.selection import open_model

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
    tile: Annotated[
        int | None,
        typer.Option(
            "--tile",
            "-t",
            min=0,
            help="Tile side in input pixels; 0 = whole image; default: from the memory available.",
        ),
    ] = None,
    tile_pad: Annotated[
        int, typer.Option("--tile-pad", min=0, help="Context pixels around each tile (blended).")
    ] = DEFAULT_TILE_PAD,
    alpha_mode: Annotated[
        str, typer.Option("--alpha-mode", help="Upscale alpha with the model or bicubic.")
    ] = "model",
    device: Annotated[
        str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")
    ] = "auto",
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="auto (named models on the CPU: onnxruntime, else ncnn; otherwise torch), "
            "torch, onnxruntime or ncnn.",
        ),
    ] = "auto",
    half: Annotated[bool, typer.Option("--half", help="fp16 inference (GPU).")] = False,
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 inference.")] = False,
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
    """
    settings = batch_settings(
        recursive, pattern, skip_existing, threads, sequential, chunk_size, shard, report
    )
    if half and bf16:
        raise BadInputError("choose one of --half and --bf16")
    try:
        options = UpscaleOptions(
            tile=tile,
            tile_pad=tile_pad,
            outscale=outscale,
            alpha_mode=alpha_mode,  # type: ignore[arg-type]
            precision="fp16" if half else "bf16" if bf16 else "fp32",
            device=resolve_device(device),
            parallel_images=settings.workers if source.is_dir() else 1,
        )
    except (ValueError, RuntimeError) as exc:
        raise BadInputError(str(exc)) from None
    model = model_variant(model, scale, denoise, conservative)
    jobs = plan_for(source, target, settings, suffix, ext)
    hints = onnx_hints(onnx_layout, onnx_range, onnx_order)
    loaded = open_model(model, scale, options.device, options.precision, backend, hints)
    runner = make_runner(loaded, options)  # one per run: loads once, keeps fp32 fallbacks
    log.info("model %s (%s), x%g", loaded.name, loaded.descriptor.architecture, loaded.scale)

    files = FileSettings(
        memory_limit(max_memory, settings.workers if source.is_dir() else 1),
        max_pixels,
        quality,
        png_compression,
    )

    def action(src: Path, dst: Path) -> None:
        with console.tile_progress(src.name, enabled=not source.is_dir()) as progress:
            upscale_file(loaded, src, dst, options, files, progress, runner)

    run_jobs(jobs, action, "upscale", settings, folder=source.is_dir())


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
