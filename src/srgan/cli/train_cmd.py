"""`srgan train`: SRResNet pre-training then SRGAN, from one configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import console
from srgan.cli.common import OptionalDevice
from srgan.errors import BadInputError


def train(
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML, YAML or JSON configuration.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any key: section.key=value (repeatable)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in output_dir.")
    ] = False,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved configuration and stop.")
    ] = False,
    example_config: Annotated[
        Path | None, typer.Option("--example-config", help="Write a commented example and stop.")
    ] = None,
    pretrain_steps: Annotated[int | None, typer.Option("--pretrain-steps", min=0)] = None,
    train_steps: Annotated[
        int | None, typer.Option("--train-steps", min=0, help="GAN steps.")
    ] = None,
    checkpoint_interval: Annotated[int | None, typer.Option("--checkpoint-interval", min=1)] = None,
    val_interval: Annotated[int | None, typer.Option("--val-interval", min=1)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1)] = None,
    train_hr: Annotated[Path | None, typer.Option("--train-hr", help="Training HR folder.")] = None,
    val_hr: Annotated[Path | None, typer.Option("--val-hr", help="Validation HR folder.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run folder.")] = None,
    vgg_weights: Annotated[
        Path | None, typer.Option("--vgg-weights", help="torchvision vgg19-dcbb9e9d.pth.")
    ] = None,
    device: OptionalDevice = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
) -> None:
    """Train SRResNet (pixel loss) then SRGAN (VGG54 + adversarial), with checkpoints
    that `srgan upscale --model` and `srgan eval --model` use directly."""
    from srgan.imaging.io import write_bytes_atomically
    from srgan.training.config import EXAMPLE_CONFIG, load_config

    if example_config is not None:
        write_bytes_atomically(example_config, EXAMPLE_CONFIG.encode())
        console.note(f"wrote {example_config}")
        return
    quick = {
        "pretrain.steps": pretrain_steps,
        "gan.steps": train_steps,
        "checkpoint_interval": checkpoint_interval,
        "val_interval": val_interval,
        "data.batch_size": batch_size,
        "data.train_hr": train_hr,
        "data.val_hr": val_hr,
        "output_dir": output,
        "gan.vgg_weights": vgg_weights,
        "device": device,
        "seed": seed,
    }
    flags = [f"{key}={value}" for key, value in quick.items() if value is not None]
    config = load_config(config_file, [*(overrides or []), *flags])
    if print_config:
        import json

        console.print_result(json.dumps(config.model_dump(mode="json"), indent=2))
        return
    from srgan.training.trainer import Trainer

    if config.data.train_hr is None:
        raise BadInputError("set data.train_hr (--train-hr FOLDER) to the training images")

    def report(record: dict) -> None:
        console.note(describe(record))

    trainer = Trainer(config, on_log=report)
    last = trainer.run(resume=resume)
    console.note(f"done: {last / 'generator.safetensors'}")


def describe(record: dict) -> str:
    """One console line for a training-log record."""
    step = record["step"]
    if "val_psnr" in record:
        return f"step {step}: val PSNR {record['val_psnr']:.2f} dB, SSIM {record['val_ssim']:.4f}"
    if record.get("event") == "plateau":
        return f"step {step}: validation plateau, learning rate x{record['lr_scale']:g}"
    if "event" in record:
        return f"step {step}: {record['event']} {record.get('path', '')}".rstrip()
    shown = {k: v for k, v in record.items() if k not in _NOT_LOSSES and v is not None}
    losses = ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
    from srgan.training.progress import format_duration

    eta = record.get("eta_s")
    timing = f" | {record['steps_per_s']:.2f} it/s"
    if eta is not None:
        timing += f", ETA {format_duration(eta)}"
    return f"step {step} [{record['stage']}] lr {record['lr']:.1e}: {losses}{timing}"


_NOT_LOSSES = {"step", "stage", "lr", "steps_per_s", "eta_s", "peak_rss_mb", "gpu_peak_mb"}
