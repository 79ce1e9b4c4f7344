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
    model_variants,
    onnx_hints,
)
from srgan.defaults import DEFAULT_MAX_PIXELS, DEFAULT_VSR_WINDOW
from srgan.errors import BadInputError

if TYPE_CHECKING:
    from srgan.evaluation import ScoreTable

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
    from srgan.evaluation import compare_paths, pair_paths

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
            help="Folder of HR images, or of clip folders of numbered frames (Vid4 layout) or "
            "video files.",
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
    lr_folder: Annotated[
        Path | None,
        typer.Option(
            "--lr",
            help="Given LR inputs (same names as the HR images, 1/scale their size) instead "
            "of bicubic ones, e.g. from `srgan dataset degrade`.",
        ),
    ] = None,
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
    from srgan import evaluation
    from srgan.inference.vsr import TemporalWindows
    from srgan.zoo.onnx_any_file import is_onnx_file, open_onnx_file
    from srgan.zoo.registry import load_model

    hints = onnx_hints(onnx_layout, onnx_range, onnx_order)
    windows = TemporalWindows(window)
    by_clip = clips or evaluation.holds_clips(dataset)
    models = model_variants(models, scale, denoise, conservative)
    loaded = [
        open_onnx_file(Path(name), scale, hints=hints)
        if is_onnx_file(name)
        else load_model(name, scale)
        for name in models
    ]
    if lr_folder is not None:
        if by_clip:
            raise BadInputError("--lr pairs LR and HR images; it does not take clips")
        pairs = evaluation.lr_pairs(lr_folder, dataset)
        with console.progress_bar("evaluate", len(pairs)) as bar:
            tables = evaluation.evaluate_pairs(loaded, pairs, scale, max_pixels, bar.advance)
    elif by_clip:
        clip_list = evaluation.dataset_clips(dataset, max_pixels)
        with console.progress_bar("evaluate", len(clip_list)) as bar:
            tables = evaluation.evaluate_clips(
                loaded, clip_list, scale, windows, progress=bar.advance
            ).tables
    else:
        paths = evaluation.dataset_images(dataset)
        with console.progress_bar("evaluate", len(paths)) as bar:
            tables = evaluation.evaluate_images(
                loaded, paths, scale, max_pixels=max_pixels, progress=bar.advance
            )
    if as_json:
        reports = [
            {"model": name, "dataset": str(dataset), "scale": scale, **table.as_dict()}
            for name, table in zip(models, tables, strict=True)
        ]
        console.print_result(to_json(reports[0] if len(reports) == 1 else reports))
    else:
        title = f"{dataset.name} x{scale}: PSNR (dB) and SSIM on the Y channel, border {scale}"
        if lr_folder is not None:
            title += f", LR inputs from {lr_folder}"
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
