"""`srgan benchmark` and `srgan profile-memory`."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import console
from srgan.cli.common import BACKEND_HELP, Device, Precision, parse_size, precision_from
from srgan.errors import BadInputError


def benchmark(
    models: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Named model (repeatable).")
    ] = None,
    backends: Annotated[
        list[str] | None,
        typer.Option("--backend", help=f"(repeatable) {BACKEND_HELP}"),
    ] = None,
    sizes: Annotated[
        list[str] | None, typer.Option("--size", help="Input WIDTHxHEIGHT (repeatable).")
    ] = None,
    threads: Annotated[
        list[int] | None, typer.Option("--threads", "-j", min=1, help="Threads (repeatable).")
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs each.")] = 3,
    device: Device = "cpu",
    precision: Precision = "fp32",
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Measure again which backend `auto` picks for each model and thread count "
            "(replacing the cached choice), and show the times.",
        ),
    ] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="Add each row's speed relative to the first row.")
    ] = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write a CSV file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Time models x backends x input sizes x threads: ms per image, megapixels/s,
    GFLOP/s and peak memory, each configuration in a fresh process; then the backend
    `auto` picks for each model here and the times behind it."""
    from srgan.inference.backends import BACKEND_CHOICES
    from srgan.inference.benchmarking import Config, network_flops, run_config, to_json
    from srgan.zoo.pretrained import PRETRAINED

    models = models or ["anime-video"]
    for name in models:
        if name not in PRETRAINED:
            raise BadInputError(
                f"--model {name!r}: benchmark the named models ({', '.join(PRETRAINED)})"
            )
    backends = backends or ["auto"]
    for backend in backends:
        if backend not in BACKEND_CHOICES:
            raise BadInputError(f"--backend {backend!r}: use {', '.join(BACKEND_CHOICES)}")
    precision = precision_from(precision)
    thread_counts = threads or [os.cpu_count() or 1]
    if calibrate:
        _calibrate(models, thread_counts, device, precision, quiet=as_json)
    shapes = [parse_size(size) for size in (sizes or ["256x256"])]
    configs = [
        Config(model, backend, width, height, count, repeats, device, precision)
        for model in models
        for backend in backends
        for height, width in shapes
        for count in thread_counts
    ]
    flops = {(m, h, w): network_flops(m, h, w) for m in models for h, w in shapes}
    results = []
    with console.progress_bar("benchmark", len(configs)) as bar:
        for config in configs:
            results.append(run_config(config, flops[config.model, config.height, config.width]))
            bar.advance()
    if csv_file is not None:
        buffer = io.StringIO()
        rows = [m.as_dict() for m in results]
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        from srgan.imaging.io import write_bytes_atomically

        write_bytes_atomically(csv_file, buffer.getvalue().encode())
    if as_json:
        console.print_result(to_json(results))
        return
    header = "| model | backend | input | threads | ms / image | MP/s out | GFLOP/s | peak RSS MB |"
    lines = [
        header + (" speed vs first |" if compare else ""),
        "|---" * (9 if compare else 8) + "|",
    ]
    for m in results:
        c = m.config
        row = (
            f"| {c.model} | {m.backend} | {c.width}x{c.height} | {c.threads} | "
            f"{m.seconds * 1000:.0f} | {m.megapixels_per_s:.2f} | {m.gflop_per_s:.1f} | "
            f"{m.peak_rss_mb:.0f} |"
        )
        if compare:
            first = results[0].seconds
            row += f" {first / m.seconds:.2f}x |" if math.isfinite(first) else " - |"
        if m.error is not None:
            blanks = " |" * (4 if compare else 3)
            where = f"| {c.model} | {c.backend} | {c.width}x{c.height} | {c.threads} |"
            row = f"{where} error: {m.error} |{blanks}"
        lines.append(row)
    if device == "cpu":
        from srgan.cli.devices_cmd import choices_table
        from srgan.inference.devices import cached_choices

        lines += ["", choices_table(cached_choices())]
    console.print_result("\n".join(lines))


def _calibrate(
    models: list[str], thread_counts: list[int], device: str, precision: str, quiet: bool
) -> None:
    """Measure the `auto` choice again for each model and thread count."""
    from srgan.inference.backends import select_backend, with_known_descriptor
    from srgan.zoo.sources import resolve_source

    for name in models:
        source = with_known_descriptor(resolve_source(name))
        for count in thread_counts:
            selection = select_backend(source, device, precision, "auto", count, recalibrate=True)
            if not quiet:
                console.note(f"calibrated: {selection.backend}: {selection.reason}")


def profile_memory(
    command: Annotated[list[str], typer.Argument(help="The command to run, after --.")],
    interval: Annotated[
        float, typer.Option("--interval", min=0.01, help="Seconds between samples.")
    ] = 0.1,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write time_s,rss_mb(,gpu_mb) samples here.")
    ] = None,
) -> None:
    """Run COMMAND and record its resident memory (with its children) over time; print the
    peak. Example: srgan profile-memory --csv mem.csv -- srgan upscale big.png out.png"""
    from srgan.inference.memory_profile import profile_command

    samples, code, peak = profile_command(command, interval)
    if csv_file is not None:
        lines = ["time_s,rss_mb,gpu_mb"] + [
            f"{s.time_s:.3f},{s.rss_mb:.1f},{'' if s.gpu_mb is None else f'{s.gpu_mb:.1f}'}"
            for s in samples
        ]
        from srgan.imaging.io import write_bytes_atomically

        write_bytes_atomically(csv_file, ("\n".join(lines) + "\n").encode())
    gpu_peak = max((s.gpu_mb for s in samples if s.gpu_mb is not None), default=None)
    gpu = f", peak GPU memory {gpu_peak:.0f} MB" if gpu_peak is not None else ""
    console.note(f"peak RSS {peak:.0f} MB over {len(samples)} samples{gpu}; exit code {code}")
    if code:
        raise typer.Exit(code)
