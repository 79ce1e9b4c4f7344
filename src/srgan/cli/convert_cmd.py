"""`srgan convert`: model files between formats, each conversion validated."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from srgan.cli import console
from srgan.cli.common import Conservative, Denoise, model_variant
from srgan.errors import BadInputError, SrganError

if TYPE_CHECKING:
    from srgan.conversion.convert import ConversionResult


def convert(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="A named model (anime-video), a model file (.pth .pt .ckpt .safetensors "
            ".onnx .param), a training run folder, or a folder of model files.",
        ),
    ],
    target: Annotated[
        Path,
        typer.Argument(
            metavar="TARGET",
            help="The file to write (format from its extension), or a folder (with --to).",
        ),
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Target format for folders: pth, safetensors, onnx, ncnn."),
    ] = None,
    fp16: Annotated[
        bool,
        typer.Option(
            "--fp16",
            help="Half precision: ONNX weights, arithmetic and input/output; ncnn, .pth and "
            ".safetensors weight storage.",
        ),
    ] = False,
    tolerance: Annotated[
        float | None,
        typer.Option(
            "--tolerance",
            help="Largest accepted difference between source and result on the probe image "
            "(default 1e-3, 1e-2 with --fp16).",
        ),
    ] = None,
    probe_size: Annotated[
        int, typer.Option("--probe-size", min=8, max=1024, help="Side of the probe image.")
    ] = 48,
    frames: Annotated[
        int | None,
        typer.Option("--frames", min=1, max=64, help="Frames of a video network's ONNX input."),
    ] = None,
    scale: Annotated[
        int | None,
        typer.Option(
            "--scale", "-s", min=1, help="Picks the Real-CUGAN / waifu2x / RealSR file to convert."
        ),
    ] = None,
    denoise: Denoise = None,
    conservative: Conservative = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Convert a model between .pth/.pt/.ckpt, .safetensors, ONNX (opset 17, free height and
    width) and ncnn .param/.bin, and check the result: source and result run on a probe
    image with their own runtimes (PyTorch, ONNX Runtime, ncnn) and must agree within
    --tolerance, or nothing is written (exit 1).

    A folder of models converts with --to FORMAT into the TARGET folder, one line per
    model; one that fails does not stop the others (exit 1 at the end). TensorFlow and
    Keras models: convert them to ONNX with tf2onnx first (see the README).

    Real-CUGAN, waifu2x and RealSR (pick the file with --scale, --denoise, --conservative)
    convert to ONNX (their network, with srgan's record of the padding and crop around it)
    and to ncnn (their files as they are)."""
    from srgan.conversion.convert import ConvertOptions
    from srgan.conversion.formats import format_named

    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise BadInputError(f"--tolerance {tolerance}: give a number >= 0")
    options = ConvertOptions(fp16, tolerance, probe_size, frames)
    fmt = format_named(to) if to is not None else None
    source = _family_file(source, scale, denoise, conservative)
    folder = Path(source)
    if folder.is_dir() and not _is_run_folder(folder):
        if fmt is None:
            raise BadInputError(f"{folder}: a folder of models converts with --to FORMAT")
        if target.exists() and not target.is_dir():
            raise BadInputError(f"{target}: a folder of models converts into a folder")
        _convert_folder(folder, target, fmt, options, as_json)
        return
    _convert_one(source, target, fmt, options, as_json)


def _family_file(source: str, scale: int | None, denoise: int | None, conservative: bool) -> str:
    from srgan.zoo.ncnn_families import is_family_name

    if scale is not None and not is_family_name(source):
        raise BadInputError(
            f"--scale picks among the Real-CUGAN / waifu2x / RealSR files, not {source!r} "
            "(a model converts at its own scale)"
        )
    return model_variant(source, scale, denoise, conservative)


def _is_run_folder(folder: Path) -> bool:
    return (folder / "generator.safetensors").is_file() or (folder / "checkpoints").is_dir()


def _convert_one(source: str, target: Path, fmt: str | None, options, as_json: bool) -> None:
    from srgan.conversion.convert import ConversionFailed, convert

    try:
        result = convert(source, target, options, fmt)
    except ConversionFailed as failure:
        if as_json:
            console.print_result(_json(failure.result.as_dict()))
        raise
    if as_json:
        console.print_result(_json(result.as_dict()))
    else:
        console.print_result(line(result))


def _convert_folder(folder: Path, target: Path, fmt: str, options, as_json: bool) -> None:
    from srgan.conversion.convert import convert_folder, folder_sources

    started = time.monotonic()
    results: list[ConversionResult] = []
    with console.progress_bar("convert", len(folder_sources(folder))) as bar:
        for result in convert_folder(folder, target, fmt, options):
            results.append(result)
            if not as_json:
                console.print_result(line(result))
            bar.advance()
    failed = [r for r in results if not r.ok]
    if as_json:
        summary = {"converted": len(results) - len(failed), "failed": len(failed)}
        console.print_result(_json({"results": [r.as_dict() for r in results], **summary}))
    console.note(
        f"convert: {len(results) - len(failed)} converted, {len(failed)} failed in "
        f"{time.monotonic() - started:.1f} s"
    )
    if failed:
        raise SrganError(f"{len(failed)} of {len(results)} models failed (listed above)")


def line(result: ConversionResult) -> str:
    """One line per model: what became what, and how close the result came."""
    if not result.ok:
        return f"FAIL  {result.source}: {result.error}"
    return (
        f"ok    {result.source} -> {result.target}  {result.architecture} "
        f"({result.source_runtime} vs {result.target_runtime}, {result.precision}): "
        f"max |diff| {result.max_abs:.2e}, mean {result.mean_abs:.2e}, "
        f"tolerance {result.tolerance:g}, {result.seconds:.1f} s"
    )


def _json(value: object) -> str:
    return json.dumps(value, indent=2, default=str)
