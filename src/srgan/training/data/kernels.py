"""Blur kernels of the Real-ESRGAN degradation, as float64 torch tensors (sum 1).

Coordinates: a kernel is [size, size] with rows = y (down) and columns = x (right),
centred on the middle pixel. `sigma_x` is the spread along the direction at angle
`theta` from the x axis, turning towards +y (clockwise on screen, where y points
down); `sigma_y` is the spread across that direction.

Families (Wang et al. 2021, section 3.1): Gaussian exp(-q/2), generalized Gaussian
exp(-q^beta / 2), plateau 1 / (1 + q^beta), with q = the Mahalanobis form of the
offset; and the circular low-pass "sinc" kernel, whose spectrum is 1 inside the radius
`cutoff` (radians per pixel) and 0 outside, up to the truncation to `size` taps.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from srgan.training.data.degradation_config import KernelKind, StageConfig

_DTYPE = torch.float64


def _offsets(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) offsets from the centre, each [size, size]."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, not {size}")
    axis = torch.arange(size, dtype=_DTYPE) - (size - 1) / 2
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return x, y


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """x^T Sigma^-1 x with Sigma = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T."""
    x, y = _offsets(size)
    cos, sin = math.cos(theta), math.sin(theta)
    along = cos * x + sin * y
    across = -sin * x + cos * y
    return (along / sigma_x) ** 2 + (across / sigma_y) ** 2


def _normalised(kernel: torch.Tensor) -> torch.Tensor:
    return kernel / kernel.sum()


def gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0
) -> torch.Tensor:
    """Isotropic (sigma_y None) or anisotropic Gaussian."""
    q = _quadratic_form(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta)
    return _normalised(torch.exp(-0.5 * q))


def generalized_gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float | None, theta: float, beta: float
) -> torch.Tensor:
    """exp(-q^beta / 2): beta = 1 is the Gaussian, below 1 heavier tails, above flatter."""
    q = _quadratic_form(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta)
    return _normalised(torch.exp(-0.5 * q.pow(beta)))


def plateau_kernel(
    size: int, sigma_x: float, sigma_y: float | None, theta: float, beta: float
) -> torch.Tensor:
    """1 / (1 + q^beta): a flat top with a polynomial fall-off."""
    q = _quadratic_form(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta)
    return _normalised(1.0 / (1.0 + q.pow(beta)))


def sinc_kernel(size: int, cutoff: float) -> torch.Tensor:
    """The circular low-pass filter of radius `cutoff` (0 < cutoff <= pi): the inverse
    Fourier transform of the disc, cutoff * J1(cutoff r) / (2 pi r), limit cutoff^2 / (4 pi)
    at r = 0."""
    if not 0 < cutoff <= math.pi:
        raise ValueError(f"sinc cutoff must be in (0, pi], not {cutoff}")
    x, y = _offsets(size)
    r = torch.sqrt(x * x + y * y)
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe_r) / (2 * math.pi * safe_r)
    kernel = torch.where(r > 0, kernel, torch.full_like(r, cutoff**2 / (4 * math.pi)))
    return _normalised(kernel)


def pulse_kernel(size: int) -> torch.Tensor:
    """The identity: filtering with it changes nothing."""
    kernel = torch.zeros(size, size, dtype=_DTYPE)
    kernel[size // 2, size // 2] = 1.0
    return kernel


def pad_kernel(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad a centred odd kernel to [size, size]."""
    pad = (size - kernel.shape[-1]) // 2
    if pad < 0 or kernel.shape[-1] % 2 == 0 or size % 2 == 0:
        raise ValueError(f"cannot pad a {kernel.shape[-1]}-tap kernel to {size}")
    return torch.nn.functional.pad(kernel, (pad, pad, pad, pad))


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _shape_beta(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Real-ESRGAN's draw: half the time below 1, half above, when the range holds 1."""
    low, high = bounds
    if low <= 1 <= high:
        return _uniform(rng, (low, 1.0) if rng.uniform() < 0.5 else (1.0, high))
    return _uniform(rng, bounds)


def odd_size(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """An odd size drawn uniformly from the odd numbers in [low, high]."""
    low, high = bounds
    return int(low + 2 * rng.integers(0, (high - low) // 2 + 1))


def random_sinc_cutoff(rng: np.random.Generator, size: int) -> float:
    """Real-ESRGAN's cutoffs: [pi/3, pi] for kernels under 13 taps, else [pi/5, pi]."""
    return _uniform(rng, (math.pi / 3 if size < 13 else math.pi / 5, math.pi))


def mixed_kernel(
    rng: np.random.Generator, kind: KernelKind, size: int, stage: StageConfig
) -> torch.Tensor:
    """A kernel of the named family with parameters drawn from the stage's ranges."""
    sigma_x = _uniform(rng, stage.blur_sigma)
    isotropic = kind.endswith("iso") and not kind.endswith("aniso")
    sigma_y: float | None = None
    theta = 0.0
    if not isotropic:
        sigma_y = _uniform(rng, stage.blur_sigma)
        theta = _uniform(rng, (-math.pi, math.pi))
    if kind in ("iso", "aniso"):
        return gaussian_kernel(size, sigma_x, sigma_y, theta)
    if kind.startswith("generalized"):
        beta = _shape_beta(rng, stage.betag_range)
        return generalized_gaussian_kernel(size, sigma_x, sigma_y, theta, beta)
    beta = _shape_beta(rng, stage.betap_range)
    return plateau_kernel(size, sigma_x, sigma_y, theta, beta)


def random_blur_kernel(rng: np.random.Generator, stage: StageConfig) -> torch.Tensor:
    """One blur kernel of the stage, zero-padded to its largest kernel size."""
    size = odd_size(rng, stage.kernel_sizes)
    if rng.uniform() < stage.sinc_prob:
        kernel = sinc_kernel(size, random_sinc_cutoff(rng, size))
    else:
        weights = np.asarray(stage.kernel_prob.weights())
        kinds = stage.kernel_prob.kinds()
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        kernel = mixed_kernel(rng, kind, size, stage)
    return pad_kernel(kernel, stage.kernel_sizes[1])
