"""Output names and the checks that keep every input file safe."""

from __future__ import annotations

import os
from pathlib import Path

from srgan.errors import BadInputError
from srgan.imaging.io import output_format
from srgan.user_files import shown


def real_path(path: Path) -> Path:
    """`path` with symlinks resolved as far as they go: unlike `Path.resolve` (Python <
    3.13), a symlink loop does not raise; it is left for the opener to report."""
    return Path(os.path.realpath(path))


def output_name(relative: Path, suffix: str = "", ext: str | None = None) -> Path:
    """`dir/name.png` -> `dir/name_SUFFIX.EXT` (`ext` without dot; None or 'auto' keeps it)."""
    extension = f".{ext.lower().lstrip('.')}" if ext and ext != "auto" else relative.suffix
    stem = f"{relative.stem}_{suffix}" if suffix else relative.stem
    return relative.with_name(stem + extension)


def check_outputs(pairs: list[tuple[Path, Path]]) -> None:
    """Every output has a known format, and none replaces an input (its own or another's)
    or another output."""
    inputs = {real_path(path) for path, _ in pairs}
    seen: dict[Path, Path] = {}
    for path, out in pairs:
        output_format(out)
        resolved = real_path(out)
        if resolved in inputs:
            raise BadInputError(
                f"{shown(out)}: output would overwrite an input; choose another name"
            )
        if resolved in seen:
            raise BadInputError(
                f"{shown(out)}: both {shown(seen[resolved].name)} and {shown(path.name)} "
                "would be written there"
            )
        seen[resolved] = path
