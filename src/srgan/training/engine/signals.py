"""SIGTERM and Ctrl-C during training: the first one lets the current step finish, then
the run saves a checkpoint and stops; a second one stops at once (the emergency
checkpoint then holds the state before the unfinished step)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """Raised when a stop was asked for by a signal (the CLI exits with 130)."""


class StopRequest:
    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        """Catch SIGTERM and SIGINT while training (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: object) -> None:
            if self.signal is not None:
                raise Terminated(f"signal {signum} (twice)")
            self.signal = signum

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
