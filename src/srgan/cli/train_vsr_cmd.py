"""`srgan train-vsr`: video super-resolution training (the video recipe) on the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import train_common as common
from srgan.cli.common import DeviceOrConfig


def train_vsr(
    config_file: common.ConfigFile = None,
    overrides: common.Overrides = None,
    resume: common.Resume = False,
    fresh: common.Fresh = False,
    print_config: common.PrintConfig = False,
    example_config: common.ExampleConfig = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Optimizer steps.")] = None,
    checkpoint_interval: common.CheckpointInterval = None,
    val_interval: common.ValInterval = None,
    batch_size: common.BatchSize = None,
    train_clips: Annotated[
        Path | None,
        typer.Option("--train", help="Training clips: folder of clip folders/videos, or a video."),
    ] = None,
    val: common.Val = None,
    output: common.Output = None,
    arch: common.Arch = None,
    init: common.Init = None,
    device: DeviceOrConfig = None,
    seed: common.Seed = None,
    autotune: common.Autotune = None,
) -> None:
    """Train a video network on windows of frames (hybrid L1 + multi-scale + gradient loss,
    adaptive weights, warmup + cosine; checkpoints `srgan video --model` loads)."""
    from srgan.training.recipes.video_config import EXAMPLE_VIDEO_CONFIG, load_video_config

    if example_config is not None:
        common.write_example(example_config, EXAMPLE_VIDEO_CONFIG)
        return
    quick = {
        "steps": steps,
        "checkpoint.interval": checkpoint_interval,
        "val_interval": val_interval,
        "data.batch_size": batch_size,
        "data.train": train_clips,
        "data.val": val,
        "output_dir": output,
        "model.arch": arch,
        "model.init": init,
        "device": device,
        "seed": seed,
        "autotune.enabled": autotune,
    }
    config = load_video_config(config_file, [*(overrides or []), *common.quick_flags(quick)])
    if print_config:
        common.show_config(config)
        return
    from srgan.training.recipes.video import VideoRecipe

    common.train(VideoRecipe(config), resume, fresh)
