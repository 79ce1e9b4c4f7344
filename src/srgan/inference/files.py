"""Map input files or folders to output paths."""

from __future__ import annotations

from pathlib import Path

from srgan.errors import BadInputError
from srgan.imaging.io import list_images, output_format


def plan_outputs(
    source: Path, target: Path, suffix: str = "", ext: str | None = None
) -> list[tuple[Path, Path]]:
    """(input, output) pairs. A folder maps to a folder (created later by the caller), names
    kept, plus `_suffix`; `ext` (without dot) changes the format. A single input may go to
    a file path or into an existing folder."""
    if not source.exists():
        raise BadInputError(f"{source}: no such file or folder")
    extension = f".{ext.lower().lstrip('.')}" if ext and ext != "auto" else None

    def named(path: Path, folder: Path) -> Path:
        stem = f"{path.stem}_{suffix}" if suffix else path.stem
        return folder / f"{stem}{extension or path.suffix}"

    if source.is_dir():
        if target.exists() and not target.is_dir():
            raise BadInputError(f"{target}: input is a folder, so the output must be a folder")
        pairs = [(path, named(path, target)) for path in list_images(source)]
        if not pairs:
            raise BadInputError(f"{source}: no images found")
    elif target.is_dir():
        pairs = [(source, named(source, target))]
    else:
        pairs = [(source, target.with_suffix(extension) if extension else target)]

    _check_outputs(pairs)
    return pairs


def _check_outputs(pairs: list[tuple[Path, Path]]) -> None:
    """No output may replace an input (its own or another's), and no two may collide."""
    inputs = {path.resolve() for path, _ in pairs}
    seen: dict[Path, Path] = {}
    for path, out in pairs:
        output_format(out)
        resolved = out.resolve()
        if resolved in inputs:
            raise BadInputError(f"{out}: output would overwrite an input; choose another name")
        if resolved in seen:
            raise BadInputError(
                f"{out}: both {seen[resolved].name} and {path.name} would be written there"
            )
        seen[resolved] = path
