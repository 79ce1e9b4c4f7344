"""The video recipe with alignment: the flow's own loss, its warm-up, and checkpoints that
record the alignment."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from srgan.archs.vsr import vsr_hyperparameters
from srgan.errors import BadInputError
from srgan.training.recipes.video import VideoRecipe
from srgan.training.recipes.video_config import load_video_config
from tests.training_support import engine, losses, tiny_video

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_FLOW = ("model.flow_features=4", "optim.lr=1e-2", "schedule.warmup_steps=0")


def _train(clips, output, *extra: str):
    config = tiny_video(clips, output, *TINY_FLOW, *extra, steps=2)
    engine(config).run()
    return config


def _flow_weights(run) -> dict[str, torch.Tensor]:
    weights = load_file(str(run / "checkpoints" / "latest" / "generator.safetensors"))
    return {key: value for key, value in weights.items() if key.startswith("align.")}


def test_the_learned_flow_trains_on_its_own_loss_and_is_recorded(clips, tmp_path):
    _train(clips, tmp_path / "learned")  # learned is the default alignment
    steps = losses(tmp_path / "learned")
    assert steps and all("flow_photometric" in r and "flow_smoothness" in r for r in steps)
    weights = load_file(str(tmp_path / "learned/checkpoints/latest/generator.safetensors"))
    spec = vsr_hyperparameters(weights)
    assert spec is not None and spec["alignment"] == "learned" and spec["flow_features"] == 4
    status = (tmp_path / "learned" / "training_status.txt").read_text()
    assert "flow: photometric" in status


def test_during_the_warm_up_only_the_flow_loss_moves_the_flow(clips, tmp_path):
    silent = ("loss.flow=0", "loss.flow_warmup_steps=10")
    config = _train(clips, tmp_path / "warm", *silent)
    torch.manual_seed(config.seed)  # as the engine does before it builds the networks
    fresh = VideoRecipe(config).build_networks(config.data.crop)["generator"]
    before = {k: v for k, v in fresh.state_dict().items() if k.startswith("align.")}
    after = _flow_weights(tmp_path / "warm")
    assert before and before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)
    _train(clips, tmp_path / "joint", "loss.flow_warmup_steps=0")
    joint = _flow_weights(tmp_path / "joint")
    assert not all(torch.equal(before[key], joint[key]) for key in before)


def test_dis_and_unaligned_networks_train_and_are_recorded(clips, tmp_path):
    _train(clips, tmp_path / "dis", "model.alignment=dis")
    weights = load_file(str(tmp_path / "dis/checkpoints/latest/generator.safetensors"))
    assert weights["opencv_flow"].tolist() == [1.0]
    spec = vsr_hyperparameters(weights)
    assert spec is not None and spec["alignment"] == "dis"
    assert all("flow_photometric" not in r for r in losses(tmp_path / "dis"))
    _train(clips, tmp_path / "none", "model.alignment=none")
    plain = load_file(str(tmp_path / "none/checkpoints/latest/generator.safetensors"))
    assert not any(key.startswith("align.") or key == "opencv_flow" for key in plain)


def test_a_run_started_from_an_unaligned_network_keeps_it_unaligned(clips, tmp_path):
    _train(clips, tmp_path / "old", "model.alignment=none")
    config = tiny_video(clips, tmp_path / "tuned", f"model.init={tmp_path / 'old'}")
    plan = VideoRecipe(config).network
    assert plan.hyperparameters()["alignment"] == "none"
    clash = tiny_video(
        clips, tmp_path / "clash", f"model.init={tmp_path / 'old'}", "model.alignment=learned"
    )
    with pytest.raises(BadInputError, match=r"model\.alignment"):
        VideoRecipe(clash)


def test_alignment_keys_belong_to_the_video_network():
    with pytest.raises(BadInputError, match="vsr hyper-parameter"):
        load_video_config(None, ["model.arch=srvgg", "model.alignment=dis"])
    with pytest.raises(BadInputError, match=r"model\.alignment"):
        load_video_config(None, ["model.alignment=sideways"])
