"""Checkpoints: weights as safetensors plus a training-state file, written atomically.

A checkpoint is a folder `checkpoints/step_0001000/` holding `generator.safetensors`
(loadable by `srgan upscale --model`), `discriminator.safetensors` when there is one, and
`state.pt` (optimizers, schedulers, RNG states, step, data position). The folder is
written under a temporary name and renamed, so a crash never leaves a half checkpoint.
`latest` and `best` are relative symbolic links (plain files naming the folder where
links are not possible).
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from srgan.errors import BadInputError

STATE_FILE = "state.pt"


def rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    folder: Path,
    step: int,
    weights: dict[str, dict[str, torch.Tensor]],
    state: dict[str, Any],
) -> Path:
    """Write `folder/step_XXXXXXX` atomically (each `weights` entry as NAME.safetensors,
    `state` as state.pt) and point `latest` at it."""
    target = step_folder(folder, step)
    temp = folder / f".step_{step:07d}.{secrets.token_hex(4)}.part"
    temp.mkdir(parents=True)
    try:
        for name, tensors in weights.items():
            plain = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(plain, str(temp / f"{name}.safetensors"))
        torch.save({**state, "step": step}, temp / STATE_FILE)
        if target.exists():
            shutil.rmtree(target)
        os.replace(temp, target)
    finally:
        if temp.exists():
            shutil.rmtree(temp)
    point(folder, "latest", target)
    return target


def step_folder(folder: Path, step: int) -> Path:
    return folder / f"step_{step:07d}"


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
    """The checkpoint a pointer names, or None."""
    link = folder / name
    if link.is_symlink():
        target = folder / os.readlink(link)
    elif link.is_file():
        target = folder / link.read_text().strip()
    else:
        return None
    return target if (target / STATE_FILE).is_file() else None


def load_checkpoint(checkpoint: Path, modules: dict[str, torch.nn.Module]) -> dict[str, Any]:
    """Load the weights into `modules` and return the training state."""
    if not (checkpoint / STATE_FILE).is_file():
        raise BadInputError(f"{checkpoint}: not a training checkpoint (no {STATE_FILE})")
    for name, module in modules.items():
        path = checkpoint / f"{name}.safetensors"
        if path.is_file():
            module.load_state_dict(load_file(str(path)))
    # state.pt holds RNG states (numpy objects), so it is a full pickle: resume only runs
    # you made yourself. The weights users share are the safetensors files.
    return torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
