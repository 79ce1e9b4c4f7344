"""`srgan convert`: every architecture through every format and back, validated by the
real runtimes (PyTorch, ONNX Runtime, the ncnn package); the named models against the
ncnn runtime on their original files; batches; hostile and unusable inputs."""

from __future__ import annotations

import itertools
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from srgan.archs.rrdbnet import RRDBNet
from srgan.archs.srresnet import SRResNet
from srgan.archs.srvgg import SRVGGNetCompact
from srgan.archs.vsr import BidirectionalRecurrentVSR
from srgan.conversion.validation import probe, run_ncnn, run_onnx
from srgan.zoo.pretrained import PRETRAINED, ncnn_files
from srgan.zoo.registry import load_model

pytest.importorskip("ncnn")

TINY = {
    "RRDBNet": lambda: RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2),
    "SRVGGNetCompact": lambda: SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4),
    "SRResNet": lambda: SRResNet(num_features=8, num_blocks=1, scale=2),
    "BidirectionalRecurrentVSR": lambda: BidirectionalRecurrentVSR(
        num_features=8, num_blocks=1, scale=2
    ),
}


def randomised(name: str, seed: int = 0) -> torch.nn.Module:
    """A small network with random weights (batch-norm statistics included)."""
    network = TINY[name]()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in network.state_dict().items():
            if value.is_floating_point():
                noise = torch.randn(value.shape, generator=generator) * 0.1
                value.copy_(noise.abs() + 0.5 if "running_var" in key else noise)
    return network.eval()


def saved(folder: Path, name: str, seed: int = 0) -> tuple[Path, dict[str, torch.Tensor]]:
    state = randomised(name, seed).state_dict()
    path = folder / f"{name.lower()}.safetensors"
    save_file(state, str(path))
    return path, state


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    return load_model(str(path)).module.state_dict()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("name", ["RRDBNet", "SRVGGNetCompact", "SRResNet"])
def test_every_format_and_back(cli, tmp_path, name):
    """safetensors -> onnx -> ncnn -> pth -> safetensors: the same weights at the end
    (fp32 storage is lossless), and every step validated by its runtimes."""
    start, state = saved(tmp_path, name)
    chain = [start, tmp_path / "a.onnx", tmp_path / "b.param", tmp_path / "c.pth",
             tmp_path / "d.safetensors"]  # fmt: skip
    for source, target in itertools.pairwise(chain):
        result = json.loads(cli("convert", source, target, "--json", "--probe-size", "24").stdout)
        assert result["ok"] and result["architecture"] == name
        assert result["max_abs"] <= 1e-4, (source, target, result)
    final = load_file(str(chain[-1]))
    assert set(final) == {k for k in state if not k.endswith("num_batches_tracked")} | (
        {k for k in state if k.endswith("num_batches_tracked")} & set(final)
    )
    for key, value in final.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, state[key]), key
    # the .pth holds only tensors (loads with weights_only=True) under BasicSR's `params`
    checkpoint = torch.load(chain[3], weights_only=True)
    assert list(checkpoint) == ["params"]
    assert leftovers(tmp_path) == []


def test_named_model_round_trip_against_the_ncnn_runtime(cli, tmp_path):
    """anime-video -> pth -> onnx -> ncnn -> safetensors, then the last file against the
    ncnn runtime running the original files of the package."""
    chain = ["anime-video", tmp_path / "av.pth", tmp_path / "av.onnx", tmp_path / "av.param",
             tmp_path / "av.safetensors"]  # fmt: skip
    for source, target in itertools.pairwise(chain):
        cli("convert", source, target, "-q")
    param, weights = ncnn_files(PRETRAINED["anime-video"])
    x = probe(3, 40)
    original = run_ncnn(param, weights, x)
    with torch.no_grad():
        final = load_model(str(chain[-1])).module(torch.from_numpy(x)).numpy()
    assert np.abs(final - original).max() < 1e-3
    onnx_output = run_onnx(tmp_path / "av.onnx", x)
    assert np.abs(onnx_output - original).max() < 1e-3
    # and the written ncnn model runs in srgan's upscaler like the named one
    assert load_model(str(chain[3])).descriptor.architecture == "SRVGGNetCompact"


def test_half_precision(cli, tmp_path):
    source, _ = saved(tmp_path, "SRVGGNetCompact")
    onnx16 = json.loads(cli("convert", source, tmp_path / "h.onnx", "--fp16", "--json").stdout)
    assert onnx16["precision"] == "fp16" and onnx16["tolerance"] == 1e-2
    assert 0 < onnx16["max_abs"] <= 1e-2
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "h.onnx"))
    assert session.get_inputs()[0].type == "tensor(float16)"
    cli("convert", source, tmp_path / "full.param", "-q")
    cli("convert", source, tmp_path / "half.param", "--fp16", "-q")
    full, half = (tmp_path / "full.bin").stat().st_size, (tmp_path / "half.bin").stat().st_size
    assert half < 0.6 * full
    cli("convert", tmp_path / "h.onnx", tmp_path / "back.safetensors", "-q")
    assert load_file(str(tmp_path / "back.safetensors"))["body.0.weight"].dtype == torch.float32


def test_a_result_outside_the_tolerance_leaves_nothing(cli, tmp_path):
    source, _ = saved(tmp_path, "RRDBNet")
    target = tmp_path / "out" / "m.onnx"
    result = cli("convert", source, target, "--fp16", "--tolerance", "0", check=False)
    assert result.returncode == 1
    assert "more than the tolerance 0" in result.stderr and "nothing was written" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_a_video_network_to_onnx_and_back(cli, tmp_path):
    source, state = saved(tmp_path, "BidirectionalRecurrentVSR")
    result = json.loads(
        cli("convert", source, tmp_path / "v.onnx", "--frames", "3", "--json").stdout
    )
    assert result["ok"] and result["max_abs"] < 1e-4
    x = probe(3, 16, frames=3)
    assert run_onnx(tmp_path / "v.onnx", x).shape == (1, 3, 3, 32, 32)
    cli("convert", tmp_path / "v.onnx", tmp_path / "v.safetensors", "-q")
    back = load_file(str(tmp_path / "v.safetensors"))
    assert all(torch.equal(back[k], state[k]) for k in back)
    refused = cli("convert", source, tmp_path / "v.param", check=False)
    assert refused.returncode == 2 and "ncnn cannot hold" in refused.stderr
    assert not (tmp_path / "v.param").exists() and leftovers(tmp_path) == []


def test_onnx_files_made_by_other_exporters_read_back(cli, tmp_path):
    """Real-ESRGAN's exports: default constant folding renames PReLU slopes."""
    network = randomised("SRVGGNetCompact", seed=4)
    path = tmp_path / "theirs.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (torch.rand(1, 3, 16, 16),), str(path), opset_version=17,
                          input_names=["input"], output_names=["output"], dynamo=False,
                          dynamic_axes={"input": {2: "h", 3: "w"}})  # fmt: skip
    cli("convert", path, tmp_path / "theirs.safetensors", "-q")
    back = load_file(str(tmp_path / "theirs.safetensors"))
    for key, value in network.state_dict().items():
        assert torch.equal(back[key], value), key


def test_a_folder_of_mixed_models_in_one_command(cli, tmp_path):
    models, out = tmp_path / "models", tmp_path / "onnx"
    models.mkdir()
    save_file(randomised("SRVGGNetCompact").state_dict(), str(models / "compact.safetensors"))
    torch.save({"params_ema": randomised("RRDBNet").state_dict()}, models / "esrgan.pth")
    cli("convert", models / "compact.safetensors", models / "vgg.param", "-q")
    save_file(randomised("SRResNet").state_dict(), str(tmp_path / "srresnet.safetensors"))
    cli("convert", tmp_path / "srresnet.safetensors", models / "srresnet.onnx", "-q")
    (models / "broken.pth").write_bytes(b"not a checkpoint")
    (models / "notes.txt").write_text("not a model")
    result = cli("convert", models, out, "--to", "onnx", check=False)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert [line.split()[0] for line in lines] == ["FAIL", "ok", "ok", "ok", "ok"]
    assert "broken.pth" in lines[0]
    assert "1 failed" in result.stderr and "4 converted" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "compact.onnx", "esrgan.onnx", "srresnet.onnx", "vgg.onnx",
    ]  # fmt: skip
    report = json.loads(cli("convert", models, tmp_path / "st", "--to", "safetensors",
                            "--json", check=False).stdout)  # fmt: skip
    assert (report["converted"], report["failed"]) == (4, 1)


def test_unusable_requests_are_one_line_errors(cli, tmp_path):
    source, _ = saved(tmp_path, "SRVGGNetCompact")
    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    (tmp_path / "weights.xyz").write_bytes(b"x")
    cli("convert", source, tmp_path / "m.param", "-q")

    def refused(*args: object) -> str:
        result = cli("convert", *args, check=False)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result.stderr

    assert "tf2onnx" in refused(tmp_path / "model.h5", tmp_path / "m.onnx")
    assert "unknown model format '.xyz'" in refused(tmp_path / "weights.xyz", tmp_path / "m.onnx")
    assert "unknown model format" in refused(source, tmp_path / "m.tflite2")
    assert "tf2onnx" in refused(source, tmp_path / "m.keras")
    assert "is the source" in refused(source, source)
    assert "is the source" in refused(tmp_path / "m.param", tmp_path / "m.param")
    assert ".param" in refused(tmp_path / "m.bin", tmp_path / "x.onnx")
    assert "no such model file" in refused(tmp_path / "missing.pth", tmp_path / "x.onnx")
    assert "bicubic has no weights" in refused("bicubic", tmp_path / "x.onnx")
    assert "--to" in refused(tmp_path, tmp_path / "all")
    assert "use pth, safetensors, onnx or ncnn" in refused(tmp_path, tmp_path / "all", "--to", "tf")


def test_hostile_model_files_are_refused_without_running_anything(cli, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    crafted = tmp_path / "crafted.pth"
    crafted.write_bytes(pickle.dumps({"params": Payload()}))
    zipped = tmp_path / "zipped.pth"
    torch.save({"params": {"w": torch.zeros(1)}, "x": Payload()}, zipped)
    result = cli("convert", crafted, tmp_path / "a.onnx", check=False)
    assert result.returncode == 2 and not marker.exists()
    result = cli("convert", zipped, tmp_path / "b.onnx", check=False)
    assert result.returncode == 2 and "objects other than tensors" in result.stderr
    assert not marker.exists()

    import onnx
    from onnx import TensorProto, helper

    # an ONNX whose weights live in another file: never followed
    weight = TensorProto(name="w", dims=[1, 3, 3, 3], data_type=TensorProto.FLOAT)
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["output"], pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, None, None])],
        [weight],
    )
    outside = tmp_path / "outside.onnx"
    onnx.save(helper.make_model(graph), str(outside))
    result = cli("convert", outside, tmp_path / "c.safetensors", check=False)
    assert result.returncode == 2 and "outside the file" in result.stderr
    # an image-to-image graph of no known architecture
    inside = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 3, 3], np.zeros(81).tolist())
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["output"], pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, None, None])],
        [inside],
    )
    unknown = tmp_path / "unknown.onnx"
    onnx.save(helper.make_model(graph), str(unknown))
    result = cli("convert", unknown, tmp_path / "d.pth", check=False)
    assert result.returncode == 2 and "unrecognised graph" in result.stderr
    # damaged files of every format
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    (tmp_path / "junk.onnx").write_bytes(b"\x00\xff" * 50)
    (tmp_path / "junk.param").write_text("7767517\n1 1\nInput in 0 1 data\n")
    (tmp_path / "junk.bin").write_bytes(b"")
    for name in ("cut.safetensors", "junk.onnx", "junk.param"):
        result = cli("convert", tmp_path / name, tmp_path / "e.pth", check=False)
        assert result.returncode == 2, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "e.pth").exists() and leftovers(tmp_path) == []
