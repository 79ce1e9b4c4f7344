"""The training engine with both recipes: exact resume (stopped, interrupted inside a step,
SIGTERM in a real process), TensorBoard curves, mixed precision, EMA, accumulation,
autotune, checkpoints that load with weights_only=True, and the run folder's rules."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from srgan.errors import BadInputError
from srgan.training.engine.autotune import MB, Candidate
from srgan.training.engine.checkpoints import BestWindow, CheckpointManager, load_state
from tests.training_support import engine, losses, records, tiny_image, tiny_video

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGE_EXTRA = (
    "schedule.plateau_patience=1",
    "clip.percentile=50",
    "clip.window=3",
    "clip.min_history=2",
    "ema_decay=0.5",
    "val_interval=10",
)
VIDEO_EXTRA = ("schedule.plateau_patience=1", "val_interval=10", "ema_decay=0.9")
STEPS = 30  # enough that a SIGTERM sent after the first step lands mid-run


def short(recipe):
    return ("pretrain.steps=3", "gan.steps=2") if recipe == "image" else ("steps=4",)


def config_of(recipe, inputs, run, *extra):
    """A tiny configuration of `recipe` ("image" or "video") with validation."""
    if recipe == "image":
        val = f"data.val={inputs}"
        return tiny_image(inputs, run, val, *IMAGE_EXTRA, *extra, steps=(15, 15))
    val = f"data.val={inputs / 'val'}"
    return tiny_video(inputs, run, val, *VIDEO_EXTRA, *extra, steps=STEPS)


@pytest.fixture(params=["image", "video"])
def recipe(request):
    return request.param


@pytest.fixture
def inputs(recipe, photos, clips):
    return photos if recipe == "image" else clips


def _interrupt_inside_a_step(trainer, recipe, monkeypatch):
    """Raise KeyboardInterrupt inside step 4, before its optimizer steps: in the image
    recipe's pixel loss, in the video recipe's second micro-batch."""
    module = trainer.recipe.pixel_loss if recipe == "image" else trainer.recipe.loss
    forward = module.forward
    calls = {"n": 0}
    due = 4 if recipe == "image" else 8  # the video config accumulates 2 micro-batches

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == due:
            raise KeyboardInterrupt
        return forward(*args, **kwargs)

    monkeypatch.setattr(module, "forward", interrupted)


def _command(recipe, config_file, run, *extra):
    name = "train" if recipe == "image" else "train-vsr"
    return [sys.executable, "-m", "srgan", name, "-c", str(config_file), "-o", str(run), *extra]


def test_stopped_interrupted_terminated_and_resumed_runs_log_the_same_losses(
    recipe, inputs, tmp_path, monkeypatch
):
    straight = config_of(recipe, inputs, tmp_path / "straight", "tensorboard=true")
    engine(straight).run()
    expected = losses(tmp_path / "straight")
    assert [r["step"] for r in expected] == list(range(1, STEPS + 1))

    split = config_of(recipe, inputs, tmp_path / "split")
    engine(split).run(stop_at_step=13)
    engine(split).run(resume=True)
    assert losses(tmp_path / "split") == expected

    cut = config_of(recipe, inputs, tmp_path / "cut")
    trainer = engine(cut)
    _interrupt_inside_a_step(trainer, recipe, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    latest = (tmp_path / "cut" / "checkpoints" / "latest").resolve()
    assert latest.name == "step_0000003"  # the state before the unfinished step
    assert load_state(latest)["emergency"] is True
    engine(cut).run(resume=True)
    assert losses(tmp_path / "cut") == expected

    # SIGTERM to a real training process: it finishes its step, saves and exits 130.
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(cut.model_dump(mode="json")))
    run = tmp_path / "term"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        _command(recipe, config_file, run), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run / "status.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr.decode()[-2000:]
    stopped = load_state((run / "checkpoints" / "latest").resolve())
    assert stopped["emergency"] and 1 <= stopped["step"] < STEPS
    resumed = subprocess.run(
        _command(recipe, config_file, run, "--resume"), capture_output=True, env=env, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert losses(run) == expected

    # What the straight run left: every curve in TensorBoard, each event logged.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "straight" / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    common = {"train/lr", "train/lr_phase", "train/plateau_scale", "train/grad_norm",
              "train/clip_limit", "train/steps_per_s", "train/seconds_per_step",
              "memory/peak_rss_mb", "val/psnr", "val/ssim", "val/bicubic_psnr",
              "val/bicubic_ssim", "events/checkpoint", "events/best_psnr"}  # fmt: skip
    if recipe == "image":
        specific = {f"loss/{k}" for k in ("pixel", "content", "adversarial", "generator")}
        specific |= {"loss/discriminator", "train/d_grad_norm", "train/d_clip_limit"}
    else:
        terms = ("l1", "multiscale", "gradient")
        specific = {f"loss/{t}" for t in (*terms, "total")}
        specific |= {f"weights/{t}" for t in terms} | {f"adaptive/{t}_change" for t in terms}
    assert common | specific <= scalars, (common | specific) - scalars
    assert [e.step for e in events.Scalars("val/psnr")] == [10, 20, 30]
    assert "val/comparison" in events.Tags()["images"]
    log = records(tmp_path / "straight")
    assert [r["step"] for r in log if "val_psnr" in r] == [10, 20, 30]
    status = (tmp_path / "straight" / "training_status.txt").read_text()
    assert f"step {STEPS} / {STEPS}" in status and "validation at step 30" in status


def test_ema_is_what_a_checkpoint_exports(recipe, inputs, tmp_path):
    config = config_of(recipe, inputs, tmp_path / "run", "data.val=null", *short(recipe))
    last = engine(config).run()
    state = load_state(last)
    exported = load_file(str(last / "generator.safetensors"))
    average, raw = state["stepper"]["ema"], state["stepper"]["modules"]["generator"]
    if recipe == "image":  # SRResNet from scratch: [-1, 1] targets folded into the tail
        from srgan.training.recipes.srgan import fold_to_unit_range
        from tests.training_support import make_recipe

        generator = make_recipe(config).network.build()
        generator.load_state_dict(average)
        average = fold_to_unit_range(generator)
        generator.load_state_dict(raw)
        raw = fold_to_unit_range(generator)
    assert all(torch.equal(exported[k], average[k]) for k in exported)
    assert not all(torch.equal(exported[k], raw[k]) for k in exported)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_close_to_float32(recipe, inputs, tmp_path, amp):
    def first_loss(run, *extra):
        config = config_of(recipe, inputs, run, "data.val=null", *short(recipe), *extra)
        trainer = engine(config, on_log=None)
        trainer.run(stop_at_step=2)
        record = losses(run)[0]
        return record["pixel"] if recipe == "image" else record["total"]

    full = first_loss(tmp_path / "fp32")
    mixed = first_loss(tmp_path / amp, f'amp="{amp}"')
    assert math.isfinite(mixed)
    assert mixed != full  # really ran in lower precision
    assert mixed == pytest.approx(full, rel=0.05)


def test_accumulation_takes_the_same_step_as_one_larger_batch(photos, tmp_path):
    """SRVGG has no batch norm: 2 micro-batches of 1 average to the gradient of a batch
    of 2 made of the same samples, so the losses agree to float precision."""
    arch = ("model.arch=srvgg", "model.num_blocks=2", "gan.steps=0")
    whole = tiny_image(photos, tmp_path / "whole", *arch, steps=(4, 0))
    parts = tiny_image(photos, tmp_path / "parts", *arch, "data.batch_size=1",
                       "data.accumulation=2", steps=(4, 0))  # fmt: skip
    engine(whole).run()
    engine(parts).run()
    a, b = losses(tmp_path / "whole"), losses(tmp_path / "parts")
    assert [r["pixel"] for r in a] == pytest.approx([r["pixel"] for r in b], rel=1e-5)
    assert [r["grad_norm"] for r in a] == pytest.approx([r["grad_norm"] for r in b], rel=1e-4)


def test_autotune_picks_the_first_fitting_plan_for_both_recipes(recipe, inputs, tmp_path):
    def fake(candidate: Candidate) -> float:  # bytes proportional to the pixels in a pass
        return candidate.batch_size * candidate.crop**2 * 1000

    crops = "[32,16]" if recipe == "image" else "[24,12]"
    config = config_of(recipe, inputs, tmp_path / "run", "data.val=null", "autotune.enabled=true",
                       "data.batch_size=4", "data.accumulation=1", f"autotune.crops={crops}",
                       "autotune.memory_budget_mb=2", "autotune.budget_fraction=0.5",
                       *short(recipe))  # fmt: skip
    seen = []
    engine(config, on_log=seen.append, measure=fake).run(stop_at_step=1)
    trials = [r for r in seen if r.get("event") == "autotune_trial"]
    saved = json.loads((tmp_path / "run" / "autotune.json").read_text())
    side = 32 if recipe == "image" else 24
    # budget 0.5 x 2 MB = 1 MB: the first batch whose pixels fit is chosen, batch x
    # accumulation staying 4
    fitting = [b for b in (4, 2, 1) if b * side**2 * 1000 <= MB]
    assert [r["fits"] for r in trials][-1] and trials[-1]["batch_size"] == fitting[0]
    assert saved["chosen"]["batch_size"] * saved["chosen"]["accumulation"] == 4
    assert saved["chosen"]["crop"] == side
    # a real CPU measurement: one training step of every phase in a child process
    real = config_of(recipe, inputs, tmp_path / "real", "data.val=null", "autotune.enabled=true",
                     "autotune.memory_budget_mb=100000", *short(recipe))  # fmt: skip
    engine(real).run(stop_at_step=1)
    measured = json.loads((tmp_path / "real" / "autotune.json").read_text())
    assert measured["method"].startswith("cpu peak RSS")
    assert measured["trials"][0]["peak_mb"] >= 0 and measured["trials"][0]["fits"]


def test_a_crafted_state_file_is_refused_without_running_it(photos, tmp_path):
    config = tiny_image(photos, tmp_path / "run", steps=(2, 0))
    last = engine(config).run()
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"plan": Payload()}, last / "state.pt")  # what a hostile file would hold
    with pytest.raises(BadInputError) as caught:
        engine(config).run(resume=True)
    assert "objects other than tensors" in str(caught.value)
    assert "\n" not in str(caught.value) and not marker.exists()
    (last / "state.pt").write_bytes(b"not a torch file")
    with pytest.raises(BadInputError, match="not a readable training state"):
        engine(config).run(resume=True)
    torch.save({"step": 2, "recipe_kind": "image", "plan": {"batch_size": 1}}, last / "state.pt")
    with pytest.raises(BadInputError, match="does not fit"):
        engine(config).run(resume=True)
    # a state written before the engine (numpy RNG arrays inside): named as such
    import numpy as np

    torch.save({"step": 2, "rng": {"numpy": np.random.get_state()}}, last / "state.pt")
    with pytest.raises(BadInputError, match="before srgan's training engine"):
        engine(config).run(resume=True)
    # a pointer may only name a step folder beside it, never a state elsewhere
    elsewhere = tmp_path / "elsewhere" / "step_0000002"
    shutil.copytree(last, elsewhere)
    latest = tmp_path / "run" / "checkpoints" / "latest"
    for target in (str(elsewhere), "../../elsewhere/step_0000002"):
        latest.unlink()
        latest.symlink_to(target)
        with pytest.raises(BadInputError, match="no checkpoint to resume from"):
            engine(config).run(resume=True)


def test_a_run_folder_is_never_overwritten_and_resume_needs_the_same_recipe(
    photos, clips, tmp_path
):
    run = tmp_path / "run"
    engine(tiny_image(photos, run, steps=(2, 0))).run()
    with pytest.raises(BadInputError, match="--resume"):
        engine(tiny_image(photos, run, steps=(2, 0))).run()
    with pytest.raises(BadInputError, match="holds a image run"):
        engine(tiny_video(clips, run)).run(resume=True)


def _save(manager, step, kind="regular"):
    return manager.save(step, {"generator": {"w": torch.zeros(1)}}, {}, kind)[0]


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
    assert sliding.state_dict()["kept"] == [200, 400, 600]  # 400: a candidate made regular
    fixed = CheckpointManager(tmp_path / "fixed", 1000, BestWindow(start=200, end=400))
    for step, psnr in scores.items():
        _validate(fixed, step, psnr)
    assert fixed.best == (400, 27.0)  # 100 is before the window, 500+ after it
    assert sorted(p.name for p in (tmp_path / "fixed").glob("step_*")) == ["step_0000400"]
    restored = CheckpointManager(tmp_path / "fixed", 1000)
    restored.load_state_dict(fixed.state_dict())
    assert restored.best == fixed.best and restored.candidates == {400}
