"""PSNR and SSIM with the conventions of BasicSR and the MATLAB evaluation scripts.

Both metrics evaluate images "as saved": each input in [0, 1] is clamped and quantized
to ``2**bit_depth - 1`` levels, then put on the 0..255 scale in float64. With
``y_channel=True`` an RGB image is reduced to its BT.601 luma
``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` (R, G, B on 0..255, Y not rounded);
a single-channel image is used as is. ``crop_border`` pixels are removed from each side.

Inputs are float tensors of shape [C, H, W] (result: 0-dim tensor) or [N, C, H, W]
(result: shape [N]), with C in {1, 3, 4}. For C == 4 the fourth (alpha) channel is
ignored: only the colour channels are compared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from srgan.imaging.color import rgb_to_y

__all__ = ["psnr", "ssim"]

_SSIM_WIN = 11
_SSIM_SIGMA = 1.5


def _prepare(
    img: torch.Tensor, ref: torch.Tensor, crop_border: int, y_channel: bool, bit_depth: int
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate, quantize, pick channels and crop; returns [N, C', H', W'] float64 0..255."""
    for name, t in (("img", img), ("ref", ref)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a float tensor in [0, 1], got {t.dtype}")
    if img.shape != ref.shape:
        raise ValueError(
            f"img and ref shapes differ: img {tuple(img.shape)} vs ref {tuple(ref.shape)}"
        )
    if img.ndim not in (3, 4):
        raise ValueError(f"expected shape [C, H, W] or [N, C, H, W], got {tuple(img.shape)}")
    channels = img.shape[-3]
    if channels not in (1, 3, 4):
        raise ValueError(f"expected 1, 3 or 4 channels, got shape {tuple(img.shape)}")
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, int) or not 1 <= bit_depth <= 32:
        raise ValueError(f"bit_depth must be an integer in 1..32, got {bit_depth!r}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    h, w = img.shape[-2], img.shape[-1]
    if 2 * crop_border >= h or 2 * crop_border >= w:
        raise ValueError(f"crop_border={crop_border} leaves nothing of shape {tuple(img.shape)}")

    batched = img.ndim == 4
    levels = float(2**bit_depth - 1)

    def as_saved(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device=img.device, dtype=torch.float64)
        if not batched:
            t = t.unsqueeze(0)
        t = t[:, :3]  # drop alpha
        q = torch.round(t.clamp(0.0, 1.0) * levels) / levels
        q = q * 255.0
        if y_channel and q.shape[1] == 3:
            q = rgb_to_y(q / 255.0) * 255.0
        if crop_border:
            q = q[..., crop_border:-crop_border, crop_border:-crop_border]
        return q

    return as_saved(img), as_saved(ref), batched


def psnr(
    img: torch.Tensor,
    ref: torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = True,
    bit_depth: int = 8,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(255^2 / MSE)``; +inf for identical images.

    The MSE is taken over all remaining pixels and channels of each image.
    """
    a, b, batched = _prepare(img, ref, crop_border, y_channel, bit_depth)
    mse = (a - b).square().mean(dim=(1, 2, 3))
    out = 10.0 * torch.log10((255.0**2) / mse)
    return out if batched else out[0]


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    """Normalised 1-D Gaussian (11 taps, sigma 1.5); the 2-D window is its outer product."""
    r = (_SSIM_WIN - 1) // 2
    coords = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
    g = torch.exp(-(coords**2) / (2.0 * _SSIM_SIGMA**2))
    return g / g.sum()


def ssim(
    img: torch.Tensor,
    ref: torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = True,
    bit_depth: int = 8,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) as in BasicSR / MATLAB ``ssim_index``.

    11x11 Gaussian window (sigma 1.5), valid filtering (no padding),
    C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2; the SSIM map is averaged per channel and
    the channel means are averaged.
    """
    a, b, batched = _prepare(img, ref, crop_border, y_channel, bit_depth)
    if a.shape[-2] < _SSIM_WIN or a.shape[-1] < _SSIM_WIN:
        raise ValueError(
            f"SSIM needs at least {_SSIM_WIN}x{_SSIM_WIN} pixels after cropping, "
            f"got {tuple(a.shape[-2:])}"
        )
    c = a.shape[1]
    g = _gaussian_taps(a.device)
    win_v = g.reshape(1, 1, _SSIM_WIN, 1).expand(c, 1, _SSIM_WIN, 1).contiguous()
    win_h = g.reshape(1, 1, 1, _SSIM_WIN).expand(c, 1, 1, _SSIM_WIN).contiguous()
    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2

    def filt(t: torch.Tensor) -> torch.Tensor:
        # Separable 'valid' Gaussian filtering: columns, then rows (same as the 2-D window).
        return F.conv2d(F.conv2d(t, win_v, groups=c), win_h, groups=c)

    mu_a = filt(a)
    mu_b = filt(b)
    mu_a2 = mu_a * mu_a
    mu_b2 = mu_b * mu_b
    mu_ab = mu_a * mu_b
    var_a = filt(a * a) - mu_a2
    var_b = filt(b * b) - mu_b2
    cov_ab = filt(a * b) - mu_ab
    num = (2.0 * mu_ab + c1) * (2.0 * cov_ab + c2)
    den = (mu_a2 + mu_b2 + c1) * (var_a + var_b + c2)
    out = (num / den).mean(dim=(2, 3)).mean(dim=1)
    return out if batched else out[0]
