"""`srgan train-vsr`: the video recipe (windows, adaptive loss weights, any architecture),
autotune's candidates, and the command line."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from srgan.archs.vsr import BidirectionalRecurrentVSR
from srgan.errors import BadInputError
from srgan.training.engine.autotune import candidates, choose, default_crops
from srgan.training.recipes.adaptive_weights import AdaptiveWeights
from srgan.training.recipes.video_config import load_video_config
from srgan.zoo.registry import load_model
from tests.training_support import engine, losses, records, tiny_video

pytestmark = pytest.mark.usefixtures("one_thread")


def test_adaptive_weights_are_logged_and_follow_their_shares(clips, tmp_path):
    engine(tiny_video(clips, tmp_path / "run")).run()
    steps, log = losses(tmp_path / "run"), records(tmp_path / "run")
    assert [(r["phase"], r["lr_phase"]) for r in steps] == [("train", "warmup")] * 2 + [
        ("train", "decay")] * 4  # fmt: skip
    adjustments = [r for r in log if r.get("event") == "loss_weights"]
    assert [r["step"] for r in adjustments] == [2, 4, 6]
    weights = {k: v for k, v in steps[2].items() if k.startswith("w_")}
    assert weights == {f"w_{k}": v for k, v in adjustments[0]["weights"].items()}
    status = (tmp_path / "run" / "training_status.txt").read_text()
    assert "srgan train-vsr" in status and " x l1 " in status
    latest = tmp_path / "run" / "checkpoints" / "latest"
    model = BidirectionalRecurrentVSR(num_features=8, num_blocks=1)
    model.load_state_dict(load_file(str(latest / "generator.safetensors")))  # the plain network


def test_adaptive_weights_worked_out_by_hand():
    weights = AdaptiveWeights({"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 0.5, "b": 0.5, "c": 1.0},
                              interval=2, momentum=0.0, max_change=4.0)  # fmt: skip
    weights.observe({"a": 1.0, "b": 0.25, "c": 9.0})
    assert weights.adjust(1) is None  # not due
    change = weights.adjust(2)
    assert change is not None
    # S = 1 * 1 + 1 * 0.25 = 1.25 -> a: 0.5 * 1.25 / 1 = 0.625, b: 0.5 * 1.25 / 0.25 = 2.5
    assert change.weights == pytest.approx({"a": 0.625, "b": 2.5, "c": 0.0})
    assert change.record()["event"] == "loss_weights"
    bounded = AdaptiveWeights({"a": 1.0, "b": 1.0}, {"a": 0.5, "b": 0.5}, interval=1,
                              momentum=0.0, max_change=1.5, max_factor=10)  # fmt: skip
    bounded.observe({"a": 1.0, "b": 0.01})
    adjusted = bounded.adjust(1)
    assert adjusted is not None and adjusted.weights["b"] == pytest.approx(1.5)


def test_autotune_candidates_keep_the_effective_batch():
    assert default_crops(96, 3) == [96, 72, 48]
    assert default_crops(96, 4, 16) == [96, 64, 48]  # GAN: multiples of 16
    options = candidates(8, [48, 24])
    assert [(c.batch_size, c.crop, c.accumulation) for c in options[:5]] == [
        (8, 48, 1), (4, 48, 2), (2, 48, 4), (1, 48, 8), (8, 24, 1)]  # fmt: skip
    with pytest.raises(BadInputError, match="no batch/crop fits"):
        choose(options, lambda candidate: 1e9, 1.0, "fake")


def test_an_image_architecture_trains_on_frames_and_is_validated_frame_by_frame(clips, tmp_path):
    run = tmp_path / "srvgg"
    config = tiny_video(clips, run, "model.arch=srvgg", "model.num_blocks=2", "data.scale=2",
                        f"data.val={clips / 'val'}", "val_interval=2", steps=2)  # fmt: skip
    engine(config).run()
    validations = [r for r in records(run) if "val_psnr" in r]
    assert [r["step"] for r in validations] == [2]
    assert validations[0]["val_psnr"] > 10
    assert load_model(str(run)).descriptor.architecture == "SRVGGNetCompact"


def test_a_one_frame_model_is_validated_frame_by_frame(clips, tmp_path):
    run = tmp_path / "frames"
    config = tiny_video(clips, run, "data.frames=1", f"data.val={clips / 'val'}",
                        "val_interval=1", steps=1)  # fmt: skip
    engine(config).run()
    (validation,) = [r for r in records(run) if "val_psnr" in r]
    model = load_model(str(run))
    from srgan.evaluation import dataset_clips, evaluate_clips
    from srgan.evaluation.clips import ClipSelection
    from srgan.inference.vsr import TemporalWindows

    with torch.inference_mode():
        tables = evaluate_clips([model], dataset_clips(clips / "val"), 3, TemporalWindows(1),
                                ClipSelection(3)).tables  # fmt: skip
    assert tables[0].mean_psnr == pytest.approx(validation["val_psnr"], abs=1e-6)


def test_train_vsr_command(cli, clips, tmp_path):
    cli("train-vsr", "--example-config", tmp_path / "example.toml")
    example = load_video_config(tmp_path / "example.toml")
    assert example.data.frames == 5 and example.adaptive.shares["l1"] == 0.5
    shown = cli("train-vsr", "-c", tmp_path / "example.toml", "--steps", "7", "--no-autotune",
                "--set", "loss.gradient=0.25", "--print-config").stdout  # fmt: skip
    resolved = json.loads(shown)
    assert resolved["steps"] == 7 and resolved["loss"]["gradient"] == 0.25
    assert resolved["autotune"]["enabled"] is False and resolved["optim"]["lr"] == 2e-4
    bad = cli("train-vsr", "-c", tmp_path / "example.toml", "--set", "optim.lr=0", check=False)
    assert bad.returncode == 2 and "optim.lr" in bad.stderr
    old = cli("train-vsr", "--set", "data.samples_per_clip=3", check=False)
    assert old.returncode == 2 and "use data.samples_per_source" in old.stderr

    run = tmp_path / "run"
    run.mkdir()
    (run / "training.log").write_text("{}\n")  # an earlier run
    args = ["train-vsr", "--train", clips / "train", "-o", run, "--steps", "1", "--no-autotune",
            "--batch-size", "2", "--set", "data.crop=24", "--set", "data.frames=2",
            "--set", "model.num_features=4", "--set", "model.num_blocks=1",
            "--set", "tensorboard=false"]  # fmt: skip
    refused = cli(*args, check=False)  # not a terminal: no question, a one-line error
    assert refused.returncode == 2
    assert "--resume" in refused.stderr and "--fresh" in refused.stderr
    assert refused.stderr.count("\n") == 1
    done = cli(*args, "--fresh")
    assert "moved the old run to" in done.stderr and "step 1 [train, warmup]" in done.stderr
    (old_run,) = tmp_path.glob("run.old-*")
    assert (old_run / "training.log").read_text() == "{}\n"  # moved aside, not deleted
    assert (run / "checkpoints" / "latest" / "generator.safetensors").is_file()
