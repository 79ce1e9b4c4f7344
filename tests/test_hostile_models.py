"""Hostile model files: lying safetensors headers, absurd hyper-parameters, expanded
tensors in .pth files and damaged cache entries. Each is refused in one line (exit 2)
before any network is built, so memory never grows; damaged cache entries are rebuilt."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from srgan.errors import BadInputError
from srgan.imaging import Image, ImageMeta, write_image
from srgan.zoo import load_model
from srgan.zoo.cache import entry_paths
from srgan.zoo.pretrained import PRETRAINED
from tests import hostile_models as hostile


def expanded(*shape: int) -> torch.Tensor:
    """One float shown as a huge tensor: torch.save stores the one element."""
    return torch.zeros(1).expand(*shape)


def huge_channels_pth(path: Path) -> Path:
    """RRDBNet keys whose first conv claims 100 000 features (zero-sized kernels: the
    file holds no weights at all)."""
    keys = ("conv_first", "conv_body", "conv_up1", "body.0.rdb1.conv1")
    state = {f"{k}.weight": torch.zeros(100_000, 3, 0, 0) for k in keys}
    torch.save({**state, "conv_last.weight": torch.zeros(3, 100_000, 0, 0)}, path)
    return path


def plausible_but_expanded_pth(path: Path) -> Path:
    """A plausible SRVGGNetCompact (64 features, 64 convs: 2.4 million parameters) whose
    tensors are all one float expanded: 9 MB of weights claimed by a 20 KB file."""
    state = {}
    for index in range(66):
        out_ch = 3 * 4 * 4 if index == 65 else 64
        state[f"body.{2 * index}.weight"] = expanded(out_ch, 3 if index == 0 else 64, 3, 3)
        state[f"body.{2 * index}.bias"] = expanded(out_ch)
        if index < 65:
            state[f"body.{2 * index + 1}.weight"] = expanded(64)
    torch.save(state, path)
    return path


CASES = {
    "grow_channels_3000": (hostile.grow_channels_3000, "num_grow_ch 3000 is outside 1..256"),
    "upscale_x1000": (hostile.upscale_x1000, "upscale 1000 is outside 1..8"),
    "million_blocks": (hostile.million_blocks, "num_block 1000000 is outside 1..100"),
    "past_the_end": (hostile.past_the_end, "but the file holds 16 bytes of data"),
    "shape_larger_than_data": (hostile.shape_larger_than_data, "(25,600,000,000 bytes) but 64"),
    "header_longer_than_file": (hostile.header_longer_than_file, "its header claims"),
    "huge_channels_pth": (huge_channels_pth, "num_feat 100000 is outside 1..512"),
    "plausible_but_expanded_pth": (plausible_but_expanded_pth, "expanded or shared tensors"),
}


def build(name: str, folder: Path) -> Path:
    make, _ = CASES[name]
    suffix = ".pth" if name.endswith("_pth") else ".safetensors"
    return make(folder / f"{name}{suffix}")


@pytest.mark.parametrize("name", CASES)
def test_hostile_model_files_are_refused_before_building(name, tmp_path):
    path = build(name, tmp_path)
    with pytest.raises(BadInputError, match=r"^[^\n]*$") as refused:
        load_model(str(path))
    assert CASES[name][1] in str(refused.value)
    assert str(path) in str(refused.value)


def test_issue_cases_are_as_small_as_reported(tmp_path):
    assert build("grow_channels_3000", tmp_path).stat().st_size < 400
    assert build("upscale_x1000", tmp_path).stat().st_size < 300


def test_zero_sized_dimensions_with_plausible_hyperparameters_are_named(tmp_path):
    path = hostile.handmade_safetensors(
        tmp_path / "zero.safetensors",
        {
            "body.0.weight": [8, 3, 3, 3],
            "body.0.bias": [8],
            "body.1.weight": [8],
            "body.2.weight": [12, 8, 0, 3],
            "body.2.bias": [12],
        },
    )
    with pytest.raises(BadInputError, match=r"body\.2\.weight has shape \[12, 8, 0, 3\]"):
        load_model(str(path))


def run_limited(args: list[str], limit: int = 3 << 30) -> tuple[int, str, int]:
    """`python -m srgan ARGS` with at most `limit` bytes of address space; returns the
    exit code, stderr and the peak RSS in bytes."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "srgan", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        preexec_fn=cap,
    )
    assert process.stderr is not None
    err = process.stderr.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, err, usage.ru_maxrss * 1024


@pytest.mark.parametrize(
    "name", ["grow_channels_3000", "upscale_x1000", "plausible_but_expanded_pth"]
)
def test_the_command_line_refuses_them_without_growing(name, tmp_path):
    image = tmp_path / "in.png"
    write_image(image, Image(np.zeros((8, 8, 3), np.uint8), ImageMeta()))
    code, err, peak = run_limited(["upscale", str(image), str(tmp_path / "out.png"), "--model",
                                   str(build(name, tmp_path))])  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert peak < 1 << 30, f"peak RSS {peak >> 20} MiB"
    assert not (tmp_path / "out.png").exists()


# -------------------------------------------------------------------- damaged cache


def test_a_garbage_cache_entry_with_a_matching_hash_is_rebuilt(caplog):
    model = PRETRAINED["anime-video"]
    reference = load_model("anime-video").module.state_dict()
    weights, record = entry_paths(model.cache_key)
    garbage = bytes(range(256)) * 40
    weights.write_bytes(garbage)
    meta = json.loads(record.read_text())
    record.write_text(json.dumps({**meta, "sha256": hashlib.sha256(garbage).hexdigest()}))
    with caplog.at_level("WARNING", logger="srgan"):
        again = load_model("anime-video")
    assert "damaged cache entry" in caplog.text
    for key, tensor in reference.items():
        assert torch.equal(again.module.state_dict()[key], tensor)
    assert weights.read_bytes() != garbage


def test_a_cache_entry_with_absurd_hyperparameters_is_rebuilt(caplog):
    model = PRETRAINED["anime-video"]
    load_model("anime-video")
    _, record = entry_paths(model.cache_key)
    meta = json.loads(record.read_text())
    meta["hyperparameters"]["num_conv"] = 10**6
    record.write_text(json.dumps(meta))
    with caplog.at_level("WARNING", logger="srgan"):
        again = load_model("anime-video")
    assert "num_conv 1000000 is outside" in caplog.text
    assert again.descriptor.architecture == "SRVGGNetCompact"
    assert json.loads(record.read_text())["hyperparameters"]["num_conv"] == 16


def test_a_garbage_onnx_entry_with_a_matching_hash_is_rebuilt(cli, tmp_path):
    pytest.importorskip("onnxruntime")
    from srgan.inference.backends import open_model

    path = open_model("anime-video", backend="onnxruntime").path
    garbage = os.urandom(5000)
    path.write_bytes(garbage)
    Path(f"{path}.sha256").write_text(hashlib.sha256(garbage).hexdigest())
    image = tmp_path / "in.png"
    write_image(image, Image(np.full((8, 8, 3), 100, np.uint8), ImageMeta()))
    result = cli("upscale", image, tmp_path / "out.png", "-m", "anime-video",
                 "--backend", "onnxruntime")  # fmt: skip
    assert "damaged cache entry" in result.stderr
    assert (tmp_path / "out.png").is_file() and path.read_bytes() != garbage
