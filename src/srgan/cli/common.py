"""Pieces shared by the commands: option types and the per-file loop."""

from __future__ import annotations

import json
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
    jobs: list[Job], action: Process, verb: str, settings: BatchSettings, folder: bool
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


def _run_single(action: Process, job: Job) -> None:
    """Unexpected failures (disk full, out of memory, an encoder's limit) name the file."""
    try:
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
