"""The video trainer on tiny clips: exact resume, emergency checkpoints, TensorBoard curves,
adaptive loss weights, autotune, the best-checkpoint window and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from srgan.archs.vsr import BidirectionalRecurrentVSR
from srgan.errors import BadInputError
from srgan.imaging import Image, ImageMeta, write_image
from srgan.training.autotune import MB, Candidate, candidates, choose, default_crops
from srgan.training.clips import ClipSettings, make_clips
from srgan.training.vsr_checkpoints import BestWindow, CheckpointManager
from srgan.training.vsr_config import load_vsr_config
from srgan.training.vsr_trainer import VSRTrainer


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks gain nothing from threads, and lose a lot on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four training and two validation clips of 4 frames, 36x36 pixels."""
    from skimage import data

    root = tmp_path_factory.mktemp("vsr")
    for index, picture in enumerate((data.astronaut(), data.coffee(), data.chelsea())):
        crop = np.ascontiguousarray(picture[100:220, 100:220])
        write_image(root / "photos" / f"{index}.png", Image(crop, ImageMeta()))
    settings = ClipSettings(frames=4, size=36, clips_per_photo=2, shrink=1, val_fraction=0.34)
    make_clips(root / "photos", root / "clips", settings)
    return root / "clips"


def tiny(clips, output, *extra: str):
    return load_vsr_config(
        None,
        [
            f"data.train={clips / 'train'}",
            f"output_dir={output}",
            "data.crop=24",
            "data.frames=3",
            "data.batch_size=2",
            "data.accumulation=2",
            "data.samples_per_clip=2",
            "data.val_frames=3",
            "model.num_features=8",
            "model.num_blocks=1",
            "steps=6",
            "log_interval=1",
            "status_interval=1",
            "schedule.warmup_steps=2",
            "adaptive.interval=2",
            "clip.min_history=2",
            "clip.window=4",
            "checkpoint.interval=100",
            "autotune.enabled=false",
            "tensorboard=false",
            *extra,
        ],
    )


VARYING = {"s_per_step", "eta_s", "peak_rss_mb", "gpu_peak_mb"}  # timing and memory


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "training.log").read_text().splitlines()]


def losses(run_dir):
    return [{k: v for k, v in r.items() if k not in VARYING} for r in records(run_dir) if "l1" in r]


WITH_VALIDATION = ("val_interval=3", "schedule.plateau_patience=1")


def test_stopped_interrupted_and_resumed_runs_log_the_same_losses(clips, tmp_path, monkeypatch):
    config = tiny(clips, tmp_path / "straight", f"data.val={clips / 'val'}", *WITH_VALIDATION,
                  "tensorboard=true", "val_images=2")  # fmt: skip
    VSRTrainer(config).run()
    straight = losses(tmp_path / "straight")
    assert [r["step"] for r in straight] == [1, 2, 3, 4, 5, 6]
    assert [r["phase"] for r in straight] == ["warmup"] * 2 + ["cosine"] * 4

    split = tiny(clips, tmp_path / "split", f"data.val={clips / 'val'}", *WITH_VALIDATION)
    VSRTrainer(split).run(stop_at_step=3)
    VSRTrainer(split).run(resume=True)
    assert losses(tmp_path / "split") == straight

    cut = tiny(clips, tmp_path / "cut", f"data.val={clips / 'val'}", *WITH_VALIDATION)
    trainer = VSRTrainer(cut)
    forward = trainer.loss.forward
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:  # inside step 4 (2 micro-batches per step)
            raise KeyboardInterrupt
        return forward(*args, **kwargs)

    monkeypatch.setattr(trainer.loss, "forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    latest = (tmp_path / "cut" / "checkpoints" / "latest").resolve()
    assert latest.name == "step_0000003"  # the state before the unfinished step
    assert torch.load(latest / "state.pt", weights_only=True)["emergency"] is True
    VSRTrainer(cut).run(resume=True)
    assert losses(tmp_path / "cut") == straight

    # What the straight run left: every curve in TensorBoard, each weight update logged.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "straight" / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    expected = {f"loss/{t}" for t in ("l1", "multiscale", "gradient", "total")}
    expected |= {f"weights/{t}" for t in ("l1", "multiscale", "gradient")}
    expected |= {f"adaptive/{t}_change" for t in ("l1", "multiscale", "gradient")}
    expected |= {"train/lr", "train/lr_phase", "train/clip_limit", "train/grad_norm",
                 "train/seconds_per_step", "memory/peak_rss_mb", "val/psnr", "val/ssim",
                 "val/bicubic_psnr", "val/bicubic_ssim", "events/checkpoint"}  # fmt: skip
    assert expected <= scalars, expected - scalars
    assert [e.value for e in events.Scalars("train/lr_phase")] == [0, 0, 1, 1, 1, 1]
    assert "val/comparison" in events.Tags()["images"]
    log = records(tmp_path / "straight")
    adjustments = [r for r in log if r.get("event") == "loss_weights"]
    assert [r["step"] for r in adjustments] == [2, 4, 6]
    weights = {k: v for k, v in straight[2].items() if k.startswith("w_")}
    assert weights == {f"w_{k}": v for k, v in adjustments[0]["weights"].items()}
    assert [r["step"] for r in log if "val_psnr" in r] == [3, 6]
    status = (tmp_path / "straight" / "training_status.txt").read_text()
    assert "step 6 / 6" in status and "validation at step 6" in status
    # generator.safetensors is the plain network: what `srgan video --model` loads
    model = BidirectionalRecurrentVSR(num_features=8, num_blocks=1)
    model.load_state_dict(load_file(str(latest.parent / "best" / "generator.safetensors")))


def test_adaptive_weights_move_toward_their_shares():
    from srgan.training.adaptive import AdaptiveWeights

    weights = AdaptiveWeights({"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 0.5, "b": 0.5, "c": 1.0},
                              interval=2, momentum=0.0, max_change=4.0)  # fmt: skip
    weights.observe({"a": 1.0, "b": 0.25, "c": 9.0})
    assert weights.adjust(1) is None  # not due
    change = weights.adjust(2)
    # S = 1 * 1 + 1 * 0.25 = 1.25 -> a: 0.5 * 1.25 / 1 = 0.625, b: 0.5 * 1.25 / 0.25 = 2.5
    assert change.weights == pytest.approx({"a": 0.625, "b": 2.5, "c": 0.0})
    assert change.record()["event"] == "loss_weights"
    bounded = AdaptiveWeights({"a": 1.0, "b": 1.0}, {"a": 0.5, "b": 0.5}, interval=1,
                              momentum=0.0, max_change=1.5, max_factor=10)  # fmt: skip
    bounded.observe({"a": 1.0, "b": 0.01})
    assert bounded.adjust(1).weights["b"] == pytest.approx(1.5)  # at most x1.5 per update


def test_autotune_picks_the_first_fitting_candidate_and_keeps_the_effective_batch(clips, tmp_path):
    assert default_crops(96, 3) == [96, 72, 48]
    options = candidates(8, [48, 24])
    assert [(c.batch_size, c.crop, c.accumulation) for c in options[:5]] == [
        (8, 48, 1), (4, 48, 2), (2, 48, 4), (1, 48, 8), (8, 24, 1)]  # fmt: skip

    def fake(candidate: Candidate) -> float:  # bytes proportional to the pixels in a pass
        return candidate.batch_size * candidate.crop**2 * 1000

    config = tiny(clips, tmp_path / "run", "autotune.enabled=true", "data.batch_size=4",
                  "data.accumulation=1", "autotune.crops=[24,12]", "steps=1",
                  "autotune.memory_budget_mb=2", "autotune.budget_fraction=0.5")  # fmt: skip
    seen = []
    VSRTrainer(config, on_log=seen.append, measure=fake).run()
    # budget 0.5 x 2 MB = 1 MB: 4x24^2 (2.2 MB) and 2x24^2 (1.1 MB) rejected, 1x24^2 fits
    trials = [r for r in seen if r.get("event") == "autotune_trial"]
    assert [(r["batch_size"], r["fits"]) for r in trials] == [(4, False), (2, False), (1, True)]
    assert "exceeds the budget of 1 MB" in trials[0]["reason"]
    saved = json.loads((tmp_path / "run" / "autotune.json").read_text())
    assert saved["chosen"] == {"batch_size": 1, "crop": 24, "accumulation": 4}
    assert saved["effective_batch"] == 4 and len(saved["trials"]) == 3
    with pytest.raises(BadInputError, match="no batch/crop fits"):
        choose(options, fake, 1.0, "fake")
    # the real CPU measurement: one training step in a child process
    real = tiny(clips, tmp_path / "real", "autotune.enabled=true", "steps=1",
                "autotune.memory_budget_mb=100000")  # fmt: skip
    VSRTrainer(real).run()
    measured = json.loads((tmp_path / "real" / "autotune.json").read_text())
    assert measured["method"].startswith("cpu peak RSS")
    assert measured["trials"][0]["peak_mb"] >= 0 and measured["trials"][0]["fits"]
    assert MB == 2**20


def _save(manager, step, kind="regular"):
    return manager.save(step, {"generator": {"w": torch.zeros(1)}}, {}, kind)


def _validate(manager, step, psnr):
    save, _ = manager.observe(step, psnr)
    if save:
        _save(manager, step, "candidate")
    return manager.settle()


def test_best_checkpoint_is_chosen_within_its_window(tmp_path):
    sliding = CheckpointManager(tmp_path / "sliding", 200, BestWindow(last=300))
    scores = {100: 30.0, 200: 25.0, 300: 26.0, 400: 27.0, 500: 26.5, 600: 26.8}
    dropped = {}
    for step, psnr in scores.items():
        dropped[step] = _validate(sliding, step, psnr)
        if sliding.regular_due(step, 600):
            _save(sliding, step)
    folder = tmp_path / "sliding"
    assert (folder / "best").resolve().name == "step_0000400"
    assert sliding.best == (400, 27.0)
    assert dropped[400] == [100]  # the early peak left the window and its checkpoint went
    kept = sorted(p.name for p in folder.glob("step_*"))
    assert dropped[600] == [300]  # candidates go once they leave the window...
    assert kept == [
        "step_0000200",
        "step_0000400",
        "step_0000500",
        "step_0000600",
    ]  # ...regular stay
    fixed = CheckpointManager(tmp_path / "fixed", 1000, BestWindow(start=200, end=400))
    for step, psnr in scores.items():
        _validate(fixed, step, psnr)
    assert fixed.best == (400, 27.0)  # 100 is before the window, 500+ after it
    assert sorted(p.name for p in (tmp_path / "fixed").glob("step_*")) == ["step_0000400"]
    restored = CheckpointManager(tmp_path / "fixed", 1000)
    restored.load_state_dict(fixed.state_dict())
    assert restored.best == fixed.best and restored.candidates == {400}


def test_train_vsr_command(cli, clips, tmp_path):
    cli("train-vsr", "--example-config", tmp_path / "example.toml")
    example = load_vsr_config(tmp_path / "example.toml")
    assert example.data.frames == 5 and example.adaptive.shares["l1"] == 0.5
    shown = cli("train-vsr", "-c", tmp_path / "example.toml", "--steps", "7", "--no-autotune",
                "--set", "loss.gradient=0.25", "--print-config").stdout  # fmt: skip
    resolved = json.loads(shown)
    assert resolved["steps"] == 7 and resolved["loss"]["gradient"] == 0.25
    assert resolved["autotune"]["enabled"] is False
    bad = cli("train-vsr", "-c", tmp_path / "example.toml", "--set", "optim.lr=0", check=False)
    assert bad.returncode == 2 and "optim.lr" in bad.stderr

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
    assert "moved the old run to" in done.stderr and "step 1 [warmup]" in done.stderr
    (old,) = tmp_path.glob("run.old-*")
    assert (old / "training.log").read_text() == "{}\n"  # moved aside, not deleted
    assert (run / "checkpoints" / "latest" / "generator.safetensors").is_file()
