"""The ONNX Runtime backend: exported once, cached, same pictures as PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from srgan.imaging import Image, ImageMeta, read_image, write_image
from srgan.inference.backends import open_model
from srgan.inference.upscaler import UpscaleOptions, upscale_image
from srgan.zoo.onnx_model import OnnxModel
from tests.torchfree import cli_imports_torch

pytest.importorskip("onnxruntime")


def _crop(size: int) -> Image:
    from skimage import data

    return Image(
        np.ascontiguousarray(data.astronaut()[90 : 90 + size, 200 : 200 + size]), ImageMeta()
    )


@pytest.mark.parametrize(("name", "size"), [("anime", 24), ("anime-video", 40)])
def test_onnxruntime_matches_torch_within_one_level(name, size):
    ort_model = open_model(name, backend="onnxruntime")
    torch_model = open_model(name, backend="torch")
    assert isinstance(ort_model, OnnxModel) and ort_model.path.is_file()
    image = _crop(size)
    for tile in (0, 16):
        options = UpscaleOptions(tile=tile, tile_pad=8)
        a = upscale_image(ort_model, image, options).pixels.astype(int)
        b = upscale_image(torch_model, image, options).pixels.astype(int)
        assert np.abs(a - b).max() <= 1


def test_onnx_cache_is_checked_and_rebuilt(tmp_path):
    model = open_model("anime-video", backend="onnxruntime")
    stamp = model.path.stat().st_mtime_ns
    assert open_model("anime-video", backend="onnxruntime").path.stat().st_mtime_ns == stamp
    model.path.write_bytes(model.path.read_bytes()[:1000])  # a damaged file
    rebuilt = open_model("anime-video", backend="onnxruntime")
    assert rebuilt.path.stat().st_size > 100_000
    out = upscale_image(rebuilt, _crop(16), UpscaleOptions(tile=0))
    assert out.pixels.shape == (64, 64, 3)


def test_onnxruntime_path_never_imports_torch(tmp_path):
    open_model("anime-video", backend="onnxruntime")  # export once (this needs PyTorch)
    write_image(tmp_path / "a.png", _crop(24))
    source, target = str(tmp_path / "a.png"), str(tmp_path / "o.png")
    assert not cli_imports_torch(
        "-q", "upscale", source, target, "-m", "anime-video", "--backend", "onnxruntime"
    )
    assert read_image(tmp_path / "o.png").pixels.shape == (96, 96, 3)


def test_a_users_file_runs_on_onnxruntime_without_torch_once_exported(tmp_path):
    import torch

    from srgan.zoo.sources import resolve_source

    weights = tmp_path / "mine.pth"
    torch.save(open_model("anime-video", backend="torch").module.state_dict(), weights)
    first = open_model(str(weights), backend="onnxruntime")  # loads, exports, remembers
    assert isinstance(first, OnnxModel) and first.descriptor.architecture == "SRVGGNetCompact"
    assert resolve_source(str(weights)).descriptor == first.descriptor
    write_image(tmp_path / "a.png", _crop(16))
    source, target = str(tmp_path / "a.png"), str(tmp_path / "o.png")
    args = ("-q", "upscale", source, target, "-m", str(weights), "--backend", "onnxruntime")
    assert not cli_imports_torch(*args)
    assert read_image(tmp_path / "o.png").pixels.shape == (64, 64, 3)


def test_a_crafted_remembered_descriptor_is_ignored(tmp_path):
    """The cache's descriptor of a file is checked; a bad one means loading the file again."""
    import json

    import torch

    from srgan.zoo.cache import cache_dir
    from srgan.zoo.sources import resolve_source

    weights = tmp_path / "other.pth"
    torch.save(open_model("anime-video", backend="torch").module.state_dict(), weights)
    identity = resolve_source(str(weights)).identity
    stash = cache_dir() / "models" / f"{identity}.descriptor.json"
    for crafted in (
        {"name": "x", "architecture": "y", "scale": 1e9, "in_channels": 3},
        {"name": "x", "architecture": "y", "scale": 4, "in_channels": 3, "evil": 1},
        {"name": "x", "architecture": "y", "scale": 4, "in_channels": 3, "memory_per_pixel": -5},
        ["not", "a", "dict"],
    ):
        stash.parent.mkdir(parents=True, exist_ok=True)
        stash.write_text(json.dumps(crafted))
        assert resolve_source(str(weights)).descriptor is None
    model = open_model(str(weights), backend="onnxruntime")
    assert model.descriptor.scale == 4 and model.descriptor.name == "other"


@pytest.mark.parametrize("arch", ["rrdbnet", "srvgg"])
def test_export_keeps_onnxruntime_in_its_blocked_layout(tmp_path, arch):
    """PReLU and RRDB's residual scale are exported so that ONNX Runtime's optimiser keeps
    every layer in NCHWc (no PRelu, no reorder between layers), same values, and the module
    itself is left as it was."""
    import onnx
    import onnxruntime
    import torch
    from torch import nn

    from srgan.archs.rrdbnet import RRDB, RRDBNet
    from srgan.archs.srvgg import SRVGGNetCompact
    from srgan.zoo.onnx_model import export_onnx

    torch.manual_seed(0)
    if arch == "rrdbnet":
        network: nn.Module = RRDBNet(num_feat=16, num_block=2, num_grow_ch=16)
    else:
        network = SRVGGNetCompact(num_feat=16, num_conv=3, upscale=4)
        for layer in network.body:
            if isinstance(layer, nn.PReLU):  # slopes below 0 and above 1, as in the releases
                layer.weight.data.uniform_(-1.3, 1.6)
    path, optimised = tmp_path / "m.onnx", tmp_path / "m.opt.onnx"
    export_onnx(network, path)
    restored, count = {"srvgg": (nn.PReLU, 4), "rrdbnet": (RRDB, 2)}[arch]
    assert sum(isinstance(m, restored) for m in network.modules()) == count
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(optimised)
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    kinds = [node.op_type for node in onnx.load(str(optimised)).graph.node]
    assert "PRelu" not in kinds and "ReorderInput" not in kinds
    x = torch.randn(1, 3, 20, 24)
    with torch.no_grad():
        expected = network(x).numpy()
    (got,) = session.run(None, {"input": x.numpy()})
    assert np.abs(got - expected).max() < 1e-4
