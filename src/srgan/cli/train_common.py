"""What `srgan train` and `srgan train-vsr` share: their common flags, the resume / fresh
decision for a run folder that already holds a run, and one console line per record."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from srgan.cli import console
from srgan.errors import BadInputError
from srgan.training.progress import format_duration

if TYPE_CHECKING:
    from srgan.training.config import RunConfig
    from srgan.training.engine.recipe import Recipe

ConfigFile = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML, YAML or JSON configuration.")
]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any key: section.key=value (repeatable)."),
]
PrintConfig = Annotated[
    bool, typer.Option("--print-config", help="Print the resolved configuration and stop.")
]
ExampleConfig = Annotated[
    Path | None, typer.Option("--example-config", help="Write a commented example and stop.")
]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in the run folder.")]
Fresh = Annotated[
    bool,
    typer.Option(
        "--fresh", help="Rename an existing run to RUN.old-<time> and start a new one in RUN."
    ),
]
Autotune = Annotated[
    bool | None,
    typer.Option(
        "--autotune/--no-autotune",
        help="Measure and pick batch/crop/accumulation that fit in memory first.",
    ),
]
BatchSize = Annotated[int | None, typer.Option("--batch-size", min=1)]
Val = Annotated[Path | None, typer.Option("--val", "--val-hr", help="Validation images or clips.")]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="Run folder.")]
Seed = Annotated[int | None, typer.Option("--seed")]
Arch = Annotated[
    str | None, typer.Option("--arch", help="model.arch: srresnet, rrdbnet, srvgg, vsr.")
]
Init = Annotated[
    str | None,
    typer.Option(
        "--init",
        help="model.init: start from natural, anime, anime-video, or a weights/run path.",
    ),
]
CheckpointInterval = Annotated[int | None, typer.Option("--checkpoint-interval", min=1)]
ValInterval = Annotated[int | None, typer.Option("--val-interval", min=1)]


def quick_flags(values: dict[str, Any]) -> list[str]:
    """`--set` assignments for the quick flags that were given."""
    flags = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, str | Path):
            value = json.dumps(str(value))  # strings stay strings (a path of digits, too)
        flags.append(f"{key}={value}")
    return flags


def write_example(path: Path, text: str) -> None:
    from srgan.imaging.io import write_bytes_atomically

    write_bytes_atomically(path, text.encode())
    console.note(f"wrote {path}")


def show_config(config: RunConfig) -> None:
    console.print_result(json.dumps(config.model_dump(mode="json"), indent=2))


def train(recipe: Recipe, resume: bool, fresh: bool) -> None:
    """Run `recipe` on the engine, reporting each record on the console."""
    from srgan.training.engine.loop import Engine

    resume = resume_or_fresh(recipe.config.output_dir, resume, fresh)
    engine = Engine(recipe, on_log=lambda record: console.note(describe(record)))
    last = engine.run(resume=resume)
    console.note(f"done: {last / 'generator.safetensors'}")


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def resume_or_fresh(run_dir: Path, resume: bool, fresh: bool) -> bool:
    """Whether to resume; moves an old run aside for --fresh (or when asked to)."""
    from srgan.training.engine.checkpoints import holds_run, move_aside

    if resume and fresh:
        raise BadInputError("--resume and --fresh exclude each other: choose one")
    if resume or not _is_main_process() or not holds_run(run_dir):
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


_NOT_LOSSES = {"step", "phase", "lr_phase", "lr", "s_per_step", "steps_per_s", "eta_s"}


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
    shown = {
        k: v
        for k, v in record.items()
        if k not in _NOT_LOSSES
        and not k.endswith("_mb")
        and not k.startswith("w_")
        and isinstance(v, int | float)
    }
    losses = ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
    timing = f"{record['steps_per_s']:.2f} it/s, ETA {format_duration(record['eta_s'])}"
    return (
        f"step {step} [{record['phase']}, {record['lr_phase']}] lr {record['lr']:.1e}: "
        f"{losses} | {timing}"
    )
