"""Named models, the weights cache, and loading users' weight files by recognition."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from srgan.archs.rrdbnet import RRDBNet
from srgan.archs.srresnet import SRResNet
from srgan.errors import BadInputError
from srgan.zoo import load_model
from srgan.zoo.cache import cache_dir, entry_paths
from srgan.zoo.catalog import model_catalog
from srgan.zoo.pretrained import PRETRAINED, ncnn_files
from tests.test_ncnn_format import _run_ncnn, _test_image


def _run(model, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model.module(torch.from_numpy(x)[None])[0].numpy()


@pytest.mark.parametrize("name", ["natural", "anime", "anime-video"])
def test_named_model_matches_ncnn_runtime_on_original_files(name):
    model = load_model(name)
    assert model.scale == 4
    size = 24 if name == "natural" else 48
    x = _test_image(size)
    param, weights = ncnn_files(PRETRAINED[name])
    reference = _run_ncnn(param, weights, x)
    ours = _run(model, x)
    assert ours.shape == reference.shape == (3, size * 4, size * 4)
    assert np.abs(ours - reference).max() <= 1e-3


def test_cache_is_written_checked_and_repaired():
    model = PRETRAINED["anime-video"]
    load_model("anime-video")
    weights, record = entry_paths(model.cache_key)
    assert weights.is_file() and record.is_file()
    assert json.loads(record.read_text())["architecture"] == "SRVGGNetCompact"
    stamp = weights.stat().st_mtime_ns
    load_model("anime-video")
    assert weights.stat().st_mtime_ns == stamp, "a valid cache entry must be reused"
    # A damaged cache file fails its hash check and is converted again.
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    again = load_model("anime-video")
    x = _test_image(16)
    reference = _run_ncnn(*ncnn_files(model), x)
    assert np.abs(_run(again, x) - reference).max() <= 1e-3
    assert not list(weights.parent.glob(".*.part")), "no temporary files left behind"


def test_two_processes_converting_at_once_leave_a_valid_cache(tmp_path):
    env = {**os.environ, "SRGAN_CACHE": str(tmp_path)}
    code = "from srgan.zoo import load_model; load_model('anime'); print('ok')"
    workers = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert all(w.returncode == 0 for w in workers) and outputs == ["ok\n", "ok\n"]
    files = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert [f for f in files if not f.endswith(".lock")] == [
        "anime-realesrgan_x4plusanime_up4x-v1.json",
        "anime-realesrgan_x4plusanime_up4x-v1.safetensors",
    ]


def test_cache_folder_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SRGAN_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SRGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "srgan"


def test_catalog_lists_every_named_model():
    names = [entry.name for entry in model_catalog()]
    assert names == [
        "bicubic", "natural", "anime", "anime-video", "anime-cugan", "anime-cugan-pro",
        "waifu2x-cunet", "waifu2x-anime", "waifu2x-photo", "realsr",
    ]  # fmt: skip
    natural = next(e for e in model_catalog() if e.name == "natural")
    assert natural.parameters == 16_697_987 and natural.scale == 4


# ----------------------------------------------------------------------- weight files


@pytest.fixture(scope="module")
def compact_state():
    return load_model("anime-video").module.state_dict()


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"params_ema": sd, "params": {}},
        lambda sd: {"params": sd},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
    ],
    ids=["plain", "params_ema", "params", "ddp-prefix"],
)
def test_pth_files_are_recognised(tmp_path, compact_state, wrap):
    path = tmp_path / "user_model.pth"
    torch.save(wrap(compact_state), path)
    model = load_model(str(path))
    assert model.descriptor.architecture == "SRVGGNetCompact" and model.scale == 4
    x = _test_image(16)
    np.testing.assert_allclose(_run(model, x), _run(load_model("anime-video"), x), atol=1e-6)


def test_safetensors_and_ncnn_param_files_load(tmp_path, compact_state):
    save_file({k: v.contiguous() for k, v in compact_state.items()}, tmp_path / "m.safetensors")
    assert load_model(str(tmp_path / "m.safetensors")).descriptor.architecture == "SRVGGNetCompact"
    param, _ = ncnn_files(PRETRAINED["anime"])
    from_param = load_model(str(param))
    assert from_param.descriptor.architecture == "RRDBNet"


@pytest.mark.parametrize(
    ("module", "architecture", "scale"),
    [
        (RRDBNet(scale=2, num_block=2, num_feat=16, num_grow_ch=8), "RRDBNet", 2),
        (RRDBNet(scale=4, num_block=1, num_feat=8, num_grow_ch=4), "RRDBNet", 4),
        (SRResNet(num_blocks=3, num_features=16, scale=2), "SRResNet", 2),
    ],
)
def test_architecture_and_hyperparameters_recognised(tmp_path, module, architecture, scale):
    torch.save(module.state_dict(), tmp_path / "w.pth")
    model = load_model(str(tmp_path / "w.pth"))
    assert model.descriptor.architecture == architecture and model.scale == scale
    x = torch.rand(1, 3, 12, 12)
    with torch.inference_mode():
        torch.testing.assert_close(model.module(x), module.eval()(x))


def test_unrecognised_and_unreadable_files_are_bad_input(tmp_path):
    torch.save({"foo.weight": torch.zeros(3, 3)}, tmp_path / "odd.pth")
    with pytest.raises(BadInputError, match="match no supported architecture"):
        load_model(str(tmp_path / "odd.pth"))
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(BadInputError, match="not a readable weights file"):
        load_model(str(tmp_path / "text.pth"))
    with pytest.raises(BadInputError, match="no such model file"):
        load_model(str(tmp_path / "missing.safetensors"))
    with pytest.raises(BadInputError, match="unknown model"):
        load_model("no-such-model")
    with pytest.raises(BadInputError, match="upscales x4"):
        load_model("anime-video", scale=2)
