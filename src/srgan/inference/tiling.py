"""Seamless tiled super-resolution in bounded memory.

`tiled_upscale` cuts the image into a grid of ``tile x tile`` core tiles (the last tile of
a row or column may be smaller), runs the network on each core grown by ``pad`` context
pixels on every side (clipped to the image, so at the border the network sees the true
border, exactly as without tiling) and blends the upscaled tiles back together.

Blending. Two neighbouring padded tiles overlap by ``2 * pad`` input pixels around their
common core edge. The outer ``pad / 2`` of each tile's context is used only as context
(weight 0: a network's outputs near the edge of what it saw are the least reliable); over
the central ``pad`` pixels of the overlap the two weights ramp linearly in opposite
directions and sum to 1, so there is no seam. At the image border a tile's weight is 1.
Weights are separable (row weight x column weight) and the result is normalised by the
accumulated weight sum, kept as two 1-D vectors. For an operator whose outputs depend on
input pixels at most ``pad / 2`` away (MATLAB bicubic: 2 px, so ``pad >= 3`` or ``4``) the
tiled result equals the untiled one; with one tile it is bit-identical.

Memory. Only tiles are ever converted to float. Tiles are processed one row of tiles (a
band) at a time: their weighted outputs are accumulated in one float32 band buffer, the
rows that no later tile touches are rounded into the output array, and the overlap rows
are carried to the next band. Beyond ``source`` and the returned array, peak memory is::

    band   = (tile + 2 * pad) * scale  *  W * scale  *  C * 4 bytes
    tile   ~ (tile + 2 * pad)**2 * (C + scale**2 * (C + 1)) * 4 bytes  (+ network activations)

plus two weight vectors of ``(H + W) * scale`` float32 values. (The band actually holds at
most ``(tile + pad) * scale + 1`` rows.) With ``tile`` None or 0 the band is the whole
output in float32, as for untiled inference.

Recomputing part of an image. `retile` takes the upscaled output of an earlier, similar
image (the previous frame of a video) and recomputes only some tiles of a `TileGrid`,
running each block of neighbouring changed tiles as one network call (it then needs
context only around the block). Every output pixel stays the weighted blend of the tiles
that cover it, with the same weights as `tiled_upscale`: a recomputed tile contributes
its new output, a kept tile what the earlier output holds there. So across the overlap
between a recomputed and a kept tile the result ramps smoothly from one to the other,
and where the kept tile's input did not change (its whole padded box, which is what a
caller must check) both are the network's output for the same pixels: no seam.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from srgan.imaging.rows import RowStream, collect

__all__ = [
    "Forward",
    "TileGrid",
    "auto_tile_size",
    "available_memory_bytes",
    "band_rows",
    "changed_blocks",
    "retile",
    "tile_count",
    "tile_grid",
    "tiled_rows",
    "tiled_upscale",
]

Forward = Callable[[np.ndarray], np.ndarray]
"""[1, C, h, w] float32 array in [0, 1] -> [1, C, h * scale, w * scale] float32 array.

Arrays, not tensors, so that backends other than PyTorch (ncnn) run without importing it;
a PyTorch forward wraps them with `torch.from_numpy` at no cost."""

DEFAULT_TILE_CANDIDATES = (1024, 768, 512, 384, 256, 192, 128, 96, 64)
_FALLBACK_MEMORY = 4 * 1024**3
_INT_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


@dataclass(frozen=True)
class _Span:
    """One tile along one axis: input range fed to the network and its blend weights."""

    start: int  # padded input range [start, stop)
    stop: int
    out_start: int  # output range [out_start, out_stop) where the weight is non-zero
    out_stop: int
    weights: np.ndarray  # float32, length out_stop - out_start


def _spans(length: int, tile: int, pad: int, scale: int) -> list[_Span]:
    """Tiles along one axis of ``length`` input pixels, with their linear blend ramps."""
    spans = []
    for core_start in range(0, length, tile):
        core_stop = min(core_start + tile, length)
        start, stop = max(0, core_start - pad), min(length, core_stop + pad)
        centres = np.arange(start * scale, stop * scale, dtype=np.float64) + 0.5
        weights = np.ones_like(centres)
        if pad > 0:
            width = pad * scale  # the ramp spans the central `pad` pixels of the overlap
            if core_start > 0:
                rise = (centres - (core_start - pad / 2) * scale) / width
                weights = np.minimum(weights, np.clip(rise, 0.0, 1.0))
            if core_stop < length:
                fall = ((core_stop + pad / 2) * scale - centres) / width
                weights = np.minimum(weights, np.clip(fall, 0.0, 1.0))
        nonzero = np.flatnonzero(weights)
        first, last = int(nonzero[0]), int(nonzero[-1]) + 1
        spans.append(
            _Span(
                start,
                stop,
                start * scale + first,
                start * scale + last,
                weights[first:last].astype(np.float32),
            )
        )
    return spans


def _weight_sum(spans: list[_Span], out_len: int) -> np.ndarray:
    """Accumulated weight of every output position along one axis."""
    total = np.zeros(out_len, dtype=np.float32)
    for span in spans:
        total[span.out_start : span.out_stop] += span.weights
    return total


def _pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Grow [1, C, h, w] at the bottom and right by reflection up to multiples of `multiple`."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)


def _run_tile(forward: Forward, tile: np.ndarray, scale: int, size_multiple: int) -> np.ndarray:
    """Upscale one (h, w, C) integer tile -> float32 (h*scale, w*scale, C) view."""
    h, w, channels = tile.shape
    peak = np.float32(np.iinfo(tile.dtype).max)
    x = (tile.transpose(2, 0, 1).astype(np.float32) / peak)[None]
    if size_multiple > 1:
        x = _pad_to_multiple(x, size_multiple)
    y = np.asarray(forward(np.ascontiguousarray(x)))
    expected = (1, channels, x.shape[2] * scale, x.shape[3] * scale)
    if tuple(y.shape) != expected:
        raise ValueError(
            f"forward returned shape {tuple(y.shape)} for input {tuple(x.shape)}, "
            f"expected {expected}"
        )
    return y[0, :, : h * scale, : w * scale].astype(np.float32, copy=False).transpose(1, 2, 0)


def _quantize_into(block: np.ndarray, out: np.ndarray) -> None:
    """Round float32 ``block`` in [0, 1] (in place) into the integer array ``out``."""
    np.clip(block, 0.0, 1.0, out=block)
    block *= np.float32(np.iinfo(out.dtype).max)
    np.rint(block, out=block)
    np.copyto(out, block, casting="unsafe")


def tiled_upscale(
    source: np.ndarray,
    forward: Forward,
    scale: int,
    tile: int | None,
    pad: int,
    out_dtype: np.dtype | type | None = None,
    size_multiple: int = 1,
    progress: Callable[[int, int], None] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Upscale (H, W, C) uint8/uint16 ``source`` by ``scale`` tile by tile, without seams.

    ``tile`` is the core tile side in input pixels (None or 0: the whole image as one
    tile), ``pad`` the context added on each side. Tiles whose sides are not multiples of
    ``size_multiple`` are reflect-padded before ``forward`` and cropped after. Returns an
    (H*scale, W*scale, C) array of ``out_dtype`` (default ``source.dtype``), rounded and
    clamped. ``progress(done, total)`` is called after every tile. ``out``, if given, is
    the (possibly strided) array to fill instead of allocating one.
    """
    rows = tiled_rows(source, forward, scale, tile, pad, out_dtype, size_multiple, progress)
    return collect(rows, out)


def tiled_rows(
    source: np.ndarray,
    forward: Forward,
    scale: int,
    tile: int | None,
    pad: int,
    out_dtype: np.dtype | type | None = None,
    size_multiple: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> RowStream:
    """`tiled_upscale` as a stream of finished output rows: each band of tiles, once
    blended, is handed on as a block of rounded rows (the rows no later band touches), so a
    writer can encode them while the next band runs. Arguments are checked at once; the
    work starts when the stream is iterated."""
    if not isinstance(source, np.ndarray) or source.ndim != 3:
        shape = getattr(source, "shape", None)
        raise ValueError(f"source must be an (H, W, C) array, got shape {shape}")
    if source.dtype not in _INT_DTYPES:
        raise ValueError(f"source must be uint8 or uint16, got {source.dtype}")
    out_dt = source.dtype if out_dtype is None else np.dtype(out_dtype)
    if out_dt not in _INT_DTYPES:
        raise ValueError(f"out_dtype must be uint8 or uint16, got {out_dt}")
    height, width, channels = source.shape
    if height == 0 or width == 0 or channels == 0:
        raise ValueError(f"source must not be empty, got shape {source.shape}")
    for name, value, low in (
        ("scale", scale, 1),
        ("pad", pad, 0),
        ("size_multiple", size_multiple, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if tile is None:
        tile = 0
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < 0:
        raise ValueError(f"tile must be None or an integer >= 0, got {tile!r}")
    scale, pad, size_multiple = int(scale), int(pad), int(size_multiple)
    side = int(tile) or max(height, width)
    blocks = _blend_bands(source, forward, scale, side, pad, out_dt, size_multiple, progress)
    return RowStream(height * scale, width * scale, channels, out_dt, blocks)


def tile_count(height: int, width: int, tile: int | None) -> int:
    """How many tiles `tiled_rows` runs for an image of this size."""
    side = tile or max(height, width)
    return math.ceil(height / side) * math.ceil(width / side)


def band_rows(height: int, width: int, tile: int | None, pad: int, scale: int) -> int:
    """Rows of the float32 band buffer for this image (the whole output with one tile)."""
    spans = _spans(height, tile or max(height, width), pad, scale)
    return max(span.out_stop - span.out_start for span in spans)


def _blend_bands(
    source: np.ndarray,
    forward: Forward,
    scale: int,
    tile: int,
    pad: int,
    out_dtype: np.dtype,
    size_multiple: int,
    progress: Callable[[int, int], None] | None,
) -> Iterator[np.ndarray]:
    height, width, channels = source.shape
    rows = _spans(height, tile, pad, scale)
    cols = _spans(width, tile, pad, scale)
    row_sum = _weight_sum(rows, height * scale)
    col_sum = _weight_sum(cols, width * scale)[None, :, None]
    total = len(rows) * len(cols)

    if total == 1:  # weights all 1: no band, no blend (the same result, a copy less)
        finished = np.empty((height * scale, width * scale, channels), dtype=out_dtype)
        _quantize_into(_run_tile(forward, source, scale, size_multiple), finished)
        if progress is not None:
            progress(1, 1)
        yield finished
        return
    band_height = max(r.out_stop - r.out_start for r in rows)
    band = np.empty((band_height, width * scale, channels), dtype=np.float32)
    carried = 0  # leading rows of `band` holding overlap from the previous band
    done = 0
    for index, row in enumerate(rows):
        n = row.out_stop - row.out_start
        band[carried:n] = 0.0
        r0 = row.out_start - row.start * scale
        for col in cols:
            y = _run_tile(
                forward,
                source[row.start : row.stop, col.start : col.stop],
                scale,
                size_multiple,
            )
            c0 = col.out_start - col.start * scale
            y = y[r0 : r0 + n, c0 : c0 + (col.out_stop - col.out_start)]
            weights = np.outer(row.weights, col.weights)[..., None]
            band[:n, col.out_start : col.out_stop] += y * weights
            done += 1
            if progress is not None:
                progress(done, total)
        # Rows before the next band's first row are final: normalise and round them.
        final = rows[index + 1].out_start if index + 1 < len(rows) else row.out_stop
        k = final - row.out_start
        block = band[:k]
        block /= row_sum[row.out_start : final, None, None]
        block /= col_sum
        finished = np.empty(block.shape, dtype=out_dtype)
        _quantize_into(block, finished)
        carried = n - k
        band[:carried] = band[k:n]
        yield finished


@dataclass(frozen=True)
class TileGrid:
    """The tiles of an image of ``height x width`` input pixels: each one's padded input
    box and, along each axis, the blend weights `tiled_upscale` gives them."""

    height: int
    width: int
    scale: int
    pad: int
    rows: tuple[_Span, ...]
    cols: tuple[_Span, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)

    def input_box(self, row: int, col: int) -> tuple[slice, slice]:
        """The input pixels the network sees for tile (row, col): its core and context."""
        rows, cols = self.rows[row], self.cols[col]
        return slice(rows.start, rows.stop), slice(cols.start, cols.stop)


def tile_grid(height: int, width: int, scale: int, tile: int, pad: int) -> TileGrid:
    """The grid of ``tile x tile`` core tiles with ``pad`` context, as `tiled_upscale` cuts
    an image (``tile`` 0: one tile)."""
    if tile < 0 or pad < 0 or scale < 1 or height < 1 or width < 1:
        raise ValueError(f"bad tile grid {height}x{width} x{scale} tile {tile} pad {pad}")
    tile = tile or max(height, width)
    return TileGrid(
        height,
        width,
        scale,
        pad,
        tuple(_spans(height, tile, pad, scale)),
        tuple(_spans(width, tile, pad, scale)),
    )


Block = tuple[int, int, int, int]
"""Tiles [row0, row1) x [col0, col1) of a `TileGrid`, upscaled by one network call."""


def changed_blocks(changed: np.ndarray, grid: TileGrid, max_side: int = 0) -> list[Block]:
    """The True tiles of the boolean ``changed`` (one per tile of ``grid``) grouped into
    rectangular blocks: the runs of changed tiles along each row of tiles, each joined with
    the same run in the rows below. No block's padded input is longer than ``max_side``
    input pixels on either side (0: no limit), except a single tile that is already."""
    if changed.shape != grid.shape:
        raise ValueError(f"changed must have the grid's shape {grid.shape}, got {changed.shape}")

    def fits(first: _Span, last: _Span) -> bool:
        return max_side <= 0 or last.stop - first.start <= max_side

    blocks: list[Block] = []
    open_blocks: dict[tuple[int, int], int] = {}  # (col0, col1) -> row0
    for row in range(grid.shape[0]):
        runs = []
        col = 0
        while col < grid.shape[1]:
            if not changed[row, col]:
                col += 1
                continue
            start = col
            col += 1
            while col < grid.shape[1] and changed[row, col]:
                if not fits(grid.cols[start], grid.cols[col]):
                    break
                col += 1
            runs.append((start, col))
        still_open = {}
        for run in runs:
            first_row = open_blocks.pop(run, row)
            if not fits(grid.rows[first_row], grid.rows[row]):
                blocks.append((first_row, row, *run))
                first_row = row
            still_open[run] = first_row
        blocks.extend((first_row, row, *run) for run, first_row in open_blocks.items())
        open_blocks = still_open
    blocks.extend((first_row, grid.shape[0], *run) for run, first_row in open_blocks.items())
    return blocks


def retile(
    source: np.ndarray,
    previous: np.ndarray,
    forward: Forward,
    grid: TileGrid,
    blocks: Sequence[Block],
    size_multiple: int = 1,
) -> np.ndarray:
    """``previous`` (an earlier image's output, same shape and dtype) with the tiles of
    ``blocks`` upscaled anew from ``source`` and blended in as `tiled_upscale` blends its
    tiles (see the module notes). ``previous`` is left as it is; a new array is returned.

    Memory: the band of `tiled_upscale` plus the float32 outputs of the blocks that span
    the current row of tiles."""
    shape = (grid.height * grid.scale, grid.width * grid.scale, source.shape[2])
    if source.shape[:2] != (grid.height, grid.width) or previous.shape != shape:
        raise ValueError(f"source {source.shape} and previous {previous.shape} do not fit the grid")
    scale, rows, cols = grid.scale, grid.rows, grid.cols
    peak = np.float32(np.iinfo(previous.dtype).max)
    row_sum = _weight_sum(list(rows), shape[0])
    col_sum = _weight_sum(list(cols), shape[1])[None, :, None]
    starting: dict[int, list[Block]] = {}
    for block in blocks:
        starting.setdefault(block[0], []).append(block)
    live: list[tuple[Block, np.ndarray]] = []  # blocks spanning this row, with their output
    out = np.empty_like(previous)
    band = np.empty((max(r.out_stop - r.out_start for r in rows), *shape[1:]), np.float32)
    carried = 0  # leading rows of `band` holding overlap from the previous band
    carried_change = False  # whether those rows hold any change
    for index, row in enumerate(rows):
        n = row.out_stop - row.out_start
        band[carried:n] = 0.0
        for r0, r1, c0, c1 in starting.get(index, []):
            tile = source[rows[r0].start : rows[r1 - 1].stop, cols[c0].start : cols[c1 - 1].stop]
            live.append(((r0, r1, c0, c1), _run_tile(forward, tile, scale, size_multiple)))
        changed = carried_change
        for (r0, _r1, c0, c1), y in live:
            top = row.out_start - rows[r0].start * scale
            for col in cols[c0:c1]:
                left = col.out_start - cols[c0].start * scale
                new = y[top : top + n, left : left + col.out_stop - col.out_start]
                kept = previous[row.out_start : row.out_stop, col.out_start : col.out_stop]
                weights = np.outer(row.weights, col.weights)[..., None]
                band[:n, col.out_start : col.out_stop] += weights * (new - kept / peak)
            changed = True
        live = [(block, y) for block, y in live if block[1] > index + 1]
        final = rows[index + 1].out_start if index + 1 < len(rows) else row.out_stop
        k = final - row.out_start
        if changed:
            block = band[:k]
            block /= row_sum[row.out_start : final, None, None]
            block /= col_sum
            block += previous[row.out_start : final] / peak
            _quantize_into(block, out[row.out_start : final])
        else:
            out[row.out_start : final] = previous[row.out_start : final]
        carried = n - k
        band[:carried] = band[k:n]
        carried_change = changed and carried > 0
    return out


def auto_tile_size(
    bytes_per_input_pixel: float,
    budget_bytes: int,
    candidates: Sequence[int] = DEFAULT_TILE_CANDIDATES,
    bytes_per_tile_row: float = 0.0,
) -> int:
    """Largest candidate tile side whose ``side**2 * bytes_per_input_pixel`` (the tile's
    activations) plus ``side * bytes_per_tile_row`` (the band of output rows one row of
    tiles fills) fits the budget. Falls back to the smallest candidate when none fits.
    """
    if not candidates:
        raise ValueError("candidates must not be empty")
    if bytes_per_input_pixel <= 0:
        raise ValueError(f"bytes_per_input_pixel must be positive, got {bytes_per_input_pixel}")
    fitting = [
        c
        for c in candidates
        if c * c * bytes_per_input_pixel + c * bytes_per_tile_row <= budget_bytes
    ]
    return max(fitting) if fitting else min(candidates)


def available_memory_bytes(device: object) -> int:
    """Free memory usable for tiles on ``device``, in bytes (a conservative 4 GiB if unknown).

    CUDA: free device memory. CPU: ``MemAvailable`` from /proc/meminfo, else available
    physical pages from ``os.sysconf``.
    """
    kind = str(device).split(":")[0]
    if kind == "cuda":
        import torch  # only CUDA devices need it, and they come from torch anyway

        free, _total = torch.cuda.mem_get_info(torch.device(str(device)))
        return int(free)
    if kind != "cpu":
        return _FALLBACK_MEMORY
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_MEMORY
    if pages > 0 and page_size > 0:
        return int(pages) * int(page_size)
    return _FALLBACK_MEMORY
