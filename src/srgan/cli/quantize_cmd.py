"""`srgan quantize`: an int8 ONNX model, calibrated on your images or the sample photos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import console
from srgan.cli.common import MaxPixels
from srgan.defaults import DEFAULT_MAX_PIXELS
from srgan.errors import BadInputError


def quantize(
    model: Annotated[
        str, typer.Argument(metavar="MODEL", help="Model name (see `srgan models`) or file.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The int8 model to write (.onnx).")
    ],
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="A folder of images like the ones you will upscale (up to 64 are used); "
            "default: scikit-image's sample photos.",
        ),
    ] = None,
    reduce_range: Annotated[
        bool | None,
        typer.Option(
            "--reduce-range/--full-range",
            help="7-bit weights, for CPUs without VNNI (default: as this CPU needs).",
        ),
    ] = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Quantize MODEL to int8 with ONNX Runtime (static, QDQ, per-channel weights) and
    write it to OUTPUT; run it with `srgan upscale -m OUTPUT --precision int8`.

    The activation ranges are measured on crops of the calibration images; the int8
    output is then compared with fp32 on other crops and the PSNR printed."""
    from srgan.inference.backends import with_known_descriptor
    from srgan.inference.backends.int8 import quantize_model
    from srgan.zoo.quantize import folder_images
    from srgan.zoo.sources import resolve_source

    if output.suffix.lower() != ".onnx":
        raise BadInputError(f"{output}: the output must be an .onnx file")
    if output.is_dir():
        raise BadInputError(f"{output}: is a folder; give a file name ending in .onnx")
    source = with_known_descriptor(resolve_source(model))
    images = folder_images(calibration, max_pixels) if calibration is not None else None
    report = quantize_model(source, output, images, reduce_range)
    where = str(calibration) if calibration is not None else "the sample photos"
    console.note(
        f"quantize: {output} ({report.tiles} crops of {where}"
        f"{', reduced range' if report.reduce_range else ''}) in {report.seconds:.1f} s; "
        f"int8 against fp32 on other crops: {report.psnr_vs_fp32:.1f} dB (Y)"
    )
