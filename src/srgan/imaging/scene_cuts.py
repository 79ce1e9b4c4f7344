"""Scene cuts and repeated frames in a sequence of frames (one module for training
windows, evaluation and `srgan video`).

Between two consecutive frames, both shrunk (block means) to at most `SAMPLE_SIDE` px:

- a **cut** when the 16x16 gray thumbnails (area means) differ by at least
  `CUT_THUMBNAIL` 8-bit levels on average *and* the 512-bin colour histograms (3 bits per
  channel) by at least `CUT_HISTOGRAM` (half the L1 distance: 0 same colours, 1 none in
  common). The thumbnail catches a change of picture; the histogram gate keeps large fast
  motion over the same colours from counting as a cut.
- a **repeat** (a held frame: animation on twos, frame-rate conversion) when no block of
  a 16x16 grid differs by more than `REPEAT_BLOCK` levels on average.

Thresholds measured on real footage (`docs/VIDEO_TRAINING.md` lists the clips), at full
size and shrunk x6: every cut had a thumbnail difference >= 32 and a histogram distance
>= 0.14; the largest thumbnail differences without a cut (fast motion, a hand across the
frame, an exposure change) were 19.1, 15.5 and 9.4. Held frames had block differences
<= 0.60; the stillest frames that were not held, 0.82 and more.

A recurrent network must not carry features across a cut, and gains nothing from
running a held frame twice: `plan_segments` splits a window at cuts and lists, per
segment, the distinct frames to run and which of them each frame's output copies, so a
run of identical input frames gives identical output frames.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

__all__ = [
    "CUT_HISTOGRAM",
    "CUT_THUMBNAIL",
    "REPEAT_BLOCK",
    "Segment",
    "Transition",
    "TransitionTracker",
    "compare",
    "compare_signatures",
    "plan_segments",
    "run_in_segments",
    "signature",
    "transitions",
    "windows_within_scenes",
]

CUT_THUMBNAIL = 24.0
CUT_HISTOGRAM = 0.05
REPEAT_BLOCK = 0.7
GRID = 16
_LEVELS = 8  # histogram levels per colour channel

Frames = TypeVar("Frames")  # an ndarray or tensor indexable by a list of frame indices


@dataclass(frozen=True)
class Transition:
    """What happens between a frame and the one before it."""

    thumbnail: float  # mean absolute difference of the thumbnails, 8-bit levels
    histogram: float  # half L1 distance of the colour histograms, 0..1
    block: float  # largest block mean absolute difference, 8-bit levels

    @property
    def cut(self) -> bool:
        return self.thumbnail >= CUT_THUMBNAIL and self.histogram >= CUT_HISTOGRAM

    @property
    def repeat(self) -> bool:
        return not self.cut and self.block <= REPEAT_BLOCK


SAMPLE_SIDE = 160  # frames are compared shrunk (area means) to at most about this size


def signature(frame: np.ndarray) -> np.ndarray:
    """What `compare` needs of a frame: (H, W, C) or (H, W) pixels (uint8, uint16 or floats
    in [0, 1]) shrunk by an integer factor to at most about `SAMPLE_SIDE` (means of
    factor x factor blocks: noise averages out alike at any input size), float32, 0..255."""
    pixels = frame if frame.ndim == 3 else frame[..., None]
    pixels = pixels[..., :3]
    if pixels.dtype == np.uint8:
        values = pixels.astype(np.float32)
    elif pixels.dtype == np.uint16:
        values = pixels.astype(np.float32) / 257
    else:
        values = np.clip(pixels.astype(np.float32), 0, 1) * 255
    factor = max(1, -(-max(values.shape[:2]) // SAMPLE_SIDE))
    if factor > 1:
        height, width = values.shape[0] // factor, values.shape[1] // factor
        if height and width:
            values = values[: height * factor, : width * factor]
            values = values.reshape(height, factor, width, factor, -1).mean(axis=(1, 3))
    return values


def _block_means(values: np.ndarray) -> np.ndarray:
    """(H, W) -> (min(GRID, H), min(GRID, W)) means over a grid of near-equal blocks."""
    height, width = values.shape
    rows = np.array_split(np.arange(height), min(GRID, height))
    cols = np.array_split(np.arange(width), min(GRID, width))
    row_sums = np.add.reduceat(values, [r[0] for r in rows], axis=0)
    sums = np.add.reduceat(row_sums, [c[0] for c in cols], axis=1)
    counts = np.outer([len(r) for r in rows], [len(c) for c in cols])
    return sums / counts


def _histogram(pixels: np.ndarray) -> np.ndarray:
    bins = np.minimum(pixels, 255).astype(np.int32) * _LEVELS // 256
    index = np.zeros(bins.shape[:2], dtype=np.int32)
    for channel in range(bins.shape[2]):
        index = index * _LEVELS + bins[..., channel]
    counts = np.bincount(index.ravel(), minlength=_LEVELS ** bins.shape[2])
    return counts / max(index.size, 1)


def compare_signatures(previous: np.ndarray, current: np.ndarray) -> Transition:
    """The transition between two frames' `signature`s."""
    if previous.shape != current.shape:
        return Transition(255.0, 1.0, 255.0)  # a change of size is a change of scene
    thumbnail = np.abs(
        _block_means(previous.mean(axis=2)) - _block_means(current.mean(axis=2))
    ).mean()
    histogram = 0.5 * np.abs(_histogram(previous) - _histogram(current)).sum()
    block = _block_means(np.abs(previous - current).mean(axis=2)).max()
    return Transition(float(thumbnail), float(histogram), float(block))


def compare(previous: np.ndarray, current: np.ndarray) -> Transition:
    """The transition from `previous` to `current` (see `signature` for the pixels)."""
    return compare_signatures(signature(previous), signature(current))


def transitions(frames: Sequence[np.ndarray]) -> list[Transition]:
    """The transitions between consecutive frames (one fewer than the frames)."""
    signatures = [signature(frame) for frame in frames]
    return [compare_signatures(a, b) for a, b in itertools.pairwise(signatures)]


class TransitionTracker:
    """Transitions of a stream, one frame at a time (holds one signature)."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None

    def push(self, frame: np.ndarray) -> Transition | None:
        """The transition into `frame` (None for the first frame)."""
        current = signature(frame)
        previous, self.previous = self.previous, current
        return None if previous is None else compare_signatures(previous, current)


@dataclass(frozen=True)
class Segment:
    """Frames ``start .. stop - 1`` of one scene: ``run`` the distinct ones (indices into
    the whole sequence), and for each frame the position in ``run`` whose output it takes."""

    start: int
    stop: int
    run: tuple[int, ...]
    source: tuple[int, ...]


def plan_segments(steps: Sequence[Transition]) -> list[Segment]:
    """Split ``len(steps) + 1`` frames at cuts; within a scene, held frames are not run."""
    segments: list[Segment] = []
    start = 0
    for index in range(1, len(steps) + 2):
        if index <= len(steps) and not steps[index - 1].cut:
            continue
        run, source = [start], [0]
        for frame in range(start + 1, index):
            if not steps[frame - 1].repeat:
                run.append(frame)
            source.append(len(run) - 1)
        segments.append(Segment(start, index, tuple(run), tuple(source)))
        start = index
    return segments


def run_in_segments(
    frames: Frames,
    segments: Sequence[Segment],
    upscale: Callable[[Frames], Frames],
    concatenate: Callable[[list[Frames]], Frames],
) -> Frames:
    """``upscale`` applied to each segment's distinct frames, outputs put back in order."""
    parts = []
    for segment in segments:
        outputs = upscale(frames[list(segment.run)])  # type: ignore[index]
        parts.append(outputs[list(segment.source)])  # type: ignore[index]
    return concatenate(parts)


def windows_within_scenes(steps: Sequence[Transition], length: int) -> list[tuple[int, ...]]:
    """Every window of `length` consecutive distinct frames that stays inside one scene."""
    windows: list[tuple[int, ...]] = []
    for segment in plan_segments(steps):
        run = segment.run
        windows += [run[i : i + length] for i in range(len(run) - length + 1)]
    return windows
