"""Upscaling with the pretrained models: modes, depth, alpha, tiles, precision, the API."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import srgan
from srgan.archs.srvgg import SRVGGNetCompact
from srgan.imaging import Image, ImageMeta, read_image, write_image
from srgan.inference.upscaler import UpscaleOptions, upscale_image
from srgan.zoo import load_model
from tests import pngcodec


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    from skimage import data

    return data.chelsea()[60:124, 140:220]  # 64 x 80 RGB, a cat's face


@pytest.fixture(scope="module")
def compact():
    return load_model("anime-video")


def test_rgba_png_keeps_alpha_in_both_alpha_modes(cli, tmp_path, crop):
    alpha = np.tile(np.linspace(0, 255, crop.shape[1]).astype(np.uint8), (crop.shape[0], 1))
    PILImage.fromarray(np.dstack([crop, alpha]), "RGBA").save(tmp_path / "a.png")
    for mode in ("model", "bicubic"):
        cli(
            "upscale",
            tmp_path / "a.png",
            tmp_path / f"{mode}.png",
            "-m",
            "anime-video",
            "--alpha-mode",
            mode,
        )
        out = read_image(tmp_path / f"{mode}.png")
        assert out.pixels.shape == (256, 320, 4) and out.pixels.dtype == np.uint8
        # The alpha ramp survives: left transparent, right opaque, monotone on average.
        ramp = out.pixels[..., 3].astype(float).mean(axis=0)
        assert ramp[:8].mean() < 20 and ramp[-8:].mean() > 235
        assert np.all(np.diff(ramp[8:-8]) > -2)


def test_16bit_rgba_png_stays_16bit(cli, tmp_path, crop):
    deep = np.dstack([crop.astype(np.uint16) * 257, np.full(crop.shape[:2], 40000, np.uint16)])
    (tmp_path / "deep.png").write_bytes(pngcodec.encode(deep))
    for mode, tolerance in (("bicubic", 0), ("model", 2000)):
        cli(
            "upscale",
            tmp_path / "deep.png",
            tmp_path / "big.png",
            "-m",
            "anime-video",
            "--alpha-mode",
            mode,
        )
        decoded, _ = pngcodec.decode((tmp_path / "big.png").read_bytes())
        assert decoded.shape == (256, 320, 4) and decoded.dtype == np.uint16
        assert np.abs(decoded[..., 3].astype(int) - 40000).max() <= tolerance
    # Values use the full 16-bit range, not 8-bit steps times 257.
    assert np.any(decoded[..., :3] % 257 != 0)


def test_gray_jpeg_and_palette_png(cli, tmp_path, crop):
    gray = crop.mean(axis=2).astype(np.uint8)
    PILImage.fromarray(gray, "L").save(tmp_path / "g.jpg", quality=95)
    PILImage.fromarray(crop).quantize(64).save(tmp_path / "p.png")
    cli("upscale", tmp_path / "g.jpg", tmp_path / "g4.jpg", "-m", "anime-video")
    cli("upscale", tmp_path / "p.png", tmp_path / "p4.png", "-m", "anime-video")
    assert PILImage.open(tmp_path / "g4.jpg").mode == "L"
    assert PILImage.open(tmp_path / "g4.jpg").size == (320, 256)
    palette_result = PILImage.open(tmp_path / "p4.png")
    assert palette_result.mode == "RGB" and palette_result.size == (320, 256)


def test_outscale_and_default_model_and_bad_device(cli, tmp_path, crop):
    PILImage.fromarray(crop).save(tmp_path / "c.png")
    cli("upscale", tmp_path / "c.png", tmp_path / "c2.png", "-m", "anime-video", "--outscale", "2")
    assert PILImage.open(tmp_path / "c2.png").size == (160, 128)
    if not torch.cuda.is_available():
        result = cli(
            "upscale", tmp_path / "c.png", tmp_path / "x.png", "--device", "cuda", check=False
        )
        assert result.returncode == 2 and "CUDA is not available" in result.stderr
        assert not (tmp_path / "x.png").exists()


def test_tiled_equals_untiled_without_seams(compact, crop):
    image = Image(np.ascontiguousarray(crop), ImageMeta())
    whole = upscale_image(compact, image, UpscaleOptions(tile=0)).pixels.astype(float)
    tiled = upscale_image(compact, image, UpscaleOptions(tile=24, tile_pad=12)).pixels
    difference = np.abs(tiled.astype(float) - whole)
    assert difference.mean() < 1.0  # under 1/255 on average
    # No seam: the error on tile-boundary lines is like the error elsewhere.
    boundary_rows = [24 * 4 * k for k in (1, 2)]
    assert difference[boundary_rows].mean() < 2 * difference.mean() + 0.5


def test_bf16_runs_close_to_fp32(compact, crop):
    image = Image(np.ascontiguousarray(crop), ImageMeta())
    fp32 = upscale_image(compact, image, UpscaleOptions(tile=0)).pixels.astype(float)
    bf16 = upscale_image(compact, image, UpscaleOptions(tile=0, precision="bf16")).pixels
    assert np.abs(bf16 - fp32).mean() < 3.0


def test_half_precision_overflow_falls_back_to_fp32(tmp_path, caplog):
    torch.manual_seed(0)
    network = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(300.0)  # activations beyond fp16's 65504, fine in fp32
    torch.save(network.state_dict(), tmp_path / "hot.pth")
    model = load_model(str(tmp_path / "hot.pth"))
    image = Image(np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8), ImageMeta())
    fp32 = upscale_image(model, image, UpscaleOptions(tile=0)).pixels
    with caplog.at_level(logging.WARNING, logger="srgan"):
        half = upscale_image(model, image, UpscaleOptions(tile=0, precision="fp16")).pixels
    assert "falling back to fp32" in caplog.text
    np.testing.assert_array_equal(half, fp32)


def test_python_api_accepts_arrays_pil_and_paths(tmp_path, crop, compact):
    big = srgan.upscale(crop, compact)
    assert big.shape == (256, 320, 3) and big.dtype == np.uint8
    gray16 = srgan.upscale(np.full((8, 10), 30000, np.uint16), compact)
    assert gray16.shape == (32, 40) and gray16.dtype == np.uint16
    pil = srgan.upscale(PILImage.fromarray(crop), compact, outscale=2)
    assert pil.size == (160, 128)
    write_image(tmp_path / "c.png", Image(np.ascontiguousarray(crop), ImageMeta()))
    from_path = srgan.upscale(tmp_path / "c.png", "bicubic")
    assert from_path.pixels.shape == (256, 320, 3)


def test_fp16_fallback_warns_once_per_run(tmp_path, caplog):
    torch.manual_seed(0)
    network = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(300.0)
    torch.save(network.state_dict(), tmp_path / "hot.pth")
    model = load_model(str(tmp_path / "hot.pth"))
    image = Image(np.full((16, 16, 3), 200, np.uint8), ImageMeta())
    with caplog.at_level(logging.WARNING, logger="srgan"):
        for _ in range(3):
            upscale_image(model, image, UpscaleOptions(tile=0, precision="fp16"))
    assert caplog.text.count("falling back to fp32") == 1


def test_gray_models_and_unsupported_channel_layouts(tmp_path):
    from srgan.errors import BadInputError

    torch.manual_seed(0)
    gray_net = SRVGGNetCompact(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=2, upscale=2)
    torch.save(gray_net.state_dict(), tmp_path / "gray.pth")
    model = load_model(str(tmp_path / "gray.pth"))
    gray = Image(np.full((10, 12, 1), 90, np.uint8), ImageMeta())
    assert upscale_image(model, gray).pixels.shape == (20, 24, 1)
    with pytest.raises(BadInputError, match="takes gray images"):
        upscale_image(model, Image(np.zeros((10, 12, 3), np.uint8), ImageMeta()))
    from srgan.archs.rrdbnet import RRDBNet

    torch.save(
        RRDBNet(3, 1, num_feat=8, num_block=1, num_grow_ch=4).state_dict(), tmp_path / "mixed.pth"
    )
    with pytest.raises(BadInputError, match="3 input and 1 output"):
        load_model(str(tmp_path / "mixed.pth"))


def test_eval_runs_models_needing_even_sizes(tmp_path, cli):
    from srgan.archs.rrdbnet import RRDBNet

    torch.manual_seed(0)
    torch.save(
        RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4).state_dict(), tmp_path / "x2.pth"
    )
    (tmp_path / "hr").mkdir()
    # 2 * 23 + 2: the LR image is 24 x 25 pixels, an odd width for pixel-unshuffle.
    rng = np.random.default_rng(0)
    write_image(
        tmp_path / "hr" / "a.png", Image(rng.integers(0, 256, (48, 50, 3), np.uint8), ImageMeta())
    )
    result = cli(
        "eval", "-m", tmp_path / "x2.pth", "--dataset", tmp_path / "hr", "-s", "2", "--json"
    )
    assert json.loads(result.stdout)["images"][0]["name"] == "a"


def test_python_api_normalises_pil_modes(compact):
    palette = PILImage.fromarray(np.zeros((6, 6, 3), np.uint8)).quantize(4)
    assert srgan.upscale(palette, compact).mode == "RGB"
    gray16 = PILImage.fromarray(np.full((6, 6), 40000, np.uint16))
    out = srgan.upscale(gray16, compact)
    assert out.size == (24, 24) and np.asarray(out).dtype == np.uint16
