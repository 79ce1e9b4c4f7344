"""The ncnn backend: same pictures as PyTorch, chosen automatically, no PyTorch import."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srgan.imaging import Image, ImageMeta, read_image, write_image
from srgan.inference.backends import open_model
from srgan.inference.upscaler import UpscaleOptions, upscale_image
from srgan.zoo.descriptor import LoadedModel
from srgan.zoo.ncnn_model import NcnnModel
from srgan.zoo.onnx_model import OnnxModel
from tests.torchfree import cli_imports_torch

pytest.importorskip("ncnn")


def _crop(size: int) -> Image:
    from skimage import data

    return Image(
        np.ascontiguousarray(data.astronaut()[90 : 90 + size, 200 : 200 + size]), ImageMeta()
    )


@pytest.mark.parametrize(("name", "size"), [("natural", 20), ("anime", 32), ("anime-video", 48)])
def test_ncnn_backend_matches_torch_within_one_level(name, size):
    ncnn_model = open_model(name, backend="ncnn")
    torch_model = open_model(name, backend="torch")
    assert isinstance(ncnn_model, NcnnModel) and not isinstance(torch_model, NcnnModel)
    image = _crop(size)
    for tile in (0, 16):
        options = UpscaleOptions(tile=tile, tile_pad=8)
        a = upscale_image(ncnn_model, image, options).pixels.astype(int)
        b = upscale_image(torch_model, image, options).pixels.astype(int)
        assert a.shape == b.shape == (size * 4, size * 4, 3)
        assert np.abs(a - b).max() <= 1


@pytest.mark.parametrize("name", ["anime-video", "natural"])
def test_ncnn_fp16_stores_half_and_stays_within_two_levels_of_fp32(name):
    from srgan.inference.backends.ncnn import NcnnRunner
    from srgan.inference.upscaler import halves_activations

    half = open_model(name, backend="ncnn", precision="fp16")
    full = open_model(name, backend="ncnn")
    assert isinstance(half, NcnnModel) and half.precision == "fp16"
    runner = NcnnRunner(half, threads=1)
    assert runner.net.opt.use_fp16_storage and not NcnnRunner(full, 1).net.opt.use_fp16_storage
    image = _crop(24)
    options = UpscaleOptions(tile=0, precision="fp16")
    a = upscale_image(half, image, options).pixels.astype(int)
    b = upscale_image(full, image, UpscaleOptions(tile=0)).pixels.astype(int)
    assert np.abs(a - b).max() <= 2
    # ncnn may keep some layers in fp32: its memory plan is the fp32 one
    assert not halves_activations(half, "fp16")
    assert halves_activations(open_model(name, backend="torch", precision="fp16"), "fp16")


def test_a_family_model_runs_on_ncnn_in_fp16():
    half = open_model("anime-cugan-x2-conservative", backend="ncnn", precision="fp16")
    full = open_model("anime-cugan-x2-conservative", backend="ncnn")
    image = _crop(20)
    a = upscale_image(half, image, UpscaleOptions(tile=0, precision="fp16")).pixels.astype(int)
    b = upscale_image(full, image, UpscaleOptions(tile=0)).pixels.astype(int)
    assert a.shape == (40, 40, 3) and np.abs(a - b).max() <= 2


def test_auto_backend_choice(tmp_path):
    assert isinstance(open_model("anime-video"), (NcnnModel, OnnxModel))
    assert isinstance(open_model("anime-video", precision="bf16"), LoadedModel)
    assert isinstance(open_model("bicubic"), LoadedModel)
    torch.save(open_model("anime-video", backend="torch").module.state_dict(), tmp_path / "m.pth")
    # a user's file runs on PyTorch or, exported, on ONNX Runtime; ncnn needs ncnn files
    assert isinstance(open_model(str(tmp_path / "m.pth")), (LoadedModel, OnnxModel))


def test_ncnn_backend_refusals_are_bad_input(cli, tmp_path):
    write_image(tmp_path / "a.png", _crop(16))
    torch.save(open_model("anime-video", backend="torch").module.state_dict(), tmp_path / "m.pth")
    for args, message in (
        (["-m", str(tmp_path / "m.pth")], "has no ncnn files"),
        (["-m", "anime-video", "--bf16"], "runs fp32"),
        (["-m", "anime-video", "--backend", "tpu"], "--backend"),
    ):
        result = cli(
            "upscale",
            tmp_path / "a.png",
            tmp_path / "o.png",
            "--backend",
            "ncnn",
            *args,
            check=False,
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert not (tmp_path / "o.png").exists()


def test_ncnn_path_never_imports_torch(tmp_path):
    write_image(tmp_path / "a.png", _crop(24))
    source, target = str(tmp_path / "a.png"), str(tmp_path / "o.png")
    assert not cli_imports_torch(
        "-q", "upscale", source, target, "-m", "anime-video", "--backend", "ncnn"
    )
    assert read_image(tmp_path / "o.png").pixels.shape == (96, 96, 3)


def test_a_users_param_file_runs_on_ncnn_from_its_first_run(tmp_path, cli, photos):
    """srgan's parser reads the file first (that load checks it); then the ncnn runtime may
    run it, and gives what PyTorch gives."""
    from srgan.archs.srvgg import SRVGGNetCompact
    from srgan.zoo.ncnn_writer import write_ncnn_bytes

    hp = {"num_feat": 8, "num_conv": 2, "upscale": 2, "act_type": "prelu"}
    torch.manual_seed(3)
    network = SRVGGNetCompact(**hp)
    files = write_ncnn_bytes("SRVGGNetCompact", hp, network.state_dict(), fp16=False)
    param = tmp_path / "mine.param"
    param.write_bytes(files.param)
    param.with_suffix(".bin").write_bytes(files.bin)
    on_ncnn, on_torch = tmp_path / "ncnn.png", tmp_path / "torch.png"
    cli("upscale", photos / "0.png", on_ncnn, "-m", param, "--backend", "ncnn", "-q")
    cli("upscale", photos / "0.png", on_torch, "-m", param, "--backend", "torch", "-q")
    a = read_image(on_ncnn).pixels.astype(int)
    b = read_image(on_torch).pixels.astype(int)
    assert a.shape == (128, 128, 3) and np.abs(a - b).max() <= 1
