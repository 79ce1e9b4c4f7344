"""Tests for PSNR / SSIM (BasicSR and MATLAB conventions)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srgan.imaging.resize import imresize
from srgan.metrics import psnr, ssim
from tests.reference_impl import ref_psnr, ref_rgb_to_y, ref_ssim

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

PSNR_TOL = 1e-4
SSIM_TOL = 1e-5


def _t(a: np.ndarray) -> torch.Tensor:
    """uint8 HWC (or HW) -> float32 CHW tensor in [0, 1]."""
    if a.ndim == 2:
        a = a[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float() / 255.0


def _noisy(a: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(a + rng.normal(0, sigma, a.shape)), 0, 255).astype(np.uint8)


def _bicubic_degraded(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[0] // 4 * 4, a.shape[1] // 4 * 4
    x = _t(a[:h, :w]).double()
    lr = imresize(x, scale=1 / 4).clamp(0, 1)
    lr = torch.round(lr * 255) / 255
    sr = imresize(lr, scale=4).clamp(0, 1)
    out = np.zeros_like(a)
    out[:h, :w] = torch.round(sr * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    out[h:, :] = a[h:, :]
    out[:, w:] = a[:, w:]
    return out


def _random_pair(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return a, _noisy(a, 20.0, seed + 1)


@pytest.mark.parametrize("y_channel", [True, False])
@pytest.mark.parametrize("crop_border", [0, 3])
@pytest.mark.parametrize("shape", [(40, 52, 3), (33, 29, 1), (24, 24)])
def test_random_images_match_reference(
    shape: tuple[int, ...], crop_border: int, y_channel: bool
) -> None:
    a, b = _random_pair(shape, seed=len(shape) * 10 + crop_border)
    got_p = float(psnr(_t(a), _t(b), crop_border=crop_border, y_channel=y_channel))
    got_s = float(ssim(_t(a), _t(b), crop_border=crop_border, y_channel=y_channel))
    a_ref, b_ref = (a[:, :, 0], b[:, :, 0]) if a.ndim == 3 and a.shape[2] == 1 else (a, b)
    assert got_p == pytest.approx(ref_psnr(a_ref, b_ref, crop_border, y_channel), abs=PSNR_TOL)
    assert got_s == pytest.approx(ref_ssim(a_ref, b_ref, crop_border, y_channel), abs=SSIM_TOL)


REAL_IMAGES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skdata.astronaut,
    "chelsea": skdata.chelsea,
    "coffee": skdata.coffee,
}


@pytest.mark.parametrize("degrade", ["noise", "bicubic"])
@pytest.mark.parametrize("name", list(REAL_IMAGES))
def test_real_images_match_references(name: str, degrade: str) -> None:
    hr = REAL_IMAGES[name]()
    deg = _noisy(hr, 8.0, seed=3) if degrade == "noise" else _bicubic_degraded(hr)
    crop = 4
    x, ref = _t(deg), _t(hr)

    # Y channel (the SR evaluation protocol).
    p_y = float(psnr(x, ref, crop_border=crop))
    s_y = float(ssim(x, ref, crop_border=crop))
    assert p_y == pytest.approx(ref_psnr(deg, hr, crop, True), abs=PSNR_TOL)
    assert s_y == pytest.approx(ref_ssim(deg, hr, crop, True), abs=SSIM_TOL)
    y_deg = ref_rgb_to_y(deg)[crop:-crop, crop:-crop]
    y_hr = ref_rgb_to_y(hr)[crop:-crop, crop:-crop]
    assert p_y == pytest.approx(peak_signal_noise_ratio(y_hr, y_deg, data_range=255), abs=PSNR_TOL)
    sk_y = structural_similarity(
        y_hr,
        y_deg,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert s_y == pytest.approx(sk_y, abs=SSIM_TOL)

    # All RGB channels, against scikit-image only (the NumPy SSIM reference is slow).
    p_rgb = float(psnr(x, ref, crop_border=crop, y_channel=False))
    s_rgb = float(ssim(x, ref, crop_border=crop, y_channel=False))
    rgb_deg = deg[crop:-crop, crop:-crop].astype(np.float64)
    rgb_hr = hr[crop:-crop, crop:-crop].astype(np.float64)
    assert p_rgb == pytest.approx(ref_psnr(deg, hr, crop, False), abs=PSNR_TOL)
    assert p_rgb == pytest.approx(
        peak_signal_noise_ratio(rgb_hr, rgb_deg, data_range=255), abs=PSNR_TOL
    )
    sk_rgb = structural_similarity(
        rgb_hr,
        rgb_deg,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=2,
    )
    assert s_rgb == pytest.approx(sk_rgb, abs=SSIM_TOL)


def test_real_image_rgb_ssim_matches_reference() -> None:
    hr = skdata.chelsea()
    deg = _noisy(hr, 12.0, seed=8)
    got = float(ssim(_t(deg), _t(hr), crop_border=2, y_channel=False))
    assert got == pytest.approx(ref_ssim(deg, hr, 2, False), abs=SSIM_TOL)


def test_identical_images() -> None:
    x = _t(skdata.chelsea()[:64, :80])
    assert math.isinf(float(psnr(x, x))) and float(psnr(x, x)) > 0
    assert float(psnr(x, x, y_channel=False)) == math.inf
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(x, x, y_channel=False)) == pytest.approx(1.0, abs=1e-12)


def test_crop_border() -> None:
    a, b = _random_pair((40, 44, 3), seed=21)
    x, y = _t(a), _t(b)
    k = 5
    for metric in (psnr, ssim):
        cropped = metric(x[:, k:-k, k:-k], y[:, k:-k, k:-k])
        torch.testing.assert_close(metric(x, y, crop_border=k), cropped, rtol=0, atol=1e-12)
    # Differences confined to the border do not count once it is cropped.
    z = x.clone()
    z[:, :k] = 1 - z[:, :k]
    z[:, :, -k:] = 0
    assert float(psnr(z, x, crop_border=k)) == math.inf
    assert float(ssim(z, x, crop_border=k)) == pytest.approx(1.0)
    assert float(psnr(z, x)) < 40


def test_batched_equals_per_image() -> None:
    pairs = [_random_pair((36, 30, 3), seed=s) for s in range(3)]
    x = torch.stack([_t(a) for a, _ in pairs])
    y = torch.stack([_t(b) for _, b in pairs])
    for metric in (psnr, ssim):
        for y_channel in (True, False):
            batched = metric(x, y, crop_border=2, y_channel=y_channel)
            assert batched.shape == (3,)
            assert batched.dtype == torch.float64
            single = torch.stack(
                [metric(x[n], y[n], crop_border=2, y_channel=y_channel) for n in range(3)]
            )
            torch.testing.assert_close(batched, single, rtol=0, atol=1e-12)
    assert psnr(x[0], y[0]).shape == ()
    assert ssim(x[0], y[0]).shape == ()


def test_alpha_channel_is_ignored() -> None:
    a, b = _random_pair((30, 30, 3), seed=4)
    x, y = _t(a), _t(b)
    xa = torch.cat([x, torch.rand(1, 30, 30)])
    ya = torch.cat([y, torch.rand(1, 30, 30)])
    for metric in (psnr, ssim):
        for y_channel in (True, False):
            torch.testing.assert_close(
                metric(xa, ya, y_channel=y_channel), metric(x, y, y_channel=y_channel)
            )


def test_quantizes_and_clamps_as_saved() -> None:
    a, b = _random_pair((24, 24, 3), seed=6)
    x, y = _t(a).double(), _t(b).double()
    jitter = (torch.rand(x.shape, dtype=torch.float64) - 0.5) * 0.9 / 255
    assert float(psnr(x + jitter, y)) == float(psnr(x, y))
    over = x.clone()
    over[0, 0, 0] = 1.7
    clipped = x.clone()
    clipped[0, 0, 0] = 1.0
    assert float(psnr(over, y, y_channel=False)) == float(psnr(clipped, y, y_channel=False))


def test_bit_depth_16() -> None:
    rng = np.random.default_rng(31)
    x = torch.from_numpy(rng.random((3, 20, 24)))
    y = torch.from_numpy(rng.random((3, 20, 24)))
    qx = np.round(x.numpy() * 65535) / 65535 * 255
    qy = np.round(y.numpy() * 65535) / 65535 * 255
    expected = 10 * math.log10(255**2 / np.mean((qx - qy) ** 2))
    assert float(psnr(x, y, y_channel=False, bit_depth=16)) == pytest.approx(expected, abs=1e-9)
    # Tiny differences survive 16-bit quantization but vanish at 8 bits.
    z = x + 3.0 / 65535
    assert math.isfinite(float(psnr(z.clamp(0, 1), x, bit_depth=16)))
    z8 = torch.round(x * 255) / 255
    assert float(psnr(z8 + 0.2 / 255, z8, bit_depth=8)) == math.inf
    assert math.isfinite(float(psnr(z8 + 0.2 / 255, z8, bit_depth=16)))


def test_invalid_inputs() -> None:
    x = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match=r"\(3, 16, 16\).*\(3, 16, 15\)"):
        psnr(x, torch.rand(3, 16, 15))
    with pytest.raises(ValueError, match=r"\(3, 16, 16\).*\(1, 3, 16, 16\)"):
        ssim(x, x[None])
    with pytest.raises(ValueError):
        psnr(torch.rand(2, 16, 16), torch.rand(2, 16, 16))
    with pytest.raises(ValueError):
        psnr(torch.rand(16, 16), torch.rand(16, 16))
    with pytest.raises(ValueError):
        psnr(x, x, crop_border=8)
    with pytest.raises(ValueError):
        ssim(x, x, crop_border=3)  # 10x10 left: smaller than the 11x11 window
    with pytest.raises(TypeError):
        psnr((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))


def _set5_images() -> list[np.ndarray]:
    return [
        np.asarray(Image.open(p).convert("RGB")) for p in sorted((DATASETS / "Set5").glob("*.png"))
    ]


@pytest.mark.skipif(not (DATASETS / "Set5").is_dir(), reason="Set5 not available")
def test_set5_bicubic_x4_protocol() -> None:
    psnrs, ssims = [], []
    for img in _set5_images():
        h, w = img.shape[0] // 4 * 4, img.shape[1] // 4 * 4
        hr = _t(img[:h, :w]).double()
        lr = torch.round(imresize(hr, scale=1 / 4).clamp(0, 1) * 255) / 255
        sr = torch.round(imresize(lr, scale=4).clamp(0, 1) * 255) / 255
        psnrs.append(float(psnr(sr, hr, crop_border=4)))
        ssims.append(float(ssim(sr, hr, crop_border=4)))
    mean_psnr, mean_ssim = float(np.mean(psnrs)), float(np.mean(ssims))
    print(f"Set5 bicubic x4: PSNR {mean_psnr:.4f} dB, SSIM {mean_ssim:.4f}")
    assert len(psnrs) == 5
    assert 28.41 <= mean_psnr <= 28.45
    assert 0.80 <= mean_ssim <= 0.82
