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
from srgan.evaluation import dataset_clips, evaluate_clips
from srgan.imaging import Image, ImageMeta, write_image
from srgan.inference.upscaler import UpscaleOptions
from srgan.inference.vsr import TemporalWindows, upscale_frames
from srgan.training.recipes.video import VideoRecipe
from srgan.training.recipes.video_config import load_video_config
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


def _clip_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    for index, pixels in enumerate(frames):
        write_image(folder / f"frame_{index:04d}.png", Image(pixels, ImageMeta()))
    return folder


def test_training_validation_and_eval_split_clips_at_scene_cuts(tmp_path, scenes):
    """The video recipe's validation (and `srgan eval` on clips) scores a clip of two
    scenes as the two scenes scored alone: nothing carried across the cut."""
    run = _aligned(tmp_path / "run")
    loaded = load_model(str(run))
    big = _big_scenes()
    first = _clip_folder(tmp_path / "alone" / "a", big[0])
    second = _clip_folder(tmp_path / "alone" / "b", big[1])
    both = _clip_folder(tmp_path / "val" / "ab", big[0] + big[1])
    config = load_video_config(
        None,
        [f"data.train={tmp_path / 'val'}", f"data.val={tmp_path / 'val'}", "data.scale=2",
         "data.val_frames=8", "model.num_features=6", "model.num_blocks=1"],
    )  # fmt: skip
    with torch.inference_mode():
        validation = VideoRecipe(config).validate(loaded, 1)
        assert validation is not None
        alone = evaluate_clips([loaded], dataset_clips(tmp_path / "alone"), 2, TemporalWindows(8))
        mixed = evaluate_clips(
            [loaded], dataset_clips(both.parent), 2, TemporalWindows(8, scene_cuts=False)
        )
    # four frames each: the clip's frame mean is the mean of the two scenes' means
    assert validation.psnr == pytest.approx(alone.tables[0].mean_psnr, abs=1e-6)
    assert mixed.tables[0].mean_psnr != pytest.approx(validation.psnr, abs=1e-6)
    assert {first.name, second.name} == {c.name for c in alone.tables[0].images}


def _big_scenes() -> tuple[list[np.ndarray], list[np.ndarray]]:
    from skimage import data

    return _pan(data.astronaut(), 4, 150, 48), _pan(data.coffee(), 4, 200, 48)


def test_video_command_runs_an_aligned_checkpoint(cli, tmp_path):
    for alignment in ("learned", "dis"):
        run = _aligned(tmp_path / alignment, alignment)
        clip = make_video(tmp_path / "clip.mp4", frames=6, audio=None)
        out = tmp_path / f"{alignment}.mp4"
        result = cli("-v", "video", clip, out, "-m", run, "--device", "cpu")
        assert f"alignment {alignment}" in result.stderr and "scene cuts" in result.stderr
        assert out.stat().st_size > 0
