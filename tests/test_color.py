"""Tests for the MATLAB ``rgb2ycbcr``-style colour conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srgan.imaging.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from tests.reference_impl import ref_rgb_to_y


def _pixel(r: float, g: float, b: float) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.float64).reshape(3, 1, 1)


def test_known_values() -> None:
    white = rgb_to_ycbcr(_pixel(1, 1, 1)).flatten()
    black = rgb_to_ycbcr(_pixel(0, 0, 0)).flatten()
    torch.testing.assert_close(
        white, torch.tensor([235, 128, 128], dtype=torch.float64) / 255, rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        black, torch.tensor([16, 128, 128], dtype=torch.float64) / 255, rtol=0, atol=1e-12
    )
    red = rgb_to_ycbcr(_pixel(1, 0, 0)).flatten() * 255
    torch.testing.assert_close(
        red,
        torch.tensor([16 + 65.481, 128 - 37.797, 128 + 112.0], dtype=torch.float64),
        rtol=0,
        atol=1e-10,
    )
    blue = rgb_to_ycbcr(_pixel(0, 0, 1)).flatten() * 255
    assert float(blue[1]) == pytest.approx(240.0)


def test_rgb_to_y_values_and_shape() -> None:
    assert float(rgb_to_y(_pixel(1, 1, 1))) == pytest.approx(235 / 255, abs=1e-12)
    assert float(rgb_to_y(_pixel(0, 0, 0))) == pytest.approx(16 / 255, abs=1e-12)
    x = torch.rand(2, 3, 5, 7)
    y = rgb_to_y(x)
    assert y.shape == (2, 1, 5, 7)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, rgb_to_ycbcr(x)[:, :1])


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_roundtrip(dtype: torch.dtype, atol: float) -> None:
    x = torch.rand(4, 3, 16, 9, generator=torch.Generator().manual_seed(3)).to(dtype)
    ycc = rgb_to_ycbcr(x)
    assert ycc.dtype == dtype
    back = ycbcr_to_rgb(ycc)
    torch.testing.assert_close(back, x, rtol=0, atol=atol)
    torch.testing.assert_close(rgb_to_ycbcr(back), ycc, rtol=0, atol=atol)


def test_agrees_with_reference_y() -> None:
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, size=(13, 17, 3), dtype=np.uint8)
    x = torch.from_numpy(img.transpose(2, 0, 1).copy()).to(torch.float64) / 255
    got = rgb_to_y(x)[0].numpy() * 255
    np.testing.assert_allclose(got, ref_rgb_to_y(img), rtol=0, atol=1e-10)
    assert ref_rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)
    assert ref_rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        rgb_to_ycbcr(torch.rand(4, 5, 5))
    with pytest.raises(ValueError):
        rgb_to_y(torch.rand(5, 5))
    with pytest.raises(TypeError):
        ycbcr_to_rgb(torch.zeros(3, 2, 2, dtype=torch.uint8))
