"""Every architecture spec: a small random network saved as .pth and .safetensors loads
back through the zoo with the same hyper-parameters and identical outputs, and its
plausible ranges refuse what lies outside them."""

from __future__ import annotations

import inspect

import pytest
import torch
from safetensors.torch import save_file

from srgan.archs.spec import ArchSpec
from srgan.zoo import load_model
from srgan.zoo.architectures import ARCHITECTURES, detect
from srgan.zoo.weight_files import read_state_dict

SPECS = pytest.mark.parametrize("spec", ARCHITECTURES, ids=[a.name for a in ARCHITECTURES])


def random_network(spec: ArchSpec) -> torch.nn.Module:
    torch.manual_seed(0)
    network = spec.build(**spec.example).eval()
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if not tensor.is_floating_point():
                continue
            tensor.copy_(torch.randn_like(tensor) * 0.2)
            if name.endswith("running_var"):
                tensor.abs_().add_(0.5)
    return network


def sample_input(spec: ArchSpec) -> torch.Tensor:
    side = 4 * spec.size_multiple(spec.example)
    channels = spec.in_channels(spec.example)
    shape = (1, 3, channels, side, side) if spec.temporal else (1, channels, side, side)
    return torch.rand(shape, generator=torch.Generator().manual_seed(1))


@SPECS
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_saved_networks_reload_with_their_hyperparameters_and_outputs(spec, suffix, tmp_path):
    network = random_network(spec)
    state = {k: v.contiguous() for k, v in network.state_dict().items()}
    path = tmp_path / f"model{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    found = detect(read_state_dict(path))
    assert found is not None and found[0] is spec and found[1] == spec.example
    loaded = load_model(str(path))
    assert loaded.descriptor.architecture == spec.name
    assert loaded.scale == spec.scale(spec.example)
    assert loaded.descriptor.size_multiple == spec.size_multiple(spec.example)
    assert loaded.descriptor.temporal == spec.temporal
    x = sample_input(spec)
    with torch.inference_mode():
        ours, reference = loaded.module(x), network(x)
    assert torch.equal(ours, reference)
    assert ours.shape[-1] == x.shape[-1] * spec.scale(spec.example)
    assert ours.shape[-3] == spec.out_channels(spec.example)


@SPECS
def test_spec_describes_its_constructor(spec):
    constructor = set(inspect.signature(spec.build).parameters)
    assert set(spec.plausible) == constructor
    assert spec.out_of_range(spec.example) is None
    assert spec.recognise(random_network(spec).state_dict()) == spec.example
    assert spec.memory_per_pixel(spec.example) > 0


@SPECS
def test_values_outside_the_plausible_ranges_are_named(spec):
    for name, allowed in spec.plausible.items():
        too_big = allowed.stop if isinstance(allowed, range) else 10_000
        problem = spec.out_of_range({**spec.example, name: too_big})
        assert problem is not None and problem.startswith(name), problem
    assert "missing" in str(spec.out_of_range({}))
    assert "unknown" in str(spec.out_of_range({**spec.example, "extra": 1}))


@SPECS
def test_a_zero_sized_or_reshaped_tensor_is_a_mismatch(spec):
    state = dict(random_network(spec).state_dict())
    key = next(k for k, v in state.items() if v.ndim == 4)
    state[key] = torch.zeros(*state[key].shape[:2], 0, 0)
    hp = spec.guess(state)
    assert hp is not None and spec.recognise(state) is None
    assert f"{key} has shape" in str(spec.problem(state, hp))


def test_load_fills_every_tensor_from_the_state_and_zeroes_missing_counters():
    from srgan.archs.srresnet import SPEC

    network = random_network(SPEC)
    state = {k: v for k, v in network.state_dict().items() if "num_batches_tracked" not in k}
    loaded = SPEC.load(state, SPEC.example)
    for key, tensor in loaded.state_dict().items():
        expected = state.get(key, torch.zeros((), dtype=torch.long))
        assert torch.equal(tensor, expected), key
    with pytest.raises(ValueError, match="missing"):
        SPEC.load({k: v for k, v in state.items() if k != "tail.bias"}, SPEC.example)


NCNN_SPECS = [spec for spec in ARCHITECTURES if spec.ncnn_match is not None]


@pytest.mark.parametrize("spec", NCNN_SPECS, ids=[a.name for a in NCNN_SPECS])
def test_the_ncnn_matcher_in_a_spec_reads_back_what_the_writer_wrote(spec, tmp_path):
    from srgan.zoo.ncnn_format import ncnn_to_state_dict
    from srgan.zoo.ncnn_writer import write_ncnn_bytes

    network = random_network(spec)
    files = write_ncnn_bytes(spec.name, spec.example, network.state_dict(), fp16=False)
    (tmp_path / "m.param").write_bytes(files.param)
    (tmp_path / "m.bin").write_bytes(files.bin)
    arch, hp, state = ncnn_to_state_dict(tmp_path / "m.param", tmp_path / "m.bin")
    assert (arch, hp) == (spec.name, spec.example)
    for key, value in network.state_dict().items():
        assert torch.equal(state[key], value), key


def test_ncnn_graphs_are_matched_by_the_specs_in_the_zoo_list(monkeypatch, tmp_path):
    """The converter has no list of its own: a spec without a matcher is not tried, and a
    spec's matcher is what recognises the graph."""
    import dataclasses

    from srgan.archs import srvgg
    from srgan.zoo import ncnn_format
    from srgan.zoo.ncnn_writer import write_ncnn_bytes

    network = random_network(srvgg.SPEC)
    files = write_ncnn_bytes(srvgg.SPEC.name, srvgg.SPEC.example, network.state_dict(), False)
    (tmp_path / "m.param").write_bytes(files.param)
    (tmp_path / "m.bin").write_bytes(files.bin)
    param = ncnn_format.read_ncnn(tmp_path / "m.param", tmp_path / "m.bin")
    calls: list[str] = []

    def counting(graph):
        calls.append("matched")
        return srvgg.match_ncnn(graph)

    renamed = dataclasses.replace(srvgg.SPEC, name="Compact2", ncnn_match=counting)
    monkeypatch.setattr(ncnn_format, "ARCHITECTURES", (renamed,))
    found = ncnn_format.match_architecture(param)
    assert not isinstance(found, str) and found[0] == "Compact2" and calls == ["matched"]
    without = dataclasses.replace(srvgg.SPEC, ncnn_match=None)
    monkeypatch.setattr(ncnn_format, "ARCHITECTURES", (renamed, without))
    assert ncnn_format.match_architecture(param)[0] == "Compact2"
    monkeypatch.setattr(ncnn_format, "ARCHITECTURES", (without,))
    assert ncnn_format.match_architecture(param) == "no architecture has an ncnn matcher"


def test_every_module_with_a_spec_is_in_the_zoo_and_no_two_claim_one_state():
    names = {spec.name for spec in ARCHITECTURES}
    assert {"RRDBNet", "SRVGGNetCompact", "SRResNet", "BidirectionalRecurrentVSR"} <= names
    for spec in ARCHITECTURES:
        state = random_network(spec).state_dict()
        claimed = [other.name for other in ARCHITECTURES if other.guess(state) is not None]
        assert claimed == [spec.name]
