"""Checkpoints of a training run: which are written, which are kept, which one is `best`.

A checkpoint is a folder `checkpoints/step_0001000/` holding one `NAME.safetensors` per
network (`generator.safetensors` is what `srgan upscale/eval/video --model` load) and
`state.pt`: optimizers, schedules, clipping history, RNG states, data position, the
recipe's own state, all as tensors and plain values, so it loads with
`torch.load(weights_only=True)` (a file holding anything else is refused). The folder is
written under a temporary name and renamed: a crash never leaves half a checkpoint.

- Regular checkpoints every `interval` steps and at the end of the run, all kept;
  emergency checkpoints (Ctrl-C, SIGTERM, an error) are kept the same way.
- Best: the highest validation PSNR among the validations a `BestWindow` admits: steps in
  [start, end] and, when `last` is set, fewer than `last` steps before the newest admitted
  validation (an early lucky peak stops counting once it is `last` steps old). Ties go to
  the earlier step. A validation that may become best gets a candidate checkpoint;
  candidates that can no longer become best are deleted (never regular ones).
- `latest` and `best` are relative symbolic links (plain files naming the folder where
  links are not possible).
- A run folder holding a run is never overwritten: resume it, or `move_aside` renames it
  to `NAME.old-YYYYmmdd-HHMMSS` (nothing is deleted) so that a new run starts in NAME.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import secrets
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import save_file

from srgan.errors import BadInputError
from srgan.zoo.run_folders import pointed_step

STATE_FILE = "state.pt"
Kind = Literal["regular", "emergency", "candidate"]
Weights = dict[str, dict[str, torch.Tensor]]


def step_folder(folder: Path, step: int) -> Path:
    return folder / f"step_{step:07d}"


def plain(value: Any, where: str = "state") -> Any:
    """`value` with numpy scalars and arrays turned into Python numbers and tensors;
    TypeError for anything else that `torch.load(weights_only=True)` would not read back
    (so a state that saves also loads). Subclasses of the scalar types (which pickle as
    their own class) are refused; dicts such as OrderedDict become plain dicts."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: key {key!r} is not a str or int")
            out[key] = plain(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        items = [plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(f"{where}: a {type(value).__name__} is not plain data")


def save_checkpoint(folder: Path, step: int, weights: Weights, state: dict[str, Any]) -> Path:
    """Write `folder/step_XXXXXXX` atomically (each `weights` entry as NAME.safetensors,
    `state` as state.pt) and point `latest` at it."""
    payload = plain({**state, "step": step})
    target = step_folder(folder, step)
    temp = folder / f".step_{step:07d}.{secrets.token_hex(4)}.part"
    temp.mkdir(parents=True)
    try:
        for name, tensors in weights.items():
            contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(contiguous, str(temp / f"{name}.safetensors"))
        torch.save(payload, temp / STATE_FILE)
        if target.exists():
            shutil.rmtree(target)
        os.replace(temp, target)
    finally:
        if temp.exists():
            shutil.rmtree(temp)
    point(folder, "latest", target)
    return target


def rewrite_state(checkpoint: Path, step: int, state: dict[str, Any]) -> None:
    """Replace a checkpoint's state.pt atomically (its weights are unchanged)."""
    payload = plain({**state, "step": step})
    temp = checkpoint / f".{STATE_FILE}.{secrets.token_hex(4)}.part"
    try:
        torch.save(payload, temp)
        os.replace(temp, checkpoint / STATE_FILE)
    finally:
        temp.unlink(missing_ok=True)


def point(folder: Path, name: str, target: Path) -> None:
    """Make `folder/name` a relative link to `target` (or a file naming it)."""
    link = folder / name
    temp = folder / f".{name}.{secrets.token_hex(4)}"
    try:
        temp.symlink_to(target.name)
    except OSError:
        temp.write_text(target.name)
    os.replace(temp, link)


def resolve(folder: Path, name: str = "latest") -> Path | None:
    """The checkpoint a pointer names, or None. Only a `step_N` folder beside the pointer
    counts: a shared run folder cannot point a resume anywhere else."""
    checkpoint = pointed_step(folder, name)
    return checkpoint if checkpoint is not None and (checkpoint / STATE_FILE).is_file() else None


def load_state(checkpoint: Path) -> dict[str, Any]:
    """The training state of a checkpoint: tensors and plain values only; BadInputError
    (one line) for a file holding anything else, which is never loaded unrestricted."""
    path = checkpoint / STATE_FILE
    if not path.is_file():  # a FIFO or device in its place is not read either
        raise BadInputError(f"{checkpoint}: not a training checkpoint (no {STATE_FILE})")
    try:
        try:
            state = _load_restricted(path)
        except pickle.UnpicklingError as exc:
            if "numpy" not in str(exc):
                raise
            # The states of srgan's earlier trainers held numpy's RNG state as an array:
            # read with numpy's array types allowed (their objects still go through the
            # restricted unpickler) only to name them as such.
            _load_restricted(path, allow_numpy_arrays=True)
            raise BadInputError(
                f"{path}: a training state from before srgan's training engine, which cannot "
                "be resumed; start a new run from its weights (--init RUN)"
            ) from exc
    except pickle.UnpicklingError as exc:
        # Foreign objects, or pickle opcodes srgan never writes (raw pickles of protocol
        # 4+): either way only an unrestricted load could read it, and that runs code.
        if "global" in str(exc).lower():
            what = "objects other than tensors and plain data"
        elif _starts_like_a_pickle(path):
            what = "pickle opcodes srgan never writes"
        else:
            raise BadInputError(
                f"{path}: not a readable training state (not a torch file)"
            ) from exc
        raise BadInputError(
            f"{path}: refused: it holds {what}, and loading it unrestricted could run code "
            "(srgan writes only plain training states)"
        ) from exc
    except BadInputError:
        raise
    except Exception as exc:  # zip, pickle and storage errors have many classes
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise BadInputError(f"{path}: not a readable training state ({text[:200]})") from exc
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise BadInputError(f"{path}: not a training state (no step number)")
    return state


def _starts_like_a_pickle(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(1) == b"\x80"  # the PROTO opcode that opens pickles of protocol 2+


_NUMPY_ARRAY_GLOBALS: list[Any] = [
    (np.ndarray.__reduce__(np.zeros(0))[0], "numpy.core.multiarray._reconstruct"),
    (np.ndarray.__reduce__(np.zeros(0))[0], "numpy._core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
]


def _load_restricted(path: Path, allow_numpy_arrays: bool = False) -> Any:
    scope = (
        torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS)
        if allow_numpy_arrays
        else contextlib.nullcontext()
    )
    with scope, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes on legacy formats
        return torch.load(path, map_location="cpu", weights_only=True)


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
        self._written: int | None = None  # the step this process last wrote

    def regular_due(self, step: int, end: int) -> bool:
        return step % self.interval == 0 or step == end

    def save(
        self, step: int, weights: Weights, state: dict[str, Any], kind: Kind
    ) -> tuple[Path, bool]:
        """Write the checkpoint of `step` (its state includes this manager's) and point
        `latest` at it; returns its folder and whether anything was written. A step
        written already is not written twice: a candidate that becomes regular only has
        its state rewritten."""
        target = step_folder(self.folder, step)
        if self._written == step and target.is_dir():
            if kind == "candidate" or step not in self.candidates:
                return target, False
            self.candidates.discard(step)
            self.kept.add(step)
            rewrite_state(target, step, {**state, "checkpoint_manager": self.state_dict()})
            return target, True
        if kind == "candidate":
            self.candidates.add(step)
        else:
            self.kept.add(step)
            self.candidates.discard(step)
        state = {**state, "checkpoint_manager": self.state_dict()}
        saved = save_checkpoint(self.folder, step, weights, state)
        self._written = step
        return saved, True

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
            best = step_folder(self.folder, self.best[0])
            if best.is_dir():
                point(self.folder, "best", best)
        admitted = {s for s, _ in self.window.admitted(self.validations)}
        best_step = self.best[0] if self.best else None
        dropped = []
        for step in sorted(self.candidates):
            if step == best_step or (self.window.last is not None and step in admitted):
                continue
            shutil.rmtree(step_folder(self.folder, step), ignore_errors=True)
            self.candidates.discard(step)
            dropped.append(step)
        return dropped

    def state_dict(self) -> dict[str, Any]:
        return {
            "validations": [[s, p] for s, p in self.validations],
            "kept": sorted(self.kept),
            "candidates": sorted(self.candidates),
            "best": list(self.best) if self.best else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.validations = [(int(s), float(p)) for s, p in state["validations"]]
        self.kept = {int(s) for s in state["kept"]}
        self.candidates = {int(s) for s in state["candidates"]}
        best = state["best"]
        self.best = (int(best[0]), float(best[1])) if best else None


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
