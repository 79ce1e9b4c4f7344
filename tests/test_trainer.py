"""The SRGAN trainer on a tiny configuration: stages, checkpoints, exact resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from srgan.archs.srresnet import SRResNet
from srgan.errors import BadInputError
from srgan.imaging import read_image
from srgan.training.config import load_config
from srgan.training.schedules import build_schedule
from srgan.training.trainer import Trainer, fold_to_unit_range

TINY_CLI = ["--batch-size", "2", "--set", "data.hr_size=32", "--set", "model.num_blocks=1",
            "--set", "model.num_features=8", "--set", "data.workers=0",
            "--set", "channels_last=false"]  # fmt: skip


def tiny(photos, output, **extra):
    overrides = [
        f"data.train_hr={photos}",
        f"output_dir={output}",
        "data.hr_size=32",
        "data.batch_size=2",
        "data.workers=0",
        "data.samples_per_image=2",
        "model.num_features=8",
        "model.num_blocks=1",
        "model.discriminator_features=4",
        "pretrain.steps=4",
        "gan.steps=3",
        'gan.content_loss="mse"',
        "log_interval=1",
        "checkpoint_interval=100",
        "channels_last=false",
    ] + [f"{k}={v}" for k, v in extra.items()]
    return load_config(None, overrides)


def losses(run_dir):
    lines = (run_dir / "training.log").read_text().splitlines()
    return [json.loads(line) for line in lines if "steps_per_s" in line]


VARYING = {"steps_per_s", "eta_s", "peak_rss_mb", "gpu_peak_mb"}  # timing and memory


def strip(records):
    return [{k: v for k, v in r.items() if k not in VARYING} for r in records]


def test_stopped_and_resumed_run_logs_the_same_losses(photos, tmp_path):
    Trainer(tiny(photos, tmp_path / "straight")).run()
    straight = strip(losses(tmp_path / "straight"))
    assert [r["stage"] for r in straight] == ["pretrain"] * 4 + ["gan"] * 3
    assert len({r["step"] for r in straight}) == 7
    Trainer(tiny(photos, tmp_path / "split")).run(stop_at_step=5)  # stops inside the GAN stage
    Trainer(tiny(photos, tmp_path / "split")).run(resume=True)
    assert strip(losses(tmp_path / "split")) == straight


def test_checkpoint_upscales_and_refuses_to_overwrite_a_run(photos, tmp_path, cli):
    config = tiny(photos, tmp_path / "run", **{"gan.steps": 0})
    last = Trainer(config).run()
    assert (last / "generator.safetensors").is_file()
    assert (tmp_path / "run" / "checkpoints" / "latest").resolve() == last.resolve()
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["step"] == 4 and status["total_steps"] == 4
    cli("upscale", photos / "0.png", tmp_path / "up.png", "-m", last / "generator.safetensors")
    assert read_image(tmp_path / "up.png").pixels.shape == (256, 256, 3)
    scores = json.loads(cli("eval", "-m", tmp_path / "run", "--dataset", photos, "--json").stdout)
    assert len(scores["images"]) == 3  # the run folder stands for its latest checkpoint
    folder = cli("eval", "-m", photos, "--dataset", photos, check=False)
    assert folder.returncode == 2 and "without a trained generator" in folder.stderr
    with pytest.raises(BadInputError, match="--resume"):
        Trainer(config).run()


def test_vgg_stage_refuses_without_weights(photos, tmp_path, monkeypatch):
    monkeypatch.delenv("SRGAN_VGG19", raising=False)
    with pytest.raises(BadInputError, match=r"vgg19-dcbb9e9d\.pth"):
        Trainer(tiny(photos, tmp_path / "v", **{"gan.content_loss": '"vgg"'}))


def test_interruption_saves_an_emergency_checkpoint(photos, tmp_path):
    def stop(record):
        if record["step"] == 2:
            raise KeyboardInterrupt

    trainer = Trainer(tiny(photos, tmp_path / "cut"), on_log=stop)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    latest = (tmp_path / "cut" / "checkpoints" / "latest").resolve()
    assert latest.name == "step_0000002"
    Trainer(tiny(photos, tmp_path / "cut")).run(resume=True)
    assert strip(losses(tmp_path / "cut"))[-1]["step"] == 7


def test_train_command(cli, photos, tmp_path):
    cli("train", "--example-config", tmp_path / "example.toml")
    example = load_config(tmp_path / "example.toml")
    assert example.gan.content_loss == "vgg" and example.data.hr_size == 96
    shown = json.loads(
        cli("train", "-c", tmp_path / "example.toml", "--train-steps", "5", "--print-config").stdout
    )
    assert shown["gan"]["steps"] == 5
    bad = cli("train", "-c", tmp_path / "example.toml", "--set", "gan.lr=0", check=False)
    assert bad.returncode == 2 and "gan.lr" in bad.stderr
    args = [
        "train",
        "--train-hr",
        photos,
        "-o",
        tmp_path / "run",
        "--pretrain-steps",
        "2",
        "--train-steps",
        "1",
        "--set",
        "gan.content_loss=mse",
        *TINY_CLI,
    ]
    result = cli(*args)
    assert "step 3 [gan]" in result.stderr and "generator.safetensors" in result.stderr


def test_ema_adaptive_clipping_and_warmup_cosine_resume_exactly(photos, tmp_path):
    extra = {
        "ema_decay": 0.5,
        "adaptive_clip_percentile": 50,
        "adaptive_clip_window": 3,
        "pretrain.lr": 1e-3,
        "pretrain.schedule.decay": '"cosine"',
        "pretrain.schedule.warmup_steps": 2,
        "pretrain.schedule.floor": 1e-5,
    }
    Trainer(tiny(photos, tmp_path / "straight", **extra)).run()
    straight = strip(losses(tmp_path / "straight"))
    expected = build_schedule(1e-3, 4, decay="cosine", warmup_steps=2, floor=1e-5)
    assert [r["lr"] for r in straight[:4]] == pytest.approx([expected(s) for s in range(4)])
    assert [r["lr"] for r in straight[4:]] == pytest.approx([1e-4, 1e-4, 1e-5])  # the paper
    history = [r["grad_norm"] for r in straight[:3]]
    assert "clip_limit" not in straight[2] and straight[3]["clip_limit"] == pytest.approx(
        float(np.median(history))
    )
    Trainer(tiny(photos, tmp_path / "split", **extra)).run(stop_at_step=5)
    Trainer(tiny(photos, tmp_path / "split", **extra)).run(resume=True)
    assert strip(losses(tmp_path / "split")) == straight

    last = (tmp_path / "straight" / "checkpoints" / "latest").resolve()
    state = torch.load(last / "state.pt", weights_only=True)
    saved = load_file(str(last / "generator.safetensors"))
    raw = SRResNet(num_features=8, num_blocks=1)
    raw.load_state_dict(state["generator_raw"])
    average = SRResNet(num_features=8, num_blocks=1)
    average.load_state_dict(state["ema"])
    assert torch.equal(saved["tail.weight"], fold_to_unit_range(average)["tail.weight"])
    assert not torch.equal(saved["tail.weight"], fold_to_unit_range(raw)["tail.weight"])


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_close_to_float32(photos, tmp_path, amp):
    Trainer(tiny(photos, tmp_path / "fp32", **{"gan.steps": 0})).run()
    Trainer(tiny(photos, tmp_path / amp, **{"gan.steps": 0, "amp": f'"{amp}"'})).run()
    full, mixed = losses(tmp_path / "fp32"), losses(tmp_path / amp)
    assert all(math.isfinite(r["pixel"]) for r in mixed)
    assert mixed[0]["pixel"] != full[0]["pixel"]  # really ran in lower precision
    assert mixed[0]["pixel"] == pytest.approx(full[0]["pixel"], rel=0.05)


def test_tensorboard_gets_every_curve_and_validation_images(photos, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "tb"
    config = tiny(photos, run, **{"data.val_hr": str(photos), "val_interval": 4, "val_images": 2})
    Trainer(config).run()
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "loss/pixel",
        "loss/content",
        "loss/adversarial",
        "loss/generator",
        "loss/discriminator",
        "train/lr",
        "train/grad_norm",
        "train/d_grad_norm",
        "train/steps_per_s",
        "memory/peak_rss_mb",
        "val/psnr",
        "val/ssim",
    } <= scalars
    assert [e.step for e in events.Scalars("val/psnr")] == [4, 7]
    assert [e.step for e in events.Scalars("loss/pixel")] == [1, 2, 3, 4]
    assert "val/comparison" in events.Tags()["images"]
    grid = read_image(run / "samples" / "val_comparison_0000004.png").pixels
    assert grid.shape == (64 * 2 + 4, 64 * 3 + 4 * 2, 3)  # 2 images x (bicubic, SR, HR)
    log = [json.loads(line) for line in (run / "training.log").read_text().splitlines()]
    assert [r["event"] for r in log if "event" in r] == ["checkpoint", "checkpoint"]


def test_sigterm_saves_a_checkpoint_before_exiting(photos, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "term"
    command = [
        sys.executable,
        "-m",
        "srgan",
        "train",
        "--train-hr",
        str(photos),
        "-o",
        str(run),
        "--pretrain-steps",
        "100000",
        "--train-steps",
        "0",
        "--set",
        "log_interval=1",
        *TINY_CLI,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run / "status.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    latest = (run / "checkpoints" / "latest").resolve()
    assert (latest / "generator.safetensors").is_file()
    assert int(latest.name.split("_")[1]) >= 1
