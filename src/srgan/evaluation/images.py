"""Scoring image sets: a model (or several, side by side) on a folder of HR images, and
images against reference images (`srgan psnr`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from srgan.defaults import DEFAULT_MAX_PIXELS
from srgan.errors import BadInputError
from srgan.evaluation.protocol import (
    check_scales,
    low_resolution,
    reference,
    score_output,
    upscale,
)
from srgan.evaluation.scores import ImageScore, ScoreTable, score
from srgan.imaging.clips import natural_sorted
from srgan.imaging.io import Image, list_images
from srgan.inference.image_job import read_within
from srgan.inference.job_memory import memory_limit
from srgan.inference.upscaler import AnyModel

Progress = Callable[[str], None]
_METRIC_BYTES = 64  # per pixel: float copies, the Y channel and the SSIM maps of one image


def _protocol_work(models: Sequence[AnyModel], scale: int) -> float:
    """Bytes per HR pixel besides decoding: the HR image, its LR copy, the SR result and
    their float copies, and the largest model's activations on the whole LR image (the
    protocol runs untiled)."""
    activations = max((m.descriptor.memory_per_pixel for m in models), default=0) / scale**2
    return 3 * _METRIC_BYTES + activations


@dataclass(frozen=True)
class ImageResult:
    """One HR image through every model: its LR input, each model's output and score."""

    name: str
    hr: Image
    lr: Image
    outputs: list[Image]
    scores: list[ImageScore]


def dataset_images(dataset: Path) -> list[Path]:
    """The HR images of a benchmark folder in natural order, or BadInputError."""
    if not dataset.is_dir():
        raise BadInputError(f"{dataset}: not a folder of HR images")
    paths = natural_sorted(list_images(dataset))
    if not paths:
        raise BadInputError(f"{dataset}: no images found")
    return paths


def iter_image_results(
    models: Sequence[AnyModel],
    paths: Sequence[Path],
    scale: int,
    crop: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Iterator[ImageResult]:
    """The protocol (`evaluation.protocol`) image by image, every model on the same LR
    input; one image is held at a time."""
    check_scales(list(models), scale)
    limit, work = memory_limit(), _protocol_work(models, scale)
    for path in paths:
        image = read_within(path, max_pixels, limit, work, "evaluate on it")
        hr = reference(image, scale, crop, str(path))
        lr = low_resolution(hr, scale)
        outputs = [upscale(model, lr) for model in models]
        scores = [score_output(path.stem, sr, hr, scale) for sr in outputs]
        yield ImageResult(path.stem, hr, lr, outputs, scores)


def iter_pair_results(
    models: Sequence[AnyModel],
    pairs: Sequence[tuple[str, Path, Path]],
    scale: int,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Iterator[ImageResult]:
    """Given LR inputs instead of bicubic ones: each (name, LR, HR) pair, the HR
    modcropped to `scale` and the LR exactly 1/scale of it (real or synthetic degradations
    saved beside their HR images); scored like the protocol (Y, border = scale)."""
    check_scales(list(models), scale)
    limit, work = memory_limit(), _protocol_work(models, scale)
    for name, lr_path, hr_path in pairs:
        hr_image = read_within(hr_path, max_pixels, limit // 2, work, "evaluate on it")
        hr = reference(hr_image, scale, 0, str(hr_path))
        lr = read_within(lr_path, max_pixels, limit // 2, _METRIC_BYTES, "evaluate on it")
        if lr.has_alpha:
            lr = Image(lr.pixels[..., :-1], lr.meta)
        if (lr.height * scale, lr.width * scale) != (hr.height, hr.width):
            raise BadInputError(
                f"{lr_path}: {lr.width}x{lr.height} is not 1/{scale} of its HR image "
                f"({hr.width}x{hr.height} after cropping to a multiple of {scale})"
            )
        outputs = [upscale(model, lr) for model in models]
        scores = [score_output(name, sr, hr, scale) for sr in outputs]
        yield ImageResult(name, hr, lr, outputs, scores)


def evaluate_pairs(
    models: Sequence[AnyModel],
    pairs: Sequence[tuple[str, Path, Path]],
    scale: int,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> list[ScoreTable]:
    """`evaluate_images` on given LR/HR pairs (`pair_paths(lr_folder, hr_folder)`)."""
    tables = [ScoreTable() for _ in models]
    for result in iter_pair_results(models, pairs, scale, max_pixels):
        for table, image_score in zip(tables, result.scores, strict=True):
            table.images.append(image_score)
        if progress:
            progress(result.name)
    return tables


def evaluate_images(
    models: Sequence[AnyModel],
    paths: Sequence[Path],
    scale: int,
    crop: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> list[ScoreTable]:
    """One table per model: each image's PSNR/SSIM (Y, border = scale) and the means."""
    tables = [ScoreTable() for _ in models]
    for result in iter_image_results(models, paths, scale, crop, max_pixels):
        for table, image_score in zip(tables, result.scores, strict=True):
            table.images.append(image_score)
        if progress:
            progress(result.name)
    return tables


def score_model(
    model: AnyModel,
    dataset: Path,
    scale: int,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> ScoreTable:
    """`model` on the HR images of `dataset`: per-image scores and their means."""
    (table,) = evaluate_images([model], dataset_images(dataset), scale, 0, max_pixels, progress)
    return table


def pair_paths(first: Path, second: Path) -> list[tuple[str, Path, Path]]:
    """Two files, or two folders whose images are paired by file stem."""
    for path in (first, second):
        if not path.exists():
            raise BadInputError(f"{path}: no such file or folder")
    if first.is_dir() != second.is_dir():
        raise BadInputError(f"{first} and {second}: give two files or two folders")
    if not first.is_dir():
        return [(first.stem, first, second)]
    by_stem = {p.stem: p for p in list_images(second)}
    pairs, missing = [], []
    for path in natural_sorted(list_images(first)):
        partner = by_stem.get(path.stem)
        if partner is None:
            missing.append(path.name)
        else:
            pairs.append((path.stem, path, partner))
    if missing:
        raise BadInputError(
            f"{second}: no image with the stem of {', '.join(missing[:3])}"
            + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        )
    if not pairs:
        raise BadInputError(f"{first}: no images found")
    return pairs


def lr_pairs(lr_folder: Path, hr_dataset: Path) -> list[tuple[str, Path, Path]]:
    """(name, LR, HR) for every HR image of a benchmark folder, its LR input found in
    `lr_folder` by file stem; BadInputError naming the HR images without one."""
    if not lr_folder.is_dir():
        raise BadInputError(f"{lr_folder}: not a folder of LR images")
    by_stem = {p.stem: p for p in list_images(lr_folder)}
    paths = dataset_images(hr_dataset)
    missing = [p.name for p in paths if p.stem not in by_stem]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise BadInputError(f"{lr_folder}: no LR image for {', '.join(missing[:3])}{more}")
    return [(p.stem, by_stem[p.stem], p) for p in paths]


def compare_paths(
    pairs: list[tuple[str, Path, Path]],
    crop_border: int = 0,
    y_channel: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> ScoreTable:
    table = ScoreTable()
    limit = memory_limit()
    for name, a, b in pairs:
        first = read_within(a, max_pixels, limit // 2, _METRIC_BYTES, "compare it")
        second = read_within(b, max_pixels, limit // 2, _METRIC_BYTES, "compare it")
        table.images.append(score(name, first, second, crop_border, y_channel))
        if progress:
            progress(name)
    return table
