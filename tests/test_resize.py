"""Tests for the MATLAB-compatible bicubic ``imresize``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.imaging.resize import _contributions, imresize, output_size
from tests.reference_impl import ref_imresize

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

SCALES = [1 / 4, 1 / 3, 1 / 2, 2, 3, 4, 0.7, 1.5]
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def _to_chw(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).to(dtype)


def _to_hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).to(torch.float64).numpy()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("scale", SCALES)
def test_matches_reference_for_scales(scale: float, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(1234)
    img = rng.random((29, 41, 3))
    expected = ref_imresize(img, scale)
    got = imresize(_to_chw(img, dtype), scale=scale)
    assert got.dtype == dtype
    assert got.shape == (3, *expected.shape[:2])
    np.testing.assert_allclose(_to_hwc(got), expected, rtol=0, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "size", [(7, 45), (41, 13), (21, 31), (13, 13), (1, 5), (57, 91), (11, 30)]
)
def test_matches_reference_for_sizes(size: tuple[int, int], dtype: torch.dtype) -> None:
    rng = np.random.default_rng(99)
    img = rng.random((21, 31, 3))
    expected = ref_imresize(img, None, size=size)
    got = imresize(_to_chw(img, dtype), size=size)
    assert got.shape == (3, *size)
    np.testing.assert_allclose(_to_hwc(got), expected, rtol=0, atol=TOLERANCE[dtype])


def test_two_dimensional_input() -> None:
    rng = np.random.default_rng(5)
    img = rng.random((19, 25))
    got = imresize(torch.from_numpy(img), scale=1 / 3)
    np.testing.assert_allclose(got.numpy(), ref_imresize(img, 1 / 3), rtol=0, atol=1e-10)


@pytest.mark.parametrize("scale", [1 / 4, 3])
def test_batched_equals_per_image(scale: float) -> None:
    x = torch.rand(3, 3, 24, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    batched = imresize(x, scale=scale)
    for n in range(x.shape[0]):
        torch.testing.assert_close(batched[n], imresize(x[n], scale=scale), rtol=0, atol=1e-12)


def test_output_sizes_are_ceil() -> None:
    for h, w in [(1, 1), (7, 13), (255, 256), (17, 33), (100, 101)]:
        for s in SCALES:
            expected = (math.ceil(h * s), math.ceil(w * s))
            assert output_size(h, w, s) == expected
            x = torch.zeros(1, h, w)
            assert imresize(x, scale=s).shape[-2:] == expected


def test_output_size_uses_plain_double_ceil() -> None:
    # MATLAB computes ceil(scale * in) in double: 50 * 1.1 == 55.000000000000007 -> 56.
    assert 50 * 1.1 > 55
    assert output_size(50, 50, 1.1) == (56, 56)
    assert output_size(90, 90, 0.7) == (63, 63)


@pytest.mark.parametrize("scale", [*SCALES, 1.0])
def test_constant_image_stays_constant(scale: float) -> None:
    x = torch.full((2, 3, 23, 17), 0.37, dtype=torch.float64)
    out = imresize(x, scale=scale)
    torch.testing.assert_close(out, torch.full_like(out, 0.37), rtol=0, atol=1e-12)


def test_scale_one_is_identity() -> None:
    x = torch.rand(3, 15, 22, dtype=torch.float64)
    torch.testing.assert_close(imresize(x, scale=1.0), x, rtol=0, atol=0)
    torch.testing.assert_close(imresize(x, size=(15, 22)), x, rtol=0, atol=0)


def test_dtype_preserved_and_not_clamped() -> None:
    x = torch.zeros(1, 16, 16, dtype=torch.float32)
    x[:, ::2, ::2] = 1.0
    out = imresize(x, scale=2)
    assert out.dtype == torch.float32
    assert out.max() > 1.0
    assert out.min() < 0.0
    assert imresize(x.double(), scale=0.5).dtype == torch.float64


def test_antialias_flag() -> None:
    x = torch.rand(1, 20, 20, dtype=torch.float64)
    torch.testing.assert_close(imresize(x, scale=2, antialias=False), imresize(x, scale=2))
    no_aa = imresize(x, scale=0.5, antialias=False)
    assert no_aa.shape == (1, 10, 10)
    assert not torch.allclose(no_aa, imresize(x, scale=0.5))
    # Without antialiasing the kernel keeps its 4-pixel support.
    idx, _ = _contributions(20, 10, 0.5, False)
    assert idx.shape[1] <= 6


def test_tables_are_small() -> None:
    idx, w = _contributions(12000, 3000, 0.25, True)
    assert idx.shape == w.shape
    assert idx.shape[0] == 3000
    assert idx.shape[1] <= 18
    assert int(idx.min()) >= 0
    assert int(idx.max()) < 12000
    torch.testing.assert_close(w.sum(dim=1), torch.ones(3000, dtype=torch.float64))


def test_wide_image() -> None:
    rng = np.random.default_rng(7)
    img = rng.random((8, 12000))
    got = imresize(torch.from_numpy(img).to(torch.float32), scale=1 / 4)
    assert got.shape == (2, 3000)
    np.testing.assert_allclose(got.double().numpy(), ref_imresize(img, 1 / 4), rtol=0, atol=1e-5)


def test_gradient_flows() -> None:
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    imresize(x, scale=0.5).sum().backward()
    assert x.grad is not None
    # Each output's weights sum to one, so d(sum)/dx sums to the number of outputs.
    assert float(x.grad.sum()) == pytest.approx(36.0)


def test_gradient_after_inference_mode_use() -> None:
    # Tables cached while under inference_mode must still work with autograd later.
    with torch.inference_mode():
        imresize(torch.rand(1, 14, 9), scale=0.5)
    x = torch.rand(1, 14, 9, requires_grad=True)
    imresize(x, scale=0.5).sum().backward()
    assert x.grad is not None


def test_invalid_arguments() -> None:
    x = torch.rand(3, 8, 8)
    with pytest.raises(TypeError):
        imresize(x.half(), scale=2)
    with pytest.raises(TypeError):
        imresize((x * 255).to(torch.uint8), scale=2)
    with pytest.raises(ValueError):
        imresize(x)
    with pytest.raises(ValueError):
        imresize(x, scale=2, size=(4, 4))
    for bad_scale in (0, -0.5, math.inf, math.nan):
        with pytest.raises(ValueError):
            imresize(x, scale=bad_scale)
    for bad_size in ((0, 4), (4, -1), (4,)):
        with pytest.raises(ValueError):
            imresize(x, size=bad_size)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        imresize(torch.rand(8), scale=2)
    with pytest.raises(ValueError):
        output_size(0, 5, 0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(2, 3, 37, 29, dtype=torch.float64)
    for s in (1 / 4, 3):
        out = imresize(x.cuda(), scale=s)
        assert out.device.type == "cuda"
        torch.testing.assert_close(out.cpu(), imresize(x, scale=s), rtol=0, atol=1e-10)


def _dataset_images() -> list[Path]:
    paths: list[Path] = []
    for name in ("Set5", "Set14"):
        folder = DATASETS / name
        if folder.is_dir():
            paths.extend(sorted(folder.glob("*.png")))
    return paths


@pytest.mark.skipif(not (DATASETS / "Set5").is_dir(), reason="Set5 not available")
@pytest.mark.parametrize("path", _dataset_images(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_benchmark_downscale_matches_reference(path: Path) -> None:
    hr = np.asarray(Image.open(path).convert("RGB"))
    h, w = hr.shape[0] // 4 * 4, hr.shape[1] // 4 * 4
    hr = hr[:h, :w].astype(np.float64) / 255.0
    got = imresize(_to_chw(hr, torch.float64), scale=1 / 4)
    got_u8 = np.round(np.clip(_to_hwc(got) * 255.0, 0, 255))
    ref_u8 = np.round(np.clip(ref_imresize(hr, 1 / 4) * 255.0, 0, 255))
    assert got_u8.shape == (h // 4, w // 4, 3)
    assert np.abs(got_u8 - ref_u8).max() <= 1
