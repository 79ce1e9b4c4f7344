"""Output for the command line: messages on stderr, results on stdout, progress bars.

Messages are plain lines on stderr; Rich is imported only for a progress bar (start-up
stays short, and `-q` runs never load it). While a bar is shown, Rich routes the lines
written to stderr above it.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from srgan.user_files import shown

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn


def _line(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


@functools.cache
def _rich_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


@dataclass
class Verbosity:
    quiet: bool = False
    verbose: bool = False


verbosity = Verbosity()
_LIBRARY_LOGGERS = ("tifffile", "imagecodecs", "PIL")


class _OneLineHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        message = shown(" ".join(record.getMessage().split()))
        _line(f"srgan: {level}: {message}")
        if record.exc_info and verbosity.verbose:  # -v: the traceback behind the line
            _line(logging.Formatter().formatException(record.exc_info))


def configure(quiet: bool, verbose: bool) -> None:
    """-q keeps errors only, -v adds explanations (INFO) to the default warnings."""
    verbosity.quiet, verbosity.verbose = quiet, verbose
    logger = logging.getLogger("srgan")
    logger.handlers[:] = [_OneLineHandler()]
    logger.propagate = False
    logger.setLevel(logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING)
    # Libraries' Python warnings are noise to a user; -v shows them as one-line notes.
    logging.captureWarnings(True)
    library_warnings = logging.getLogger("py.warnings")
    library_warnings.handlers[:] = [_OneLineHandler()]
    library_warnings.propagate = False
    library_warnings.setLevel(logging.WARNING if verbose and not quiet else logging.CRITICAL)
    # tifffile logs what it finds odd in a file (Python's last-resort handler would print
    # it raw): -v shows it as one-line notes, otherwise the one-line error says enough.
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers[:] = [_OneLineHandler()]
        library.propagate = False
        library.setLevel(logging.WARNING if verbose and not quiet else logging.CRITICAL + 1)


def note(message: str) -> None:
    """A summary line on stderr, hidden with -q. Control characters (from file names) are
    escaped, so that a message stays one line and cannot drive the terminal."""
    if not verbosity.quiet:
        _line(f"srgan: {shown(message)}")


def error(message: str) -> None:
    _line(f"srgan: error: {shown(message)}")


@dataclass
class ProgressTask:
    """Advance one step per finished item; a no-op when progress is hidden."""

    progress: Progress | None
    task_id: int | None

    def advance(self, _item: object = None) -> None:
        if self.progress is not None and self.task_id is not None:
            self.progress.advance(self.task_id)  # type: ignore[arg-type]


def _columns(rate_unit: str | None = None) -> tuple[ProgressColumn, ...]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    rate = (_rate_column(rate_unit),) if rate_unit else ()
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *rate,
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )


def _progress(rate_unit: str | None = None, transient: bool = False) -> Progress:
    from rich.progress import Progress

    return Progress(*_columns(rate_unit), console=_rich_console(), transient=transient)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[ProgressTask]:
    """A progress bar with ETA on stderr; hidden with -q or when there is one item."""
    if verbosity.quiet or total <= 1:
        yield ProgressTask(None, None)
        return
    with _progress() as progress:
        yield ProgressTask(progress, progress.add_task(description, total=total))


@contextmanager
def tile_progress(name: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A bar over the tiles of one image; a no-op with -q or when `enabled` is False."""
    if verbosity.quiet or not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    with _progress(transient=True) as progress:
        task = progress.add_task(name, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _rate_column(unit: str) -> ProgressColumn:
    """Items per second, e.g. '3.2 fps'."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f} {unit}" if speed else f"-- {unit}")

    return RateColumn()


@contextmanager
def rate_progress(name: str, unit: str = "fps") -> Iterator[Callable[[int, int | None], None]]:
    """A bar with the rate and ETA for a long run of items (video frames); `update(done,
    total)` with total None when unknown. A no-op with -q or when stderr is no terminal."""
    if verbosity.quiet or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    with _progress(rate_unit=unit) as progress:
        task = progress.add_task(name, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=max(total, done) if total else None)

        yield update


def print_result(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
