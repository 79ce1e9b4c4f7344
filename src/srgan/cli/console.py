"""Output for the command line: messages on stderr, results on stdout, progress bars."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from srgan.user_files import shown

stderr = Console(stderr=True, highlight=False)


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
        stderr.print(f"srgan: {level}: {message}", markup=False, soft_wrap=True)
        if record.exc_info and verbosity.verbose:  # -v: the traceback behind the line
            stderr.print(logging.Formatter().formatException(record.exc_info), markup=False)


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
        stderr.print(f"srgan: {shown(message)}", markup=False, soft_wrap=True)


def error(message: str) -> None:
    stderr.print(f"srgan: error: {shown(message)}", markup=False, soft_wrap=True)


@dataclass
class ProgressTask:
    """Advance one step per finished item; a no-op when progress is hidden."""

    progress: Progress | None
    task_id: int | None

    def advance(self, _item: object = None) -> None:
        if self.progress is not None and self.task_id is not None:
            self.progress.advance(self.task_id)  # type: ignore[arg-type]


_COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
    TextColumn("eta"),
    TimeRemainingColumn(),
)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[ProgressTask]:
    """A progress bar with ETA on stderr; hidden with -q or when there is one item."""
    if verbosity.quiet or total <= 1:
        yield ProgressTask(None, None)
        return
    with Progress(*_COLUMNS, console=stderr, transient=False) as progress:
        yield ProgressTask(progress, progress.add_task(description, total=total))


@contextmanager
def tile_progress(name: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A bar over the tiles of one image; a no-op with -q or when `enabled` is False."""
    if verbosity.quiet or not enabled or not stderr.is_terminal:
        yield lambda done, total: None
        return
    with Progress(*_COLUMNS, console=stderr, transient=True) as progress:
        task = progress.add_task(name, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


class _RateColumn(ProgressColumn):
    """Items per second, e.g. '3.2 fps'."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} {self.unit}" if speed else f"-- {self.unit}")


@contextmanager
def rate_progress(name: str, unit: str = "fps") -> Iterator[Callable[[int, int | None], None]]:
    """A bar with the rate and ETA for a long run of items (video frames); `update(done,
    total)` with total None when unknown. A no-op with -q or when stderr is no terminal."""
    if verbosity.quiet or not stderr.is_terminal:
        yield lambda done, total: None
        return
    columns = (*_COLUMNS[:3], _RateColumn(unit), *_COLUMNS[3:])
    with Progress(*columns, console=stderr, transient=False) as progress:
        task = progress.add_task(name, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=max(total, done) if total else None)

        yield update


def print_result(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
