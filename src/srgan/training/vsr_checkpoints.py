"""Which checkpoints a video training run keeps, which one is `best`, and what happens
to a run folder that already holds a run.

- Regular checkpoints: every `interval` steps and at the end of the run, all kept;
  emergency checkpoints (Ctrl-C, SIGTERM, a crash) are kept the same way.
- Best: the checkpoint with the highest validation PSNR among the validations admitted
  by a `BestWindow`: steps in [start, end] and, when `last` is set, fewer than `last`
  steps before the newest admitted validation (a sliding window: an early lucky peak
  stops counting once it is `last` steps old). Ties go to the earlier step. A
  validation that may become best gets a candidate checkpoint; candidates that can no
  longer become best are deleted (never regular ones).
- `latest` and `best` are relative links made by `checkpoints.point`.
- A run folder holding a run is never overwritten: resume it, or `move_aside` renames it
  to `NAME.old-YYYYmmdd-HHMMSS` (nothing is deleted) so the new run starts in NAME.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from srgan.training import checkpoints

Kind = Literal["regular", "emergency", "candidate"]


@dataclass(frozen=True)
class BestWindow:
    start: int = 0
    end: int | None = None
    last: int | None = None

    def in_range(self, step: int) -> bool:
        return step >= self.start and (self.end is None or step <= self.end)

    def admitted(self, validations: list[tuple[int, float]]) -> list[tuple[int, float]]:
        ranged = [(s, p) for s, p in validations if self.in_range(s)]
        if not ranged or self.last is None:
            return ranged
        newest = max(s for s, _ in ranged)
        return [(s, p) for s, p in ranged if newest - s < self.last]


class CheckpointManager:
    def __init__(self, folder: Path, interval: int, window: BestWindow = BestWindow()) -> None:
        self.folder = folder
        self.interval = interval
        self.window = window
        self.validations: list[tuple[int, float]] = []
        self.kept: set[int] = set()  # regular and emergency checkpoints
        self.candidates: set[int] = set()  # saved only because they may become best
        self.best: tuple[int, float] | None = None

    def regular_due(self, step: int, end: int) -> bool:
        return step % self.interval == 0 or step == end

    def save(
        self,
        step: int,
        weights: dict[str, dict[str, torch.Tensor]],
        state: dict[str, Any],
        kind: Kind = "regular",
    ) -> Path:
        """Write the checkpoint of `step` (its state includes this manager's) and point
        `latest` at it."""
        if kind == "candidate":
            self.candidates.add(step)
        else:
            self.kept.add(step)
            self.candidates.discard(step)
        state = {**state, "checkpoint_manager": self.state_dict()}
        return checkpoints.save_checkpoint(self.folder, step, weights, state)

    def observe(self, step: int, psnr: float) -> tuple[bool, bool]:
        """Record a validation. Returns (save a candidate now?, is it the new best?)."""
        self.validations.append((step, psnr))
        admitted = self.window.admitted(self.validations)
        best = max(admitted, key=lambda sp: (sp[1], -sp[0])) if admitted else None
        changed = best is not None and best != self.best
        self.best = best
        may_win = any(s == step for s, _ in admitted) and self.window.last is not None
        is_best = best is not None and best[0] == step
        return (is_best or may_win) and step not in self.kept, changed

    def settle(self) -> list[int]:
        """Point `best` at the best checkpoint and delete candidates that can no longer
        become best; returns the deleted steps."""
        if self.best is not None:
            best = checkpoints.step_folder(self.folder, self.best[0])
            if best.is_dir():
                checkpoints.point(self.folder, "best", best)
        admitted = {s for s, _ in self.window.admitted(self.validations)}
        best_step = self.best[0] if self.best else None
        dropped = []
        for step in sorted(self.candidates):
            if step == best_step or (self.window.last is not None and step in admitted):
                continue
            shutil.rmtree(checkpoints.step_folder(self.folder, step), ignore_errors=True)
            self.candidates.discard(step)
            dropped.append(step)
        return dropped

    def state_dict(self) -> dict[str, Any]:
        return {
            "validations": list(self.validations),
            "kept": sorted(self.kept),
            "candidates": sorted(self.candidates),
            "best": self.best,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.validations = [(int(s), float(p)) for s, p in state["validations"]]
        self.kept = set(state["kept"])
        self.candidates = set(state["candidates"])
        self.best = tuple(state["best"]) if state["best"] else None  # type: ignore[assignment]


def holds_run(run_dir: Path) -> bool:
    """Whether `run_dir` already holds a training run (a log or a checkpoint)."""
    ckpt = run_dir / "checkpoints"
    return (run_dir / "training.log").exists() or (
        ckpt.is_dir() and any(p.name.startswith("step_") for p in ckpt.iterdir())
    )


def move_aside(run_dir: Path) -> Path:
    """Rename `run_dir` to `NAME.old-YYYYmmdd-HHMMSS` (with a counter if taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    count = 1
    while target.exists():
        count += 1
        target = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{count}")
    os.rename(run_dir, target)
    return target
