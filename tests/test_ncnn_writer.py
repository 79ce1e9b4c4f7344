"""The ncnn writer against the real ncnn runtime, and read back by srgan's ncnn reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srgan.archs.rrdbnet import RRDBNet
from srgan.archs.srresnet import SRResNet
from srgan.archs.srvgg import SRVGGNetCompact
from srgan.conversion.validation import probe, run_ncnn
from srgan.errors import BadInputError
from srgan.zoo.ncnn_format import ncnn_to_state_dict, parse_param
from srgan.zoo.ncnn_writer import write_ncnn_bytes

pytest.importorskip("ncnn")

CASES = [
    ("RRDBNet", {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4}),
    ("RRDBNet", {"num_feat": 8, "num_block": 2, "num_grow_ch": 4, "scale": 2}),
    ("RRDBNet", {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 1}),
    ("SRVGGNetCompact", {"num_feat": 8, "num_conv": 2, "upscale": 4, "act_type": "prelu"}),
    ("SRVGGNetCompact", {"num_feat": 8, "num_conv": 1, "upscale": 2, "act_type": "relu"}),
    ("SRVGGNetCompact", {"num_feat": 8, "num_conv": 3, "upscale": 3, "act_type": "leakyrelu"}),
    ("SRResNet", {"num_features": 8, "num_blocks": 2, "scale": 4}),
    ("SRResNet", {"num_features": 8, "num_blocks": 1, "scale": 3}),
]
BUILD = {"RRDBNet": RRDBNet, "SRVGGNetCompact": SRVGGNetCompact, "SRResNet": SRResNet}


def network(arch: str, hp: dict, seed: int) -> torch.nn.Module:
    module = BUILD[arch](**hp).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if value.is_floating_point():
                noise = torch.randn(value.shape, generator=generator) * 0.1
                value.copy_(noise.abs() + 0.5 if "running_var" in key else noise)
    return module


@pytest.mark.parametrize(("arch", "hp"), CASES)
@pytest.mark.parametrize("fp16", [False, True])
def test_written_files_run_in_ncnn_like_pytorch(tmp_path, arch, hp, fp16):
    module = network(arch, hp, seed=len(str(hp)))
    files = write_ncnn_bytes(arch, hp, module.state_dict(), fp16)
    param, weights = tmp_path / "m.param", tmp_path / "m.bin"
    param.write_bytes(files.param)
    weights.write_bytes(files.bin)
    x = probe(3, 16, 4)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    got = run_ncnn(param, weights, x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < (3e-3 if fp16 else 2e-5)
    layers = parse_param(param).layers
    assert len({layer.name for layer in layers}) == len(layers)
    assert layers[0].type == "Input"
    if arch != "SRResNet" and not fp16:  # the reader gives back the very weights
        found, found_hp, state = ncnn_to_state_dict(param, weights)
        assert (found, found_hp) == (arch, _full(arch, hp))
        for key, value in module.state_dict().items():
            assert torch.equal(state[key], value), key


def _full(arch: str, hp: dict) -> dict:
    """The hyper-parameters the reader reports (every constructor argument)."""
    defaults = {
        "RRDBNet": {"num_in_ch": 3, "num_out_ch": 3},
        "SRVGGNetCompact": {"num_in_ch": 3, "num_out_ch": 3},
    }[arch]
    return {**defaults, **hp}


def test_a_blob_read_twice_goes_through_split(tmp_path):
    module = network("SRVGGNetCompact", CASES[3][1], 1)
    text = write_ncnn_bytes("SRVGGNetCompact", CASES[3][1], module.state_dict(), False).param
    lines = text.decode().splitlines()
    assert lines[0] == "7767517"
    assert lines[3].startswith("Split splitncnn_")  # the input feeds the body and the skip
    readers: dict[str, int] = {}
    for line in lines[2:]:
        fields = line.split()
        for blob in fields[4 : 4 + int(fields[2])]:
            readers[blob] = readers.get(blob, 0) + 1
    assert max(readers.values()) == 1


def test_what_ncnn_cannot_hold_is_refused():
    with pytest.raises(BadInputError, match="ncnn cannot hold"):
        write_ncnn_bytes("BidirectionalRecurrentVSR", {}, {}, False)
    module = network("SRVGGNetCompact", CASES[3][1], 1)
    state = dict(module.state_dict())
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(BadInputError, match=r"does not use 'extra\.weight'"):
        write_ncnn_bytes("SRVGGNetCompact", CASES[3][1], state, False)
    state = dict(module.state_dict())
    state["body.0.weight"] = state["body.0.weight"] * float("nan")
    with pytest.raises(BadInputError, match="NaN"):
        write_ncnn_bytes("SRVGGNetCompact", CASES[3][1], state, False)
