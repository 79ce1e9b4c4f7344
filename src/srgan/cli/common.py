"""Pieces shared by the commands: option types and the per-file loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import console
from srgan.errors import BadInputError, SrganError

MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        help="Refuse inputs with more pixels than this (decompression bombs); 0 = no limit.",
        min=0,
    ),
]
Quality = Annotated[
    int, typer.Option("--quality", help="JPEG/WebP quality (100 = lossless WebP).", min=1, max=100)
]
DEFAULT_QUALITY = 95


def process_files(
    pairs: list[tuple[Path, Path]], action: Callable[[Path, Path], None], verb: str
) -> None:
    """Run `action(src, dst)` on each pair with a progress bar.

    One file: errors propagate (exit 2 for bad input). Several: a failing file is
    reported with its name and skipped, and the command ends with exit code 1 after the
    others.
    """
    if len(pairs) == 1:
        src, dst = pairs[0]
        _run_one(action, src, dst)
        return
    failures: list[str] = []
    with console.progress_bar(verb, len(pairs)) as bar:
        for src, dst in pairs:
            try:
                _run_one(action, src, dst)
            except SrganError as exc:
                failures.append(str(exc))
                console.error(str(exc))
            bar.advance()
    if failures:
        raise SrganError(f"{len(failures)} of {len(pairs)} files failed (listed above)")


def _run_one(action: Callable[[Path, Path], None], src: Path, dst: Path) -> None:
    """Unexpected failures (disk full, out of memory, an encoder's limit) name the file."""
    try:
        action(src, dst)
    except (SrganError, KeyboardInterrupt):
        raise
    except MemoryError:
        raise SrganError(f"{src}: out of memory; try a smaller --tile") from None
    except Exception as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise SrganError(f"{src}: {type(exc).__name__}: {detail}") from exc


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (height, width)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise BadInputError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    if width <= 0 or height <= 0:
        raise BadInputError(f"--size {text!r}: width and height must be positive")
    return height, width
