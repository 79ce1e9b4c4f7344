"""`srgan train-vsr`: train the bidirectional recurrent video SR network."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from srgan.cli import console
from srgan.cli.common import OptionalDevice
from srgan.errors import BadInputError
from srgan.training.progress import format_duration


def train_vsr(
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML, YAML or JSON configuration.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any key: section.key=value (repeatable)."),
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved configuration and stop.")
    ] = False,
    example_config: Annotated[
        Path | None, typer.Option("--example-config", help="Write a commented example and stop.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Optimizer steps.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1)] = None,
    train: Annotated[
        Path | None,
        typer.Option("--train", help="Training clips: folder of clip folders/videos, or a video."),
    ] = None,
    val: Annotated[Path | None, typer.Option("--val", help="Validation clips folder.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run folder.")] = None,
    device: OptionalDevice = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in the run folder.")
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Rename an existing run to RUN.old-<time> and start a new one in RUN."
        ),
    ] = False,
    autotune: Annotated[
        bool | None,
        typer.Option(
            "--autotune/--no-autotune",
            help="Measure and pick batch/crop/accumulation that fit in memory first.",
        ),
    ] = None,
) -> None:
    """Train BidirectionalRecurrentVSR on video clips (hybrid L1 + multi-scale + gradient
    loss, adaptive weights, warmup + cosine, checkpoints `srgan video --model` loads)."""
    from srgan.imaging.io import write_bytes_atomically
    from srgan.training.vsr_config import EXAMPLE_VSR_CONFIG, load_vsr_config

    if example_config is not None:
        write_bytes_atomically(example_config, EXAMPLE_VSR_CONFIG.encode())
        console.note(f"wrote {example_config}")
        return
    quick = {
        "steps": steps,
        "data.batch_size": batch_size,
        "data.train": train,
        "data.val": val,
        "output_dir": output,
        "device": device,
        "seed": seed,
        "autotune.enabled": None if autotune is None else str(autotune).lower(),
    }
    flags = [f"{key}={value}" for key, value in quick.items() if value is not None]
    config = load_vsr_config(config_file, [*(overrides or []), *flags])
    if print_config:
        import json

        console.print_result(json.dumps(config.model_dump(mode="json"), indent=2))
        return
    if config.data.train is None:
        raise BadInputError("set data.train (--train DIR_OR_VIDEO) to the training clips")
    resume = _resume_or_fresh(config.output_dir, resume, fresh)
    from srgan.training.vsr_trainer import VSRTrainer

    trainer = VSRTrainer(config, on_log=lambda record: console.note(describe(record)))
    last = trainer.run(resume=resume)
    console.note(f"done: {last / 'generator.safetensors'}")


def _resume_or_fresh(run_dir: Path, resume: bool, fresh: bool) -> bool:
    """Whether to resume; moves an old run aside for --fresh (or when asked to)."""
    from srgan.training.vsr_checkpoints import holds_run, move_aside

    if resume and fresh:
        raise BadInputError("--resume and --fresh exclude each other: choose one")
    if resume or not holds_run(run_dir):
        return resume
    if not fresh:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise BadInputError(
                f"{run_dir} already holds a run: add --resume to continue it or --fresh "
                "to move it aside and start again"
            )
        question = (
            f"{run_dir} already holds a run: [r]esume it, start [f]resh (the old run is "
            f"renamed to {run_dir.name}.old-<time>), or [a]bort?"
        )
        answer = ""
        while answer not in ("r", "f", "a"):
            choice = typer.prompt(question, default="a", err=True)
            answer = {"resume": "r", "fresh": "f", "abort": "a"}.get(choice.strip().lower(), "")
            answer = answer or choice.strip().lower()
        if answer == "r":
            return True
        if answer == "a":
            raise BadInputError("aborted: nothing changed")
    moved = move_aside(run_dir)
    console.note(f"moved the old run to {moved}; starting afresh in {run_dir}")
    return False


def describe(record: dict[str, Any]) -> str:
    """One console line for a training-log record."""
    step, event = record["step"], record.get("event")
    if "val_psnr" in record:
        return (
            f"step {step}: val PSNR {record['val_psnr']:.2f} dB (bicubic "
            f"{record['val_bicubic_psnr']:.2f}), SSIM {record['val_ssim']:.4f} "
            f"(bicubic {record['val_bicubic_ssim']:.4f})"
        )
    if event == "autotune_trial":
        verdict = "ok" if record["fits"] else "rejected"
        return (
            f"autotune: batch {record['batch_size']} x crop {record['crop']} x accumulation "
            f"{record['accumulation']}: {verdict}, {record['reason']}"
        )
    if event == "autotune":
        return (
            f"autotune: chose batch {record['batch_size']} x crop {record['crop']} x "
            f"accumulation {record['accumulation']} (effective batch {record['effective_batch']})"
        )
    if event == "loss_weights":
        weights = ", ".join(
            f"{k} {record['previous'][k]:.3g}->{v:.3g}" for k, v in record["weights"].items()
        )
        return f"step {step}: loss weights {weights}"
    if event == "plateau":
        return f"step {step}: validation plateau, learning rate x{record['lr_scale']:g}"
    if event == "best":
        return f"step {step}: best is step {record['best_step']} ({record['psnr']:.2f} dB)"
    if event is not None:
        return f"step {step}: {event.replace('_', ' ')} {record.get('path', '')}".rstrip()
    losses = ", ".join(f"{k} {record[k]:.4g}" for k in ("total", "l1", "multiscale", "gradient"))
    return (
        f"step {step} [{record['phase']}] lr {record['lr']:.1e}: {losses} | "
        f"{record['s_per_step']:.2f} s/step, ETA {format_duration(record['eta_s'])}"
    )
