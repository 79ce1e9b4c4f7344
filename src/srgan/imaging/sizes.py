"""Output sizes of MATLAB's imresize, without PyTorch (the memory plan needs them before
any backend is chosen)."""

from __future__ import annotations

import math
import numbers

__all__ = ["check_positive_real", "output_size"]


def check_positive_real(value: object, name: str) -> float:
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
    s = check_positive_real(scale, "scale")
    for name, n in (("in_h", in_h), ("in_w", in_w)):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return math.ceil(int(in_h) * s), math.ceil(int(in_w) * s)
