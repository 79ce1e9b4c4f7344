"""Pieces shared by the commands: option types (each option declared once) and the
per-file loop."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from srgan.cli import console
from srgan.errors import BadInputError, SrganError
from srgan.imaging.io import write_bytes_atomically
from srgan.inference.batch import (
    BatchReport,
    Job,
    Outcome,
    Process,
    failure_message,
    parse_shard,
    plan,
    run_batch,
)
from srgan.inference.pipeline import Stages

if TYPE_CHECKING:
    from srgan.zoo.onnx_generic import OnnxHints

MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        help="Refuse inputs with more pixels than this (decompression bombs); 0 = no limit.",
        min=0,
    ),
]
MaxMemory = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        help="Memory a job may use, e.g. 8G (default: $SRGAN_MAX_MEMORY, else the memory "
        "available); a job that would need more is refused before it starts.",
    ),
]
Quality = Annotated[
    int, typer.Option("--quality", help="JPEG/WebP quality (100 = lossless WebP).", min=1, max=100)
]
DEFAULT_QUALITY = 95
PngCompression = Annotated[
    int,
    typer.Option(
        "--png-compression",
        min=0,
        max=9,
        help="PNG zlib level: 3 is fast, 9 smallest (lossless either way).",
    ),
]


# Options several commands take, declared once so that their names, help and bounds agree.
DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."
BACKEND_HELP = (
    "auto (the backend measured fastest for this model on this machine; "
    "see `srgan devices`), torch, onnxruntime or ncnn."
)
PRECISION_HELP = (
    "fp32; fp16 (PyTorch, or ncnn's fp16 storage on the CPU) or bf16 (PyTorch); "
    "int8 (ONNX Runtime or ncnn, quantized once on sample photos; "
    "`srgan models` lists its quality)."
)
Device = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
DeviceOrConfig = Annotated[  # None: the command's config file or settings decide
    str | None, typer.Option("--device", help=DEVICE_HELP + " Default: from the config.")
]
Backend = Annotated[str, typer.Option("--backend", help=BACKEND_HELP)]
BackendOrConfig = Annotated[
    str | None, typer.Option("--backend", help=BACKEND_HELP + " Default: from the config.")
]
Tile = Annotated[
    int | None,
    typer.Option(
        "--tile",
        "-t",
        min=0,
        help="Tile side in input pixels; 0 = whole image; default: from the memory available.",
    ),
]
TilePad = Annotated[
    int, typer.Option("--tile-pad", min=0, help="Context pixels around each tile (blended).")
]
Precision = Annotated[str, typer.Option("--precision", help=PRECISION_HELP)]
Half = Annotated[bool, typer.Option("--half", help="Same as --precision fp16.")]
Bf16 = Annotated[bool, typer.Option("--bf16", help="Same as --precision bf16.")]


def precision_from(precision: str, half: bool = False, bf16: bool = False) -> str:
    """--precision, with --half and --bf16 as its aliases (only one of them at a time)."""
    from srgan.inference.upscaler import PRECISIONS

    aliases = [name for name, given in (("fp16", half), ("bf16", bf16)) if given]
    if len(aliases) > 1 or (aliases and precision not in ("fp32", aliases[0])):
        raise BadInputError("choose one of --precision, --half and --bf16")
    chosen = aliases[0] if aliases else precision
    if chosen not in PRECISIONS:
        raise BadInputError(f"--precision {chosen!r}: use {', '.join(PRECISIONS)}")
    return chosen


def warn_int8_quality(model: str, precision: str) -> None:
    """int8 is opt-in; where it was measured to lose visible quality, say so."""
    from srgan.zoo.pretrained import int8_quality_note

    note = int8_quality_note(model) if precision == "int8" else None
    if note:
        logging.getLogger("srgan.cli").warning("%s", note)


_IMPORTED_AT = time.perf_counter()


def seconds_since_start() -> float:
    """Seconds since this process started (from /proc on Linux, else since srgan's CLI was
    imported): the start-up that `-v` reports."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stream:
            started_ticks = int(stream.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as stream:
            uptime = float(stream.read().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED_AT


Denoise = Annotated[
    int | None,
    typer.Option(
        "--denoise",
        min=-1,
        max=3,
        help="Real-CUGAN / waifu2x denoise level, -1..3 as their -n (picks the file; "
        "see `srgan models`).",
    ),
]
Conservative = Annotated[
    bool,
    typer.Option("--conservative", help="Real-CUGAN's conservative model (= --denoise -1)."),
]


def model_variant(
    model: str, scale: float | None = None, denoise: int | None = None, conservative: bool = False
) -> str:
    """The model name to load: a Real-CUGAN / waifu2x / RealSR family with --scale,
    --denoise and --conservative becomes the name of its file's variant."""
    from srgan.zoo.ncnn_families import is_family_name, resolve

    if is_family_name(model):
        return resolve(model, scale, denoise, conservative).name
    if denoise is not None or conservative:
        raise BadInputError(
            "--denoise and --conservative choose among the Real-CUGAN and waifu2x models "
            f"(see `srgan models`), not {model!r}"
        )
    return model


def model_variants(
    models: list[str], scale: float | None, denoise: int | None, conservative: bool
) -> list[str]:
    """`model_variant` for each of several models (`eval`, `compare`): the families become
    the variant the options pick; the others stay as they are, and --denoise or
    --conservative without any family among them is an error."""
    from srgan.zoo.ncnn_families import is_family_name

    if (denoise is not None or conservative) and not any(map(is_family_name, models)):
        model_variant(models[0] if models else "", scale, denoise, conservative)  # says why
    return [
        model_variant(name, scale, denoise, conservative) if is_family_name(name) else name
        for name in models
    ]


Recursive = Annotated[
    bool, typer.Option("--recursive", "-r", help="Include subfolders; their structure is kept.")
]
Pattern = Annotated[
    list[str] | None,
    typer.Option("--pattern", help="Only files matching this glob (repeatable), e.g. '*.jpg'."),
]
SkipExisting = Annotated[
    bool,
    typer.Option(
        "--skip-existing/--overwrite",
        help="Skip outputs that already exist (resume an interrupted run) or redo them.",
    ),
]
Threads = Annotated[
    int,
    typer.Option("--threads", "-j", min=1, help="Files processed in parallel; cores are split."),
]
Sequential = Annotated[bool, typer.Option("--sequential", help="Same as --threads 1.")]
ChunkSize = Annotated[
    int | None,
    typer.Option("--chunk-size", min=1, help="Files queued to the workers (default 2 x threads)."),
]
Shard = Annotated[
    str | None,
    typer.Option("--shard", help="Process only part i of n of the files (i/n), e.g. 2/4."),
]
ReportFile = Annotated[
    Path | None, typer.Option("--report", help="Write a JSON report of done/skipped/failed.")
]


@dataclass(frozen=True)
class BatchSettings:
    recursive: bool = False
    patterns: tuple[str, ...] = ()
    skip_existing: bool = False
    workers: int = 1
    chunk_size: int | None = None
    shard: tuple[int, int] | None = None
    report: Path | None = None


def batch_settings(
    recursive: bool = False,
    pattern: list[str] | None = None,
    skip_existing: bool = False,
    threads: int = 1,
    sequential: bool = False,
    chunk_size: int | None = None,
    shard: str | None = None,
    report: Path | None = None,
) -> BatchSettings:
    return BatchSettings(
        recursive,
        tuple(pattern or ()),
        skip_existing,
        1 if sequential else threads,
        chunk_size,
        parse_shard(shard) if shard else None,
        report,
    )


def plan_for(
    source: Path, target: Path, settings: BatchSettings, suffix: str = "", ext: str | None = None
) -> list[Job]:
    if source.is_file() and (settings.recursive or settings.patterns or settings.shard):
        raise BadInputError("--recursive, --pattern and --shard apply to folders, not files")
    return plan(source, target, suffix, ext, settings.recursive, settings.patterns, settings.shard)


def run_jobs(
    jobs: list[Job], action: Process | Stages, verb: str, settings: BatchSettings, folder: bool
) -> None:
    """A single file: errors propagate (exit 2 for bad input). A folder: a failing file is
    reported by name and the others go on, with exit code 1 at the end."""
    if not folder:
        job = jobs[0]
        if settings.skip_existing and job.target.exists():
            console.note(f"{verb}: {job.target} exists, skipped (--skip-existing)")
            outcome = Outcome(job, "skipped")
        else:
            _run_single(action, job)
            outcome = Outcome(job, "done")
        if settings.report is not None:
            _write_report(settings.report, BatchReport([outcome]))
        return
    with console.progress_bar(verb, len(jobs)) as bar:

        def on_outcome(outcome: Outcome) -> None:
            if outcome.status == "failed":
                console.error(outcome.error or outcome.job.name)
            bar.advance()

        result = run_batch(
            jobs,
            action,
            workers=settings.workers,
            skip_existing=settings.skip_existing,
            chunk_size=settings.chunk_size,
            on_outcome=on_outcome,
        )
    summary = ", ".join(f"{len(result.names(s))} {s}" for s in ("done", "skipped", "failed"))
    console.note(f"{verb}: {summary} in {result.seconds:.1f} s")
    if settings.report is not None:
        _write_report(settings.report, result)
    if result.failed:
        raise SrganError(f"{len(result.failed)} of {len(jobs)} files failed (listed above)")


def _write_report(path: Path, report: BatchReport) -> None:
    write_bytes_atomically(path, (json.dumps(report.as_dict(), indent=2) + "\n").encode())


def _run_single(action: Process | Stages, job: Job) -> None:
    """Unexpected failures (disk full, out of memory, an encoder's limit) name the file."""
    try:
        if isinstance(action, Stages):
            action.write(action.compute(action.read(job.source)), job.target)
        else:
            action(job.source, job.target)
    except SrganError:
        raise
    except Exception as exc:
        raise SrganError(failure_message(job.source, exc)) from exc


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (height, width)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise BadInputError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    if width <= 0 or height <= 0:
        raise BadInputError(f"--size {text!r}: width and height must be positive")
    return height, width


OnnxLayout = Annotated[
    str | None,
    typer.Option(
        "--onnx-layout",
        help="An .onnx model's input layout, nchw or nhwc (default: read from the graph).",
    ),
]
OnnxRange = Annotated[
    float | None,
    typer.Option(
        "--onnx-range",
        help="An .onnx model's value range, 1 or 255 (default: its metadata, else measured).",
    ),
]
OnnxOrder = Annotated[
    str | None,
    typer.Option(
        "--onnx-order",
        help="An .onnx model's channel order, rgb or bgr (default: its metadata, else rgb).",
    ),
]


def onnx_hints(layout: str | None, value_range: float | None, order: str | None) -> OnnxHints:
    """The --onnx-* flags, checked."""
    from srgan.zoo.onnx_generic import OnnxHints

    if layout is not None and layout.upper() not in ("NCHW", "NHWC"):
        raise BadInputError(f"--onnx-layout {layout!r}: use nchw or nhwc")
    if value_range is not None and value_range not in (1.0, 255.0):
        raise BadInputError(f"--onnx-range {value_range:g}: use 1 or 255")
    if order is not None and order.upper() not in ("RGB", "BGR"):
        raise BadInputError(f"--onnx-order {order!r}: use rgb or bgr")
    return OnnxHints(
        "NHWC" if layout and layout.upper() == "NHWC" else "NCHW" if layout else None,
        value_range,
        "BGR" if order and order.upper() == "BGR" else "RGB" if order else None,
    )
