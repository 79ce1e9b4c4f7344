"""RGB <-> YCbCr conversion with MATLAB's ``rgb2ycbcr`` conventions (ITU-R BT.601).

Tensors have shape [..., 3, H, W]. RGB is in [0, 1]; YCbCr is returned on the same
[0, 1] scale, with Y in [16/255, 235/255] and Cb, Cr in [16/255, 240/255].
"""

from __future__ import annotations

import torch

__all__ = ["rgb_to_y", "rgb_to_ycbcr", "ycbcr_to_rgb"]

# Normal (non-inference) tensors even if this module is first imported under inference_mode.
with torch.inference_mode(False), torch.no_grad():
    # Rows: Y, Cb, Cr; columns: R, G, B (RGB in [0, 1], output on the 0..255 scale).
    _RGB2YCC_255 = torch.tensor(
        [
            [65.481, 128.553, 24.966],
            [-37.797, -74.203, 112.0],
            [112.0, -93.786, -18.214],
        ],
        dtype=torch.float64,
    )
    _OFFSET_255 = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64)

    _RGB2YCC = _RGB2YCC_255 / 255.0
    _OFFSET = _OFFSET_255 / 255.0
    _YCC2RGB = torch.linalg.inv(_RGB2YCC)


def _check(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape [..., 3, H, W], got {tuple(x.shape)}")


def _apply(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a [k, 3] colour matrix to the channel dimension (-3) of ``x``."""
    m = matrix.to(device=x.device, dtype=x.dtype)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> YCbCr on the [0, 1] scale (MATLAB ``rgb2ycbcr``), unrounded."""
    _check(x)
    off = _OFFSET.to(device=x.device, dtype=x.dtype).reshape(3, 1, 1)
    return _apply(_RGB2YCC, x) + off


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """YCbCr on the [0, 1] scale -> RGB in [0, 1]: the exact inverse of ``rgb_to_ycbcr``.

    The result is not clamped; YCbCr values outside the RGB gamut map outside [0, 1].
    """
    _check(x)
    off = _OFFSET.to(device=x.device, dtype=x.dtype).reshape(3, 1, 1)
    return _apply(_YCC2RGB, x - off)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma Y of RGB in [0, 1], shape [..., 1, H, W], on the [0, 1] scale (16/255..235/255)."""
    _check(x)
    off = _OFFSET[:1].to(device=x.device, dtype=x.dtype).reshape(1, 1, 1)
    return _apply(_RGB2YCC[:1], x) + off
