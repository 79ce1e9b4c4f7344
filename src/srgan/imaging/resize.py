"""MATLAB-compatible bicubic ``imresize`` in torch.

Reproduces MATLAB's ``imresize(img, scale)`` with the default ``'bicubic'`` method and
antialiasing when shrinking: Keys cubic kernel (a = -0.5), symmetric (mirror) padding
at the borders, and the dimension with the smaller scale factor resized first.

Each dimension is resized with a small table of tap indices and weights
(``out_len x taps``); the image is never multiplied by a dense ``out x in`` matrix, so
peak memory stays close to the size of the output.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import torch

from srgan.imaging.rows import RowStream
from srgan.imaging.sizes import check_positive_real, output_size

__all__ = ["imresize", "output_size", "resize_rows"]

_KERNEL_WIDTH = 4.0
_FLOAT_DTYPES = (torch.float32, torch.float64)


def _cubic(t: torch.Tensor) -> torch.Tensor:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), support [-2, 2]."""
    a = t.abs()
    a2 = a * a
    a3 = a2 * a
    inner = 1.5 * a3 - 2.5 * a2 + 1.0
    outer = -0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0
    zero = torch.zeros_like(a)
    return torch.where(a <= 1.0, inner, torch.where(a <= 2.0, outer, zero))


@lru_cache(maxsize=256)
def _contributions(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tap indices (0-based, int64) and float64 weights, both ``[out_len, taps]``, on CPU.

    Follows MATLAB's ``contributions``: mirror padding, weights normalised to sum 1 per
    output, tap columns that are zero for every output dropped.
    """
    # The tables are cached: build them as normal tensors even when the first caller runs
    # under torch.inference_mode(), or later autograd use would fail.
    with torch.inference_mode(False), torch.no_grad():
        return _build_contributions(in_len, out_len, scale, antialias)


def _build_contributions(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uncached body of ``_contributions``."""
    shrink_aa = scale < 1.0 and antialias
    width = _KERNEL_WIDTH / scale if shrink_aa else _KERNEL_WIDTH

    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    ind = left.unsqueeze(1) + torch.arange(taps, dtype=torch.float64).unsqueeze(0)
    dist = u.unsqueeze(1) - ind
    weights = scale * _cubic(scale * dist) if shrink_aa else _cubic(dist)
    weights = weights / weights.sum(dim=1, keepdim=True)

    # Symmetric padding: 1-based aux = [1..n, n..1]; here stored 0-based.
    aux = torch.cat([torch.arange(in_len, dtype=torch.int64), torch.arange(in_len - 1, -1, -1)])
    ind0 = torch.remainder(ind.to(torch.int64) - 1, 2 * in_len)
    ind0 = aux[ind0]

    keep = (weights != 0).any(dim=0)
    return ind0[:, keep].contiguous(), weights[:, keep].contiguous()


def _resize_dim(
    x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool
) -> torch.Tensor:
    """Resize ``x`` along one dimension by accumulating weighted tap slices."""
    idx_cpu, w_cpu = _contributions(int(x.shape[dim]), out_len, scale, antialias)
    return _accumulate_taps(x, dim, idx_cpu.to(x.device), w_cpu.to(device=x.device, dtype=x.dtype))


def _accumulate_taps(x: torch.Tensor, dim: int, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum over k of ``x`` at indices ``idx[:, k]`` along ``dim``, times ``w[:, k]``."""
    bshape = [idx.shape[0]] + [1] * (x.ndim - 1 - dim)
    out: torch.Tensor | None = None
    for k in range(idx.shape[1]):
        term = x.index_select(dim, idx[:, k])
        wk = w[:, k].reshape(bshape)
        if out is None:
            out = term.mul_(wk)
        else:
            out.addcmul_(term, wk)
    assert out is not None  # at least one tap always carries weight
    return out


def _target(
    in_h: int, in_w: int, scale: float | None, size: tuple[int, int] | None
) -> tuple[int, int, float, float]:
    """(out_h, out_w, scale_h, scale_w) for exactly one of `scale` or `size`."""
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if scale is not None:
        s = check_positive_real(scale, "scale")
        out_h, out_w = output_size(in_h, in_w, s)
        return out_h, out_w, s, s
    assert size is not None
    if len(size) != 2:
        raise ValueError(f"size must be (out_h, out_w), got {size!r}")
    for n in size:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(f"size must hold two positive integers, got {size!r}")
    out_h, out_w = int(size[0]), int(size[1])
    return out_h, out_w, out_h / in_h, out_w / in_w


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Bicubic resize of the last two dimensions of ``x`` ([..., H, W]) like MATLAB.

    Give exactly one of ``scale`` (output = ``ceil(in * scale)``) or ``size``
    (``(out_h, out_w)``; the per-dimension scale is then ``out / in``). ``x`` must be
    float32 or float64 on any device; the output has the same dtype and device and is
    neither clamped nor rounded. ``antialias`` widens the kernel when shrinking, as
    MATLAB does by default.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"x must have shape [..., H, W], got {tuple(x.shape)}")
    in_h, in_w = int(x.shape[-2]), int(x.shape[-1])
    if in_h <= 0 or in_w <= 0:
        raise ValueError(f"x must have non-empty H and W, got {tuple(x.shape)}")
    out_h, out_w, scale_h, scale_w = _target(in_h, in_w, scale, size)

    dim_h, dim_w = x.ndim - 2, x.ndim - 1
    # MATLAB resizes the dimension with the smaller scale first; ties: height first.
    passes = [(dim_h, out_h, scale_h), (dim_w, out_w, scale_w)]
    if scale_w < scale_h:
        passes.reverse()
    out = x
    for dim, out_len, s in passes:
        out = _resize_dim(out, dim, out_len, s, bool(antialias))
    return out


def resize_rows(
    rows: RowStream,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> RowStream:
    """`imresize` of a stream of integer rows, as a stream: the same pixels as resizing
    the whole image (the same operations on the same values, in the same order), while
    only the input rows that the current output rows need are held, in float32.

    The result is clamped and rounded to the input's dtype, as `Image.from_tensor` does.
    """
    if rows.height <= 0 or rows.width <= 0:
        raise ValueError(f"rows must have non-empty H and W, got {rows.shape}")
    out_h, out_w, scale_h, scale_w = _target(rows.height, rows.width, scale, size)
    blocks = _resized_blocks(rows, out_h, out_w, scale_h, scale_w, bool(antialias))
    return RowStream(out_h, out_w, rows.channels, rows.dtype, blocks)


_RESIZE_CHUNK_VALUES = 1 << 19  # output values computed at a time (2 MB of float32)


def _resized_blocks(
    rows: RowStream, out_h: int, out_w: int, scale_h: float, scale_w: float, antialias: bool
) -> Iterator[np.ndarray]:
    from srgan.imaging.io import pixels_to_tensor, tensor_to_pixels

    bit_depth = np.dtype(rows.dtype).itemsize * 8
    width_first = scale_w < scale_h  # MATLAB: the smaller scale first; ties: height first
    idx_cpu, w_cpu = _contributions(rows.height, out_h, scale_h, antialias)
    idx = idx_cpu.numpy()
    last_needed = np.maximum.accumulate(idx.max(axis=1))  # input rows that rows <= r need
    first_needed = np.minimum.accumulate(idx.min(axis=1)[::-1])[::-1]  # ... rows >= r need

    def across(x: torch.Tensor) -> torch.Tensor:
        return _resize_dim(x, 2, out_w, scale_w, antialias)

    taps_h = idx.shape[1]
    source = _split_blocks(
        rows,
        max(8, math.ceil(_RESIZE_CHUNK_VALUES / max(1, out_w * rows.channels) / scale_h) + taps_h),
    )
    window = torch.empty((rows.channels, 0, out_w if width_first else rows.width))
    window_start = 0  # input row of window[:, 0]
    step = max(1, _RESIZE_CHUNK_VALUES // max(1, out_w * rows.channels))
    with torch.inference_mode():
        for start in range(0, out_h, step):
            stop = min(out_h, start + step)
            while window_start + window.shape[1] <= last_needed[stop - 1]:
                block = pixels_to_tensor(next(source))
                window = torch.cat([window, across(block) if width_first else block], dim=1)
            taps = torch.from_numpy(idx[start:stop] - window_start)
            weights = w_cpu[start:stop].to(window.dtype)
            out = _accumulate_taps(window, 1, taps, weights)
            if not width_first:
                out = across(out)
            yield tensor_to_pixels(out.clamp_(0, 1), bit_depth)
            if stop < out_h:  # drop the rows no later output row needs
                drop = int(first_needed[stop]) - window_start
                if drop > 0:
                    window = window[:, drop:]
                    window_start += drop


def _split_blocks(rows: RowStream, most: int) -> Iterator[np.ndarray]:
    """The blocks of `rows`, cut into views of at most `most` rows."""
    for block in rows:
        for start in range(0, block.shape[0], most):
            yield block[start : start + most]
