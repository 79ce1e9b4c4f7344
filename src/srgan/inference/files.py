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

    for path, out in pairs:
        output_format(out)
        if out.exists() and out.resolve() == path.resolve():
            raise BadInputError(f"{out}: output would overwrite its input; choose another name")
    return pairs
