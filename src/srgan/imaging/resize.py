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
from functools import lru_cache

import torch

__all__ = ["imresize", "output_size"]

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
    idx = idx_cpu.to(x.device)
    w = w_cpu.to(device=x.device, dtype=x.dtype)
    bshape = [out_len] + [1] * (x.ndim - 1 - dim)
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


def _check_positive_real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def output_size(in_h: int, in_w: int, scale: float) -> tuple[int, int]:
    """Output ``(height, width)`` MATLAB's ``imresize`` gives for ``scale``: ``ceil(in * scale)``.

    The product is taken in double precision exactly as MATLAB does, with no epsilon
    guard; so e.g. ``50 * 1.1 = 55.000000000000007`` gives 56, as in MATLAB.
    """
    s = _check_positive_real(scale, "scale")
    for name, n in (("in_h", in_h), ("in_w", in_w)):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return math.ceil(int(in_h) * s), math.ceil(int(in_w) * s)


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
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")

    if scale is not None:
        s = _check_positive_real(scale, "scale")
        out_h, out_w = output_size(in_h, in_w, s)
        scale_h = scale_w = s
    else:
        assert size is not None
        if len(size) != 2:
            raise ValueError(f"size must be (out_h, out_w), got {size!r}")
        for n in size:
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
                raise ValueError(f"size must hold two positive integers, got {size!r}")
        out_h, out_w = int(size[0]), int(size[1])
        scale_h, scale_w = out_h / in_h, out_w / in_w

    dim_h, dim_w = x.ndim - 2, x.ndim - 1
    # MATLAB resizes the dimension with the smaller scale first; ties: height first.
    passes = [(dim_h, out_h, scale_h), (dim_w, out_w, scale_w)]
    if scale_w < scale_h:
        passes.reverse()
    out = x
    for dim, out_len, s in passes:
        out = _resize_dim(out, dim, out_len, s, bool(antialias))
    return out
