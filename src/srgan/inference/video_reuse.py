"""Reuse what did not change between video frames: whole frames, or the tiles of a frame.

Animation is drawn on twos and threes (each drawing held for 2 or 3 frames), and still
shots and static backgrounds are common in any footage; after lossy compression the
repeats differ only by coding noise. So each decoded frame is compared with the pictures
its upscaled output was last computed from, tile by tile on a grid of `CELL` pixel cores
with the tiling context around them (the `--tile-pad`, as `tiling` cuts images):

- a tile is *unchanged* when, after a 3x3 box blur of both pictures (which evens out the
  coding noise), no pixel of its padded box differs by more than the threshold, in 8-bit
  levels (scaled for 16-bit video);
- when every tile is unchanged, the previous upscaled frame is reused whole;
- when only some are, the network runs on the changed tiles alone (neighbouring ones as
  one block) and `tiling.retile` blends them into the previous output with the usual
  tile weights, so no seam appears between recomputed and kept tiles. When the blocks
  would cost about as much as the whole frame, the frame is upscaled whole.

Each tile is compared with the picture it was itself last upscaled from, not with the
previous frame, so slow changes (fades, slow pans) cannot creep past the threshold a
little at a time. The default threshold is measured in `benchmarks/video_speed.py` and
explained in docs/VIDEO.md.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from srgan.defaults import DEFAULT_REUSE_THRESHOLD
from srgan.errors import BadInputError
from srgan.imaging.io import Image, ImageMeta
from srgan.inference.tiling import Forward, TileGrid, changed_blocks, retile, tile_grid
from srgan.inference.upscaler import (
    AnyModel,
    UpscaleOptions,
    channel_groups,
    choose_tile,
    upscale_image,
    upscale_pixels,
)
from srgan.inference.vsr import resize_to_outscale

log = logging.getLogger(__name__)

MAX_REUSE_THRESHOLD = 255.0
CELL = 64  # tile core side in input pixels for change detection and partial recompute
_WORTH_IT = 0.8  # recompute tiles only while their padded area is below this share of a frame


def check_reuse_threshold(threshold: float) -> float:
    if not (math.isfinite(threshold) and 0 <= threshold <= MAX_REUSE_THRESHOLD):
        raise BadInputError(
            f"--reuse-threshold {threshold:g}: give a number of 8-bit levels from 0 to "
            f"{MAX_REUSE_THRESHOLD:g} (default {DEFAULT_REUSE_THRESHOLD:g}), or --no-reuse"
        )
    return float(threshold)


@dataclass
class ReuseCounts:
    """What frame reuse did over a run."""

    frames: int = 0  # frames that went through the model stage
    whole: int = 0  # reused whole: no network at all
    partial: int = 0  # only some tiles recomputed
    tiles: int = 1  # tiles per frame
    tiles_recomputed: int = 0  # in the partial frames
    work: float = 0.0  # network input pixels (context included), in frames upscaled in full

    @property
    def upscaled(self) -> int:
        """Frames upscaled in full."""
        return self.frames - self.whole - self.partial

    def summary(self) -> str:
        text = f"{self.whole} of {self.frames} frames reused whole"
        if self.partial:
            share = self.tiles_recomputed / (self.partial * self.tiles)
            text += f", {self.partial} in part ({share:.0%} of their tiles recomputed)"
        return text

    def explain(self) -> str:
        """The summary and how much network work it left (for -v)."""
        share = self.work / self.frames if self.frames else 0.0
        return (
            f"{self.summary()}, {self.upscaled} upscaled in full; the network did "
            f"{share:.0%} of the work of upscaling every frame"
        )


class ChangedTiles:
    """Which tiles of a frame differ from the pictures their outputs were computed from."""

    def __init__(self, grid: TileGrid, threshold: float, dtype: np.dtype) -> None:
        self.grid = grid
        levels = np.iinfo(dtype).max / 255
        # 3x3 box sums are compared, not means: integers only, the same test.
        self.limit = 9 * threshold * levels
        self.wide = np.int16 if dtype == np.uint8 else np.int32  # holds 9 x the peak
        self.boxes = [
            grid.input_box(r, c) for r in range(grid.shape[0]) for c in range(grid.shape[1])
        ]
        self.references: list[np.ndarray | None] = [None] * len(self.boxes)

    def find(self, pixels: np.ndarray) -> np.ndarray:
        changed = np.ones(len(self.boxes), dtype=bool)
        for index, (box, reference) in enumerate(zip(self.boxes, self.references, strict=True)):
            if reference is not None:
                changed[index] = self._differs(pixels[box], reference)
        return changed.reshape(self.grid.shape)

    def _differs(self, picture: np.ndarray, reference: np.ndarray) -> bool:
        diff = picture.astype(self.wide)
        diff -= reference
        if min(diff.shape[:2]) < 3:
            return bool(np.abs(diff).max() * 9 > self.limit)
        rows = diff[:-2] + diff[1:-1] + diff[2:]
        blurred = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]
        return bool(max(blurred.max(), -blurred.min()) > self.limit)

    def remember(self, pixels: np.ndarray, changed: np.ndarray) -> None:
        """The tiles in `changed` now hold outputs computed from `pixels`."""
        for index in np.flatnonzero(changed.reshape(-1)):
            self.references[index] = pixels[self.boxes[index]].copy()


class FrameReuse:
    """Upscales the frames of one video in order, reusing unchanged frames and tiles.

    A frame upscaled in full goes through exactly the path a frame takes without reuse
    (`upscale_image`), so runs differ only where reuse decided otherwise."""

    def __init__(
        self,
        model: AnyModel,
        options: UpscaleOptions,
        runner: Forward,
        threshold: float,
        height: int,
        width: int,
        dtype: np.dtype,
    ) -> None:
        self.model, self.options, self.runner = model, options, runner
        blank = Image(np.zeros((height, width, 3), dtype), ImageMeta(bit_depth=dtype.itemsize * 8))
        self.meta = blank.meta
        self.source_size = (height, width)
        # Tiles need a tileable model at an integer scale; a scale-free resize (bicubic to
        # --outscale) and untileable models reuse whole frames only.
        described = model.descriptor
        self.regions = (
            described.tileable
            and float(model.scale).is_integer()
            and not (described.in_channels == 0 and options.outscale is not None)
        )
        pad = options.tile_pad
        self.full_cost = height * width
        if self.regions:
            (_, self.forward, pad), *more = channel_groups(model, blank, runner, options)
            assert not more, "video frames are RGB: one group of channels"
            full_tile = choose_tile(model, blank, options)
            self.max_side = full_tile + 2 * pad if full_tile else 0
            self.full_cost = _padded_area(tile_grid(height, width, 1, full_tile, pad))
        scale = int(model.scale) if self.regions else 1
        self.grid = tile_grid(height, width, scale, CELL, pad)
        self.tiles = ChangedTiles(self.grid, threshold, dtype)
        self.counts = ReuseCounts(tiles=self.grid.shape[0] * self.grid.shape[1])
        self.model_output: np.ndarray | None = None  # at the model's scale
        self.output: np.ndarray | None = None  # at --outscale
        log.info(
            "frame reuse: threshold %g of 255 after a 3x3 blur, %dx%d tiles of %d px%s",
            threshold,
            self.grid.shape[1],
            self.grid.shape[0],
            CELL,
            "" if self.regions else " (whole frames only)",
        )

    def upscale(self, pixels: np.ndarray) -> np.ndarray:
        """The upscaled frame; the same array as the previous result when reused whole
        (never written to afterwards)."""
        self.counts.frames += 1
        changed = self.tiles.find(pixels)
        if self.output is not None and not changed.any():
            self.counts.whole += 1
            return self.output
        if self.model_output is not None and self.regions:
            blocks = changed_blocks(changed, self.grid, self.max_side)
            cost = sum(
                (self.grid.rows[r1 - 1].stop - self.grid.rows[r0].start)
                * (self.grid.cols[c1 - 1].stop - self.grid.cols[c0].start)
                for r0, r1, c0, c1 in blocks
            )
            if cost < _WORTH_IT * self.full_cost:
                self.counts.partial += 1
                self.counts.work += cost / self.full_cost
                self.counts.tiles_recomputed += int(changed.sum())
                self.model_output = retile(
                    pixels,
                    self.model_output,
                    self.forward,
                    self.grid,
                    blocks,
                    self.model.descriptor.size_multiple,
                )
                self.tiles.remember(pixels, changed)
                return self._finish(self.model_output)
        self.counts.work += 1
        everything = np.ones(self.grid.shape, dtype=bool)
        self.tiles.remember(pixels, everything)
        image = Image(pixels, self.meta)
        if not self.regions:
            self.output = upscale_image(self.model, image, self.options, None, self.runner).pixels
            return self.output
        self.model_output = upscale_pixels(self.model, image, self.options, None, self.runner)
        return self._finish(self.model_output)

    def _finish(self, upscaled: np.ndarray) -> np.ndarray:
        self.output = resize_to_outscale(
            upscaled, self.source_size, self.options.outscale, self.model.scale
        )
        return self.output


def _padded_area(grid: TileGrid) -> int:
    """Input pixels the network sees for all the tiles of `grid`, context included."""
    heights = sum(span.stop - span.start for span in grid.rows)
    widths = sum(span.stop - span.start for span in grid.cols)
    return heights * widths
