"""Scoring video models (and image models, frame by frame) on clips: the image protocol on
every frame, the mean over a clip's frames, then over clips.

Video (temporal) models run on overlapping windows of frames (`inference.vsr`), image
models on each frame alone. Frames are read as they are needed: a clip is never held
whole. `ClipSelection` limits the work (the centre frames of each clip, a centre crop),
which training validation uses to stay quick.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srgan.defaults import DEFAULT_MAX_PIXELS
from srgan.errors import BadInputError
from srgan.evaluation.protocol import (
    check_scales,
    low_resolution,
    reference,
    score_output,
    untiled,
)
from srgan.evaluation.scores import ImageScore, ScoreTable, mean_score
from srgan.imaging.clips import Clip, discover_clips, holds_clips
from srgan.imaging.io import Image, ImageMeta
from srgan.inference.upscaler import AnyModel, upscale_image
from srgan.inference.vsr import DEFAULT_WINDOWS, TemporalWindows, upscale_frames

Progress = Callable[[str], None]

__all__ = [
    "ClipEvaluation",
    "ClipSelection",
    "dataset_clips",
    "evaluate_clips",
    "holds_clips",
]


@dataclass(frozen=True)
class ClipSelection:
    """Which frames of a clip are scored: the centre `max_frames` (None: all), each
    cropped to its centre `crop` HR pixels (0: whole frames)."""

    max_frames: int | None = None
    crop: int = 0

    def span(self, length: int) -> tuple[int, int]:
        count = length if self.max_frames is None else min(length, self.max_frames)
        return (length - count) // 2, count


@dataclass
class ClipEvaluation:
    """One table per model (per-clip means), and for the first `keep_centre` clips the
    centre frame as each model made it plus the HR frame."""

    tables: list[ScoreTable]
    centre_frames: list[tuple[list[Image], Image]] = field(default_factory=list)


def dataset_clips(dataset: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> list[Clip]:
    """The clips of a video benchmark: sub-folders of frames (Vid4 layout) and/or video
    files, or one video file; BadInputError when there are none."""
    if dataset.is_dir() and not holds_clips(dataset):
        raise BadInputError(f"{dataset}: no clip folders (sub-folders of frames) found")
    return discover_clips(dataset, max_pixels)


def evaluate_clips(
    models: Sequence[AnyModel],
    clips: Sequence[Clip],
    scale: int,
    windows: TemporalWindows = DEFAULT_WINDOWS,
    selection: ClipSelection = ClipSelection(),
    progress: Progress | None = None,
    keep_centre: int = 0,
) -> ClipEvaluation:
    check_scales(list(models), scale)
    evaluation = ClipEvaluation([ScoreTable(unit="clips") for _ in models])
    for index, clip in enumerate(clips):
        start, count = selection.span(len(clip))
        if count == 0:
            raise BadInputError(f"{clip.name}: holds no frames")
        centre = count // 2 if index < keep_centre else None
        kept: list[Image] = []
        hr_centre: Image | None = None
        for model, table in zip(models, evaluation.tables, strict=True):
            scores: list[ImageScore] = []
            for frame, (sr, hr, frame_score) in enumerate(
                _frame_results(model, clip, start, count, scale, windows, selection.crop)
            ):
                scores.append(frame_score)
                if frame == centre:
                    kept.append(sr)
                    hr_centre = hr
            table.images.append(mean_score(clip.name, scores))
        if hr_centre is not None:
            evaluation.centre_frames.append((kept, hr_centre))
        if progress:
            progress(clip.name)
    return evaluation


def _frame_results(
    model: AnyModel,
    clip: Clip,
    start: int,
    count: int,
    scale: int,
    windows: TemporalWindows,
    crop: int,
) -> Iterator[tuple[Image, Image, ImageScore]]:
    """(SR, HR, score) of each selected frame, in order."""
    references: deque[Image] = deque()  # HR frames whose SR output has not come yet
    meta = ImageMeta()

    def low_resolution_frames() -> Iterator[Image]:
        for offset, pixels in enumerate(clip.stream(start, count)):
            name = f"{clip.name}/{start + offset}"
            hr = reference(Image(np.ascontiguousarray(pixels), meta), scale, crop, name)
            if references and hr.pixels.shape != references[0].pixels.shape:
                raise BadInputError(f"{name}: its size differs from the clip's other frames")
            references.append(hr)
            yield low_resolution(hr, scale)

    options = untiled(model)
    outputs: Iterator[np.ndarray] = (
        upscale_frames(model, (lr.pixels for lr in low_resolution_frames()), options, windows)
        if model.descriptor.temporal
        else (upscale_image(model, lr, options).pixels for lr in low_resolution_frames())
    )
    for offset, pixels in enumerate(outputs):
        hr = references.popleft()
        sr = Image(pixels, hr.meta)
        yield (
            sr,
            hr,
            score_output(f"{clip.name}/{_frame_name(clip, start + offset)}", sr, hr, scale),
        )


def _frame_name(clip: Clip, index: int) -> str:
    paths = getattr(clip, "paths", None)
    return paths[index].stem if paths is not None else f"frame_{index}"
