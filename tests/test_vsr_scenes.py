"""Video SR across scene cuts and held frames, as `srgan video` and `srgan eval` run it:
no features carried over a cut, identical outputs for a run of identical input frames, and
aligned checkpoints through `srgan video -m`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from srgan.archs.vsr import BidirectionalRecurrentVSR
from srgan.inference.upscaler import UpscaleOptions
from srgan.inference.vsr import TemporalWindows, upscale_frames
from srgan.training.vsr_validation import upscale_frames as validation_upscale
from srgan.zoo.registry import load_model
from tests.videos import make_video
from tests.vsr_models import run_network


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _aligned(folder: Path, alignment: str = "learned") -> Path:
    """A tiny aligned network whose flow really moves (and so would make held frames
    differ if they were run again), saved as a training checkpoint."""
    torch.manual_seed(1)
    model = BidirectionalRecurrentVSR(num_features=6, num_blocks=1, scale=2, alignment=alignment)
    with torch.no_grad():
        if model.align is not None:
            model.align.levels[0].conv4.bias.copy_(torch.tensor([0.7, -0.4]))
        model.output_conv.weight.mul_(0.1)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(folder / "generator.safetensors"))
    return folder


def _pan(photo: np.ndarray, count: int, top: int, size: int = 24) -> list[np.ndarray]:
    return [
        np.ascontiguousarray(photo[top : top + size, 3 * t : 3 * t + size]) for t in range(count)
    ]


@pytest.fixture(scope="module")
def scenes() -> tuple[list[np.ndarray], list[np.ndarray]]:
    from skimage import data

    return _pan(data.astronaut(), 4, 150), _pan(data.coffee(), 4, 200)


def test_a_run_of_identical_frames_gives_identical_outputs(tmp_path, scenes):
    model = load_model(str(_aligned(tmp_path / "run")))
    first, _ = scenes
    held = [first[0], first[1], first[1], first[1], first[2], first[2], first[3], first[3]]
    outputs = list(upscale_frames(model, iter(held), UpscaleOptions(tile=0), TemporalWindows(5)))
    runs = [(1, 2, 3), (4, 5), (6, 7)]
    for run in runs:
        for index in run[1:]:
            np.testing.assert_array_equal(outputs[index], outputs[run[0]])
    windows = TemporalWindows(5, scene_cuts=False)  # the bare network: held frames flicker
    bare = list(upscale_frames(model, iter(held), UpscaleOptions(tile=0), windows))
    assert any(not np.array_equal(bare[run[0]], bare[i]) for run in runs for i in run[1:])


def test_nothing_is_carried_across_a_scene_cut(tmp_path, scenes):
    loaded = load_model(str(_aligned(tmp_path / "run")))
    first, second = scenes
    frames = first + second
    options = UpscaleOptions(tile=0)
    outputs = np.stack(list(upscale_frames(loaded, iter(frames), options, TemporalWindows(8))))
    np.testing.assert_array_equal(outputs[:4], run_network(loaded.module, np.stack(first)))
    np.testing.assert_array_equal(outputs[4:], run_network(loaded.module, np.stack(second)))
    whole = run_network(loaded.module, np.stack(frames))  # one pass mixes the scenes
    assert not np.array_equal(outputs[4:], whole[4:])

    lr = torch.from_numpy(np.stack(frames).astype(np.float32) / 255).permute(0, 3, 1, 2)
    scored = validation_upscale(loaded.module, lr)  # the trainer's validation splits too
    with torch.no_grad():
        alone = loaded.module(lr[4:].unsqueeze(0)).squeeze(0).clamp(0, 1)
    assert torch.allclose(scored[4:], alone, atol=1e-6)


def test_video_command_runs_an_aligned_checkpoint(cli, tmp_path):
    for alignment in ("learned", "dis"):
        run = _aligned(tmp_path / alignment, alignment)
        clip = make_video(tmp_path / "clip.mp4", frames=6, audio=None)
        out = tmp_path / f"{alignment}.mp4"
        result = cli("-v", "video", clip, out, "-m", run, "--device", "cpu")
        assert f"alignment {alignment}" in result.stderr and "scene cuts" in result.stderr
        assert out.stat().st_size > 0
