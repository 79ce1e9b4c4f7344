"""Tiny training runs for the tests: configurations of both recipes that train in well
under a second per step on a CPU, and readers for what a run leaves behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srgan.training.recipes.srgan_config import ImageTrainConfig, load_image_config
from srgan.training.recipes.video_config import VideoTrainConfig, load_video_config

TINY_IMAGE = [
    "data.crop=32",
    "data.batch_size=2",
    "data.workers=0",
    "data.samples_per_source=2",
    "model.num_features=8",
    "model.num_blocks=1",
    "loss.adversarial.num_features=4",
    "loss.perceptual.weight=0",  # MSE content: no VGG19 weights here
    "loss.pixel.weight=1",
    "log_interval=1",
    "status_interval=1",
    "checkpoint.interval=100",
    "channels_last=false",
    "tensorboard=false",
]
TINY_VIDEO = [
    "data.crop=24",
    "data.frames=3",
    "data.batch_size=2",
    "data.accumulation=2",
    "data.samples_per_source=2",
    "data.val_frames=3",
    "model.num_features=8",
    "model.num_blocks=1",
    "log_interval=1",
    "status_interval=1",
    "schedule.warmup_steps=2",
    "adaptive.interval=2",
    "clip.min_history=2",
    "clip.window=4",
    "checkpoint.interval=100",
    "autotune.enabled=false",
    "tensorboard=false",
]
VARYING = {"s_per_step", "steps_per_s", "eta_s", "peak_rss_mb", "gpu_peak_mb"}


def tiny_image(photos: Path, output: Path, *extra: str, steps: tuple[int, int] = (4, 3)):
    overrides = [f"data.train={photos}", f"output_dir={output}", *TINY_IMAGE]
    overrides += [f"pretrain.steps={steps[0]}", f"gan.steps={steps[1]}", *extra]
    return load_image_config(None, overrides)


def tiny_video(clips: Path, output: Path, *extra: str, steps: int = 6) -> VideoTrainConfig:
    overrides = [f"data.train={clips / 'train'}", f"output_dir={output}", *TINY_VIDEO]
    return load_video_config(None, [*overrides, f"steps={steps}", *extra])


def make_recipe(config: ImageTrainConfig | VideoTrainConfig):
    from srgan.training.recipes.srgan import SRGANRecipe
    from srgan.training.recipes.video import VideoRecipe

    if isinstance(config, ImageTrainConfig):
        return SRGANRecipe(config)
    return VideoRecipe(config)


def engine(config: ImageTrainConfig | VideoTrainConfig, **kwargs: Any):
    from srgan.training.engine.loop import Engine

    return Engine(make_recipe(config), **kwargs)


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "training.log").read_text().splitlines()]


def losses(run_dir: Path) -> list[dict[str, Any]]:
    """The step records of a run, without timing and memory."""
    return [
        {k: v for k, v in r.items() if k not in VARYING}
        for r in records(run_dir)
        if "lr_phase" in r
    ]
