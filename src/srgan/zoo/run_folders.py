"""Training run folders as model sources: `checkpoints/latest` and `checkpoints/best` are
pointers (a relative symlink, or a small text file where links are not available) that
may only name a `step_N` folder beside them, so a shared run folder cannot make srgan
read a file anywhere else."""

from __future__ import annotations

import os
import re
from pathlib import Path

from srgan.errors import BadInputError

STEP_NAME = re.compile(r"step_\d{7,}")
GENERATOR_FILE = "generator.safetensors"


def pointed_step(folder: Path, name: str) -> Path | None:
    """The `step_N` folder that the pointer `folder/name` names, or None."""
    link = folder / name
    try:
        if link.is_symlink():
            target = os.readlink(link)
        elif link.is_file() and link.stat().st_size < 256:
            target = link.read_text().strip()
        else:
            return None
    except (OSError, UnicodeDecodeError):
        return None
    return folder / target if STEP_NAME.fullmatch(target) else None


def generator_in(folder: Path) -> Path:
    """The generator of a training checkpoint folder, or of a run folder's best (else
    latest) checkpoint."""
    candidates = [folder / GENERATOR_FILE]
    for name in ("best", "latest"):
        step = pointed_step(folder / "checkpoints", name)
        if step is not None:
            candidates.append(step / GENERATOR_FILE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BadInputError(
        f"{folder}: is a folder without a trained generator; give a weights file "
        "(.pth, .safetensors, .param) or a training checkpoint or run folder"
    )
