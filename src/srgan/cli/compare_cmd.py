"""`srgan compare`: several models on the same images, side by side."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from srgan.cli import console
from srgan.cli.common import (
    Backend,
    Conservative,
    Denoise,
    Device,
    MaxPixels,
    OnnxLayout,
    OnnxOrder,
    OnnxRange,
    TilePad,
    model_variants,
    onnx_hints,
)
from srgan.defaults import DEFAULT_MAX_PIXELS, DEFAULT_TILE_PAD
from srgan.errors import BadInputError

if TYPE_CHECKING:
    from srgan.comparison.results import Contender, Summary
    from srgan.zoo.onnx_generic import OnnxHints

SHEET_MEMORY_LIMIT = 1536 * 1024 * 1024  # RGB bytes of a contact sheet held at once
_SHEET_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
_MAX_SIDE = {"PNG": 1 << 20, "JPEG": 65500, "WEBP": 16383}


def compare(
    images: Annotated[
        list[Path], typer.Argument(metavar="IMAGES...", help="Image files or folders of images.")
    ],
    models: Annotated[
        list[str],
        typer.Option("--model", "-m", help="Model name or file; repeat: one column each."),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The sheet (.png, .jpg, .webp); a folder with --per-image.",
        ),
    ] = None,
    html_report: Annotated[
        Path | None,
        typer.Option("--html", help="A self-contained HTML report with sliders and tables."),
    ] = None,
    hr: Annotated[
        Path | None,
        typer.Option(
            "--hr",
            help="Folder of ground-truth images, paired by name: adds PSNR/SSIM (the `srgan "
            "eval` protocol) and wins. Inputs of the ground truth's size are shrunk with "
            "MATLAB bicubic; inputs 1/scale of it are used as they are.",
        ),
    ] = None,
    crop: Annotated[
        list[str] | None,
        typer.Option("--crop", help="A crop x,y,w,h in output pixels (repeatable)."),
    ] = None,
    crops: Annotated[
        int,
        typer.Option("--crops", min=0, max=5, help="Crops chosen where the models differ most."),
    ] = 2,
    crop_size: Annotated[
        int | None,
        typer.Option("--crop-size", min=8, help="Side of the chosen crops in output pixels."),
    ] = None,
    cell: Annotated[
        int, typer.Option("--cell", min=64, max=2048, help="Longest side of an image on the sheet.")
    ] = 256,
    per_image: Annotated[
        bool,
        typer.Option("--per-image", help="One sheet per input in the --output folder."),
    ] = False,
    scale: Annotated[
        int | None,
        typer.Option(
            "--scale",
            "-s",
            min=1,
            help="The comparison's factor (default: the first trained model's); picks the "
            "Real-CUGAN / waifu2x file; models of another scale are resized to it with "
            "MATLAB bicubic (not with --hr).",
        ),
    ] = None,
    denoise: Denoise = None,
    conservative: Conservative = False,
    tile: Annotated[
        int | None,
        typer.Option("--tile", "-t", min=0, help="Tile side; default: whole images with --hr."),
    ] = None,
    tile_pad: TilePad = DEFAULT_TILE_PAD,
    device: Device = "auto",
    backend: Backend = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    onnx_layout: OnnxLayout = None,
    onnx_range: OnnxRange = None,
    onnx_order: OnnxOrder = None,
) -> None:
    """Compare models on the same images: a sheet with a row per image and a column per
    model, magnified crops where they differ most, and the numbers (PSNR/SSIM and wins
    against --hr ground truth, otherwise the differences between the models)."""
    from srgan.comparison.regions import parse_region
    from srgan.comparison.results import input_paths, references_for

    paths = input_paths(images)
    references = references_for(paths, hr) if hr is not None else None
    fixed = [parse_region(text) for text in crop or ()]
    crop_count = len(fixed) or crops
    sheet_format = _check_outputs(paths, references, output, html_report, per_image)
    hints = onnx_hints(onnx_layout, onnx_range, onnx_order)
    models = model_variants(models, scale, denoise, conservative)
    contenders, target = _contenders(
        models, scale, hr is not None, tile, tile_pad, device, backend, hints
    )
    labels = [c.label for c in contenders]
    columns = ("input", *labels, *(("ground truth",) if hr is not None else ()))
    title = f"x{target:g}: " + ", ".join(labels) + (f" against {hr.name}" if hr else "")

    from srgan.comparison.report import HtmlReport
    from srgan.comparison.results import iter_comparisons, summarise
    from srgan.comparison.sheet import SheetLayout, compose, draw_row, sheet_bytes_estimate

    layout = SheetLayout(columns, cell, crop_count, f"srgan compare {title}")
    if output is not None and not per_image:
        needed = sheet_bytes_estimate(layout, len(paths))
        if needed > SHEET_MEMORY_LIMIT:
            raise BadInputError(
                f"a sheet of {len(paths)} images needs about {needed / 2**30:.1f} GiB: use "
                "--per-image, a smaller --cell or fewer images"
            )
    report = HtmlReport(labels, f"srgan compare {title}") if html_report else None
    rows = []
    numbers = []
    with console.progress_bar("compare", len(paths) * len(contenders)) as bar:
        for item in iter_comparisons(
            contenders,
            paths,
            int(target),
            references,
            fixed,
            crop_count,
            crop_size,
            max_pixels,
            bar.advance,
        ):
            numbers.append(item.numbers)
            if output is not None:
                row = draw_row(layout, labels, item)
                if per_image:
                    assert sheet_format is not None
                    _save(compose(layout, [row]), output / f"{item.name}.png", "PNG")
                else:
                    rows.append(row)
            if report is not None:
                report.add(item)
    summary = summarise(labels, numbers)
    if output is not None and not per_image:
        assert sheet_format is not None
        _save(compose(layout, rows), output, sheet_format)
    if report is not None and html_report is not None:
        from srgan.imaging.io import write_bytes_atomically

        write_bytes_atomically(html_report, report.render(summary).encode("utf-8"))
    if as_json:
        from srgan.cli.metric_cmds import to_json

        console.print_result(to_json({"scale": target, **summary.as_dict()}))
    else:
        console.print_result(format_summary(summary, title))
    for path in (output, html_report):
        if path is not None:
            console.note(f"compare: wrote {path}")


def _contenders(
    names: list[str],
    scale: int | None,
    scored: bool,
    tile: int | None,
    tile_pad: int,
    device: str,
    backend: str,
    hints: OnnxHints | None = None,
) -> tuple[list[Contender], float]:
    """Open every model; the comparison's scale is --scale or the first trained model's."""
    from srgan.comparison.results import Contender
    from srgan.inference.backends import open_model
    from srgan.inference.upscaler import UpscaleOptions, resolve_device

    if not names:
        raise BadInputError("name at least one model with -m")
    chosen_device = resolve_device(device)
    opened: dict[int, object] = {}
    target: float | None = float(scale) if scale is not None else None
    for index, name in enumerate(names):
        if name != "bicubic":
            opened[index] = open_model(name, None, chosen_device, "fp32", backend, onnx=hints)
            if target is None:
                target = float(opened[index].scale)  # type: ignore[attr-defined]
    target = target or 4.0
    contenders = []
    labels = _labels(names)
    for index, name in enumerate(names):
        model = opened.get(index) or open_model(name, target, chosen_device, "fp32", "torch")
        outscale = None
        if model.scale != target:  # type: ignore[attr-defined]
            if scored:
                raise BadInputError(
                    f"model {labels[index]} upscales x{model.scale:g}, not x{target:g}: "  # type: ignore[attr-defined]
                    "scores against --hr need one scale"
                )
            outscale = target
        whole = 0 if scored and tile is None else tile
        options = UpscaleOptions(whole, tile_pad, outscale, device=chosen_device)
        contenders.append(Contender(labels[index], model, options))  # type: ignore[arg-type]
    return contenders, target


def _labels(names: list[str]) -> list[str]:
    """Column labels: model names, or file names without their folder; unique."""
    labels = []
    for name in names:
        label = Path(name).stem if any(sep in name for sep in "/\\.") else name
        base, count = label, 2
        while label in labels:
            label, count = f"{base} ({count})", count + 1
        labels.append(label)
    return labels


def _check_outputs(
    paths: list[Path],
    references: list[Path] | None,
    output: Path | None,
    html_report: Path | None,
    per_image: bool,
) -> str | None:
    inputs = {p.resolve() for p in [*paths, *(references or [])]}
    for path in (output, html_report):
        if path is not None and path.resolve() in inputs:
            raise BadInputError(f"{path}: is one of the inputs; choose another output")
    if html_report is not None and html_report.suffix.lower() not in (".html", ".htm"):
        raise BadInputError(f"--html {html_report}: give a file ending in .html")
    if output is None:
        if per_image:
            raise BadInputError("--per-image writes one sheet per image into --output FOLDER")
        return None
    if per_image:
        if output.exists() and not output.is_dir():
            raise BadInputError(f"--output {output}: with --per-image, give a folder")
        return "PNG"
    fmt = _SHEET_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise BadInputError(f"--output {output}: the sheet is written as .png, .jpg or .webp")
    return fmt


def _save(sheet, path: Path, fmt: str) -> None:
    from srgan.imaging.io import write_bytes_atomically

    if max(sheet.size) > _MAX_SIDE[fmt]:
        raise BadInputError(
            f"{path}: a {sheet.width}x{sheet.height} sheet is too large for {fmt}: use PNG "
            "or --per-image"
        )
    buffer = io.BytesIO()
    options = {"quality": 92} if fmt in ("JPEG", "WEBP") else {"compress_level": 6}
    sheet.save(buffer, format=fmt, **options)
    write_bytes_atomically(path, buffer.getvalue())


def format_summary(summary: Summary, title: str) -> str:
    """The numbers as text tables: scores and wins with ground truth, then differences."""
    lines: list[str] = []
    labels = summary.labels
    if summary.scores is not None:
        from srgan.cli.metric_cmds import format_tables
        from srgan.evaluation import ImageScore, ScoreTable

        tables = [
            ScoreTable(
                [
                    ImageScore(name, s.psnr, s.ssim)
                    for name, s in zip(summary.names, summary.scores[m], strict=True)
                ]
            )
            for m in range(len(labels))
        ]
        lines.append(f"{title}: PSNR (dB) and SSIM on Y, border = scale")
        lines.append(format_tables(tables, labels))
        width = max(5, *(len(label) for label in labels))
        lines.append("")
        lines.append(f"wins of {len(summary.names)} images")
        lines.append(f"{'model':<{width}}  best PSNR  best SSIM")
        for label, (p, s) in zip(labels, summary.wins(), strict=True):
            lines.append(f"{label:<{width}}  {p:>9}  {s:>9}")
    if summary.differences:
        if lines:
            lines.append("")
        lines.append("differences between the models (levels of 255, mean over images)")
        width = max(1, *(len(label) for label in labels))
        lines.append(f"{'a':<{width}}  {'b':<{width}}  mean |a-b|     max  PSNR a vs b")
        for i, j in summary.differences:
            d = summary.mean_difference((i, j))
            psnr = "inf" if d.psnr == float("inf") else f"{d.psnr:.2f}"
            lines.append(
                f"{labels[i]:<{width}}  {labels[j]:<{width}}  {d.mean_abs:>10.2f}  "
                f"{d.max_abs:>6.0f}  {psnr:>11}"
            )
    if not lines:
        lines.append(f"{title}: one model, nothing to compare it with")
    return "\n".join(lines)


__all__ = ["compare", "format_summary"]
