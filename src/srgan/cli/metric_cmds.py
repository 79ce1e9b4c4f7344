"""`srgan psnr` and `srgan eval`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from srgan.cli import console
from srgan.cli.common import (
    Conservative,
    Denoise,
    MaxPixels,
    OnnxLayout,
    OnnxOrder,
    OnnxRange,
    model_variant,
    onnx_hints,
)
from srgan.defaults import DEFAULT_MAX_PIXELS, DEFAULT_VSR_WINDOW

if TYPE_CHECKING:
    from srgan.inference.evaluate import ScoreTable

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def psnr(
    first: Annotated[
        Path,
        typer.Argument(metavar="A", help="Image file or folder (e.g. results).", readable=False),
    ],
    second: Annotated[
        Path,
        typer.Argument(
            metavar="B", help="Reference file or folder, paired by stem.", readable=False
        ),
    ],
    crop_border: Annotated[
        int, typer.Option("--crop-border", help="Pixels removed at each side.", min=0)
    ] = 0,
    rgb: Annotated[bool, typer.Option("--rgb", help="Use R, G, B instead of Y.")] = False,
    as_json: JsonFlag = False,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """PSNR and SSIM of images against references, as the papers compute them."""
    from srgan.inference.evaluate import compare_paths, pair_paths

    pairs = pair_paths(first, second)
    with console.progress_bar("compare", len(pairs)) as bar:
        table = compare_paths(pairs, crop_border, not rgb, max_pixels, bar.advance)
    if as_json:
        console.print_result(to_json(table.as_dict()))
    else:
        console.print_result(format_tables([table], [""]))


def evaluate(
    models: Annotated[
        list[str],
        typer.Option("--model", "-m", help="Model name or file; repeat to compare models."),
    ],
    dataset: Annotated[
        Path,
        typer.Option(
            "--dataset",
            "-d",
            help="Folder of HR images, or of clip folders of numbered frames (Vid4 layout).",
            readable=False,
        ),
    ],
    scale: Annotated[
        int,
        typer.Option(
            "--scale", "-s", help="Upscaling factor (picks Real-CUGAN / waifu2x files).", min=1
        ),
    ] = 4,
    denoise: Denoise = None,
    conservative: Conservative = False,
    clips: Annotated[
        bool,
        typer.Option(
            "--clips",
            help="DATASET holds clip folders (default: detected when it has no images of its "
            "own); scores are per clip, the means of its frames.",
        ),
    ] = False,
    window: Annotated[
        int,
        typer.Option("--window", min=1, help="Frames per temporal window (video SR models)."),
    ] = DEFAULT_VSR_WINDOW,
    as_json: JsonFlag = False,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    onnx_layout: OnnxLayout = None,
    onnx_range: OnnxRange = None,
    onnx_order: OnnxOrder = None,
) -> None:
    """Benchmark models on an HR folder: MATLAB-bicubic LR, PSNR/SSIM on Y, border = scale.

    On clip folders, image models upscale each frame alone and video SR models run on
    overlapping windows of --window frames.
    """
    from srgan.inference import evaluate as evaluation
    from srgan.inference.vsr import TemporalWindows
    from srgan.zoo.registry import load_model
    from srgan.zoo.selection import is_onnx_file, open_onnx_file

    hints = onnx_hints(onnx_layout, onnx_range, onnx_order)
    windows = TemporalWindows(window)
    by_clip = clips or evaluation.holds_clips(dataset)
    items = evaluation.dataset_clips(dataset) if by_clip else evaluation.dataset_images(dataset)
    from srgan.zoo.ncnn_families import is_family_name

    if (denoise is not None or conservative) and not any(map(is_family_name, models)):
        model_variant(models[0], scale, denoise, conservative)  # says what they are for
    models = [  # the families by the name of the file the scale and level pick
        model_variant(name, scale, denoise, conservative) if is_family_name(name) else name
        for name in models
    ]
    loaded = [
        open_onnx_file(Path(name), scale, hints=hints)
        if is_onnx_file(name)
        else load_model(name, scale)
        for name in models
    ]
    with console.progress_bar("evaluate", len(items)) as bar:
        if by_clip:
            tables = evaluation.evaluate_clips(
                loaded, items, scale, windows, max_pixels, bar.advance
            )
        else:
            tables = evaluation.evaluate_models(loaded, items, scale, max_pixels, bar.advance)
    if as_json:
        reports = [
            {"model": name, "dataset": str(dataset), "scale": scale, **table.as_dict()}
            for name, table in zip(models, tables, strict=True)
        ]
        console.print_result(to_json(reports[0] if len(reports) == 1 else reports))
    else:
        title = f"{dataset.name} x{scale}: PSNR (dB) and SSIM on the Y channel, border {scale}"
        if by_clip:
            title += ", each clip the mean of its frames"
        console.print_result(title + "\n" + format_tables(tables, models))


def to_json(value: object) -> str:
    """Strict JSON: an infinite PSNR (identical images) becomes null."""

    def finite(item: object) -> object:
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {key: finite(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [finite(inner) for inner in item]
        return item

    return json.dumps(finite(value), indent=2, allow_nan=False)


def format_tables(tables: list[ScoreTable], headers: list[str]) -> str:
    """Images as rows, one 'PSNR SSIM' column pair per table (headed by `headers`), means."""
    names = [s.name for s in tables[0].images]
    label = "clip" if tables[0].unit == "clips" else "image"
    name_width = max(len(label), *(len(n) for n in names))
    cell = "  {:>8.2f} {:>7.4f}"
    width = len(cell.format(0, 0))
    lines = []
    if any(headers):
        lines.append(" " * name_width + "".join(f"{h:>{width}}" for h in headers))
    lines.append(f"{label:<{name_width}}" + f"{'PSNR':>10} {'SSIM':>7}" * len(tables))
    for row, name in enumerate(names):
        cells = "".join(cell.format(t.images[row].psnr, t.images[row].ssim) for t in tables)
        lines.append(f"{name:<{name_width}}{cells}")
    lines.append("-" * (name_width + width * len(tables)))
    means = "".join(cell.format(t.mean_psnr, t.mean_ssim) for t in tables)
    lines.append(f"{'mean':<{name_width}}{means}")
    return "\n".join(lines)
