"""`srgan train`: image super-resolution training (the SRGAN recipe) on the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import train_common as common
from srgan.cli.common import DeviceOrConfig


def train(
    config_file: common.ConfigFile = None,
    overrides: common.Overrides = None,
    resume: common.Resume = False,
    fresh: common.Fresh = False,
    print_config: common.PrintConfig = False,
    example_config: common.ExampleConfig = None,
    pretrain_steps: Annotated[
        int | None, typer.Option("--pretrain-steps", min=0, help="Pixel-loss steps.")
    ] = None,
    train_steps: Annotated[
        int | None, typer.Option("--train-steps", min=0, help="GAN steps.")
    ] = None,
    checkpoint_interval: common.CheckpointInterval = None,
    val_interval: common.ValInterval = None,
    batch_size: common.BatchSize = None,
    train_images: Annotated[
        Path | None, typer.Option("--train", "--train-hr", help="Training HR images (folder).")
    ] = None,
    val: common.Val = None,
    output: common.Output = None,
    arch: common.Arch = None,
    init: common.Init = None,
    vgg_weights: Annotated[
        Path | None, typer.Option("--vgg-weights", help="torchvision vgg19-dcbb9e9d.pth.")
    ] = None,
    device: DeviceOrConfig = None,
    seed: common.Seed = None,
    autotune: common.Autotune = None,
) -> None:
    """Train an image network: pixel-loss pre-training, then SRGAN (content + adversarial
    loss). SRResNet, RRDBNet or SRVGG, from scratch or fine-tuned from a pretrained model
    (--init anime-video); checkpoints work with `srgan upscale/eval --model RUN`."""
    from srgan.training.recipes.srgan_config import EXAMPLE_CONFIG, load_image_config

    if example_config is not None:
        common.write_example(example_config, EXAMPLE_CONFIG)
        return
    quick = {
        "pretrain.steps": pretrain_steps,
        "gan.steps": train_steps,
        "checkpoint.interval": checkpoint_interval,
        "val_interval": val_interval,
        "data.batch_size": batch_size,
        "data.train": train_images,
        "data.val": val,
        "output_dir": output,
        "model.arch": arch,
        "model.init": init,
        "loss.perceptual.vgg_weights": vgg_weights,
        "device": device,
        "seed": seed,
        "autotune.enabled": autotune,
    }
    config = load_image_config(config_file, [*(overrides or []), *common.quick_flags(quick)])
    if print_config:
        common.show_config(config)
        return
    from srgan.training.recipes.srgan import SRGANRecipe

    common.train(SRGANRecipe(config), resume, fresh)
