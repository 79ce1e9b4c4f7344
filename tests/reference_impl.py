"""Independent float64 NumPy reference implementations used by the tests.

Written from the algorithm definitions (MATLAB ``imresize`` bicubic, MATLAB/BasicSR
PSNR and SSIM) and deliberately structured differently from the torch code in
``srgan``: explicit loops over output positions, an explicit mirror function, no
index/weight tables, and SSIM windows summed from shifted slices.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ref_imresize", "ref_psnr", "ref_rgb_to_y", "ref_ssim"]


def _cubic(t: float) -> float:
    """Keys cubic kernel, a = -0.5."""
    t = abs(t)
    if t <= 1.0:
        return 1.5 * t**3 - 2.5 * t**2 + 1.0
    if t <= 2.0:
        return -0.5 * t**3 + 2.5 * t**2 - 4.0 * t + 2.0
    return 0.0


def _mirror(j: int, n: int) -> int:
    """Map a 1-based index onto 1..n by symmetric reflection (period 2n, edges repeated)."""
    r = (j - 1) % (2 * n)  # 0 .. 2n-1
    return r + 1 if r < n else 2 * n - r


def _resize_axis0(a: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """Resize along axis 0, looping over output positions; other axes are vectorised."""
    n = a.shape[0]
    out = np.empty((out_len, *a.shape[1:]), dtype=np.float64)
    antialias = scale < 1.0
    width = 4.0 / scale if antialias else 4.0
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1.0 - 1.0 / scale)
        first = math.floor(u - width / 2.0)
        n_taps = math.ceil(width) + 2
        weights: list[float] = []
        sources: list[int] = []
        for j in range(first, first + n_taps):
            d = u - j
            w = scale * _cubic(scale * d) if antialias else _cubic(d)
            if w != 0.0:
                weights.append(w)
                sources.append(_mirror(j, n) - 1)
        total = sum(weights)
        acc = np.zeros(a.shape[1:], dtype=np.float64)
        for w, src in zip(weights, sources, strict=True):
            acc += (w / total) * a[src]
        out[i - 1] = acc
    return out


def ref_imresize(
    img: np.ndarray, scale: float | None, size: tuple[int, int] | None = None
) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` (bicubic, antialiased) for (H, W) or (H, W, C) float64.

    Pass ``scale=None`` and ``size=(out_h, out_w)`` to resize to a given size instead.
    """
    a = np.asarray(img, dtype=np.float64)
    h, w = a.shape[0], a.shape[1]
    if size is None:
        assert scale is not None
        sh = sw = float(scale)
        oh, ow = math.ceil(h * sh), math.ceil(w * sw)
    else:
        oh, ow = size
        sh, sw = oh / h, ow / w
    # Smaller scale first; ties: rows (height) first.
    if sh <= sw:
        a = _resize_axis0(a, oh, sh)
        a = np.swapaxes(_resize_axis0(np.swapaxes(a, 0, 1), ow, sw), 0, 1)
    else:
        a = np.swapaxes(_resize_axis0(np.swapaxes(a, 0, 1), ow, sw), 0, 1)
        a = _resize_axis0(a, oh, sh)
    return np.ascontiguousarray(a)


def ref_rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 (or 0..255) HWC RGB image, float64 HW on the 16..235 scale."""
    rgb = np.asarray(img, dtype=np.float64)[..., :3] / 255.0
    return rgb[..., 0] * 65.481 + rgb[..., 1] * 128.553 + rgb[..., 2] * 24.966 + 16.0


def _channels(img: np.ndarray, crop_border: int, y_channel: bool) -> list[np.ndarray]:
    """List of float64 HW planes on the 0..255 scale, alpha dropped, borders cropped."""
    a = np.asarray(img)
    if a.ndim == 2:
        planes = [a.astype(np.float64)]
    elif y_channel and a.shape[2] >= 3:
        planes = [ref_rgb_to_y(a)]
    else:
        planes = [a[:, :, c].astype(np.float64) for c in range(min(a.shape[2], 3))]
    if crop_border > 0:
        planes = [p[crop_border:-crop_border, crop_border:-crop_border] for p in planes]
    return planes


def ref_psnr(
    a_uint8: np.ndarray, b_uint8: np.ndarray, crop_border: int = 0, y_channel: bool = True
) -> float:
    """PSNR in dB of two uint8 images (HW or HWC), MATLAB/BasicSR conventions."""
    pa = _channels(a_uint8, crop_border, y_channel)
    pb = _channels(b_uint8, crop_border, y_channel)
    sq = 0.0
    count = 0
    for x, y in zip(pa, pb, strict=True):
        d = x - y
        sq += float(np.sum(d * d))
        count += d.size
    mse = sq / count
    if mse == 0.0:
        return math.inf
    return 20.0 * math.log10(255.0) - 10.0 * math.log10(mse)


def _window_mean(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gaussian-weighted local means over every full 11x11 window ('valid' region)."""
    k = len(g)
    oh, ow = p.shape[0] - k + 1, p.shape[1] - k + 1
    acc = np.zeros((oh, ow), dtype=np.float64)
    for dy in range(k):
        for dx in range(k):
            acc += (g[dy] * g[dx]) * p[dy : dy + oh, dx : dx + ow]
    return acc


def ref_ssim(
    a_uint8: np.ndarray, b_uint8: np.ndarray, crop_border: int = 0, y_channel: bool = True
) -> float:
    """SSIM of two uint8 images (HW or HWC), Wang et al. / BasicSR conventions."""
    g = np.array([math.exp(-((t - 5) ** 2) / (2 * 1.5**2)) for t in range(11)])
    g = g / g.sum()
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    scores = []
    for x, y in zip(
        _channels(a_uint8, crop_border, y_channel),
        _channels(b_uint8, crop_border, y_channel),
        strict=True,
    ):
        mx, my = _window_mean(x, g), _window_mean(y, g)
        sxx = _window_mean(x * x, g) - mx * mx
        syy = _window_mean(y * y, g) - my * my
        sxy = _window_mean(x * y, g) - mx * my
        smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        scores.append(float(smap.mean()))
    return float(np.mean(scores))
