"""Validation during training, on the `srgan eval` protocol (`srgan.evaluation`): the
model and MATLAB bicubic scored side by side (PSNR/SSIM on Y, border = scale) on images
or clips, and a bicubic | model | HR picture of the first few."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from srgan.evaluation import (
    ClipSelection,
    ImageResult,
    comparison_grid,
    evaluate_clips,
    iter_image_results,
    iter_pair_results,
)
from srgan.evaluation.scores import ScoreTable
from srgan.imaging.clips import Clip
from srgan.inference.vsr import TemporalWindows
from srgan.training.engine.recipe import Validation
from srgan.zoo.bicubic import load_bicubic
from srgan.zoo.descriptor import LoadedModel


def validate_images(
    model: LoadedModel, paths: Sequence[Path], scale: int, crop: int = 0, grid_rows: int = 0
) -> Validation:
    """On HR images, their LR made by MATLAB bicubic (the benchmark protocol)."""
    results = iter_image_results([model, load_bicubic(scale)], paths, scale, crop)
    return _collect(results, grid_rows)


def validate_pairs(
    model: LoadedModel, pairs: Sequence[tuple[str, Path, Path]], scale: int, grid_rows: int = 0
) -> Validation:
    """On given (name, LR, HR) pairs, e.g. held-out images degraded like the training ones."""
    return _collect(iter_pair_results([model, load_bicubic(scale)], pairs, scale), grid_rows)


def _collect(results: Iterator[ImageResult], grid_rows: int) -> Validation:
    tables = [ScoreTable(), ScoreTable()]
    rows = []
    for index, result in enumerate(results):
        for table, score in zip(tables, result.scores, strict=True):
            table.images.append(score)
        if index < grid_rows:
            rows.append([result.outputs[1], result.outputs[0], result.hr])
    return _validation(tables, rows)


def validate_clips(
    model: LoadedModel,
    clips: Sequence[Clip],
    scale: int,
    windows: TemporalWindows,
    selection: ClipSelection,
    grid_rows: int = 0,
) -> Validation:
    bicubic = load_bicubic(scale)
    evaluation = evaluate_clips(
        [model, bicubic], clips, scale, windows, selection, keep_centre=grid_rows
    )
    rows = [[outputs[1], outputs[0], hr] for outputs, hr in evaluation.centre_frames]
    return _validation(evaluation.tables, rows)


def _validation(tables: list[ScoreTable], rows: list) -> Validation:
    model, bicubic = tables
    return Validation(
        model.mean_psnr,
        model.mean_ssim,
        bicubic.mean_psnr,
        bicubic.mean_ssim,
        comparison_grid(rows) if rows else None,
    )
