"""Overlap reading and writing files with computing: a three-stage pipeline of threads.

For a folder, the next image is read and decoded, and the previous result encoded and
written, while the network computes the current one, so that with N files the wall time
approaches N x the compute time. One reader thread, `workers` compute threads and one
writer thread pass jobs through two bounded queues; the backends (ONNX Runtime, ncnn,
PyTorch) and the image codecs release the GIL while they work.

Memory: besides the images being computed, at most `queued` decoded inputs wait for a
worker and one result waits for the writer, so memory is bounded by the worker count,
never by the number of files. A failure in any stage is that file's outcome; the other
files go on. On Ctrl-C (or any exception in the caller's thread) the queued inputs are
dropped, the images being computed finish and are written, and the exception propagates.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from srgan.imaging.rows import RowStream

In = TypeVar("In")
Out = TypeVar("Out")

_POLL_S = 0.1
_END = object()


@dataclass(frozen=True)
class Stages(Generic[In, Out]):
    """How to process one file, in three parts that can overlap across files."""

    read: Callable[[Path], In]  # source -> decoded input
    compute: Callable[[In], Out]  # input -> result (the network)
    write: Callable[[Out, Path], None]  # result -> target (encode, then write atomically)


@dataclass
class Timings:
    """Seconds spent per named step, summed over files (safe across threads)."""

    seconds: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextlib.contextmanager
    def measure(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def describe(self) -> str:
        return ", ".join(f"{name} {value:.2f} s" for name, value in self.seconds.items())


@dataclass(frozen=True)
class Finished:
    """A file through the pipeline: its index in the input, and the error if it failed."""

    index: int
    error: BaseException | None
    seconds: float  # time spent on it in all three stages


def run_pipeline(
    sources: Sequence[tuple[Path, Path]],
    stages: Stages[Any, Any],
    workers: int = 1,
    queued: int = 1,
    on_finished: Callable[[Finished], None] | None = None,
) -> list[Finished]:
    """Process (source, target) pairs through `stages`; `on_finished` is called in the
    caller's thread as each file is done, in completion order."""
    if workers < 1 or queued < 1:
        raise ValueError("workers and queued must be at least 1")
    inputs: queue.Queue[object] = queue.Queue(maxsize=queued)
    results: queue.Queue[object] = queue.Queue(maxsize=1)
    finished: queue.Queue[Finished] = queue.Queue()
    stop = threading.Event()
    active_workers = [workers]
    lock = threading.Lock()

    def put(target: queue.Queue[object], item: object) -> bool:
        """Blocking put that gives up when stopping (False)."""
        while not stop.is_set():
            try:
                target.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for index, (source, _target) in enumerate(sources):
                if stop.is_set():
                    break
                started = time.perf_counter()
                try:
                    item = stages.read(source)
                except Exception as exc:
                    finished.put(Finished(index, exc, time.perf_counter() - started))
                    continue
                if not put(inputs, (index, item, time.perf_counter() - started)):
                    break
        finally:
            for _ in range(workers):
                inputs.put(_END)  # never blocks for long: the workers drain the queue

    def worker() -> None:
        try:
            while (entry := inputs.get()) is not _END:
                if stop.is_set():
                    continue  # Ctrl-C: queued inputs are dropped
                index, item, spent = entry  # type: ignore[misc]
                started = time.perf_counter()
                try:
                    result = stages.compute(item)
                except Exception as exc:
                    finished.put(Finished(index, exc, spent + time.perf_counter() - started))
                    continue
                del item
                spent += time.perf_counter() - started
                while True:  # a computed result is always written, even when stopping
                    try:
                        results.put((index, result, spent), timeout=_POLL_S)
                        break
                    except queue.Full:
                        continue
                del result
        finally:
            with lock:
                active_workers[0] -= 1
                last = active_workers[0] == 0
            if last:
                results.put(_END)

    def writer() -> None:
        while (entry := results.get()) is not _END:
            index, result, spent = entry  # type: ignore[misc]
            started = time.perf_counter()
            try:
                stages.write(result, sources[index][1])
                error = None
            except Exception as exc:
                error = exc
            del result
            finished.put(Finished(index, error, spent + time.perf_counter() - started))

    threads = [
        threading.Thread(target=reader, name="srgan-read", daemon=True),
        *(
            threading.Thread(target=worker, name=f"srgan-compute-{n}", daemon=True)
            for n in range(workers)
        ),
        threading.Thread(target=writer, name="srgan-write", daemon=True),
    ]
    for thread in threads:
        thread.start()
    done: list[Finished] = []
    try:
        while len(done) < len(sources):
            try:
                item = finished.get(timeout=_POLL_S)
            except queue.Empty:
                if not any(thread.is_alive() for thread in threads):
                    break
                continue
            done.append(item)
            if on_finished is not None:
                on_finished(item)
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join()
        raise
    for thread in threads:
        thread.join()
    return done


@dataclass
class Prefetched:
    """`rows` computed one block ahead in a thread of their own; `waited` is how long the
    consumer waited for blocks (the rest of its time is its own work: encoding)."""

    rows: RowStream
    waited: float = 0.0


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def prefetched(rows: RowStream, timings: Timings | None = None) -> Prefetched:
    """Let the blocks of `rows` (bands of a tiled upscale) be made in a thread while the
    consumer handles the previous one, so that a writer encodes band k as band k+1
    computes. At most one finished block waits. The thread starts on the first block
    asked for and is joined when the stream ends or is abandoned (after the band being
    computed); an error in it is raised in the consumer. `timings` gets "compute"."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()
    result = Prefetched(rows)

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(rows.blocks)
        try:
            while True:
                started = time.perf_counter()
                block = next(source, _END)
                if timings is not None:
                    timings.add("compute", time.perf_counter() - started)
                if block is _END or not put(block):
                    break
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Failed(exc))
            return
        put(_END)

    def blocks() -> Iterator[np.ndarray]:
        thread = threading.Thread(target=produce, name="srgan-bands", daemon=True)
        thread.start()
        try:
            while True:
                started = time.perf_counter()
                item = handoff.get()
                result.waited += time.perf_counter() - started
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            thread.join()

    result.rows = RowStream(rows.height, rows.width, rows.channels, rows.dtype, blocks())
    return result
