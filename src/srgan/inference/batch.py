"""Process many files: discovery, sharding, skip-and-resume, parallel workers, a report.

The runner never prints; it reports each finished file through a callback. A failing
file is recorded and the others go on. Outputs are written atomically by the caller's
`process` function, so a file that exists is complete, which makes `skip_existing` a
correct resume after an interruption.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from srgan.errors import BadInputError, SrganError
from srgan.imaging.io import READ_EXTENSIONS
from srgan.inference.files import check_outputs, output_name, real_path
from srgan.inference.pipeline import Finished, Stages, run_pipeline
from srgan.user_files import check_regular, shown

log = logging.getLogger(__name__)

Process = Callable[[Path, Path], None]
"""process(source, target), or `Stages` whose reading and writing overlap the compute."""


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    name: str  # the source path relative to the input folder, for reports


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: str  # "done", "skipped" or "failed"
    error: str | None = None
    seconds: float = 0.0


@dataclass
class BatchReport:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def names(self, status: str) -> list[str]:
        return sorted(o.job.name for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def as_dict(self) -> dict[str, object]:
        return {
            "done": self.names("done"),
            "skipped": self.names("skipped"),
            "failed": [{"file": o.job.name, "error": o.error} for o in self.failed],
            "counts": {status: len(self.names(status)) for status in ("done", "skipped", "failed")},
            "seconds": round(self.seconds, 3),
        }


def discover(
    folder: Path,
    recursive: bool = False,
    patterns: Sequence[str] = (),
    exclude: Path | None = None,
) -> list[Path]:
    """Image files under `folder` (relative paths, sorted). `patterns` are globs matched
    against the relative path and the file name; hidden files and folders are skipped, and
    so is `exclude` (an output folder inside the input folder).

    Every entry that is not a folder is listed, whatever kind of file it is (a pipe, a
    device, a symlink loop): the opener refuses those when the job runs, so that each is
    one failed file in the report. Symlinks to folders are not followed, so a cycle of
    them cannot make the walk endless, nor lead it out of `folder`."""
    if not folder.is_dir():
        raise BadInputError(f"{shown(folder)}: not a folder")
    skipped = real_path(exclude) if exclude is not None else None
    found = []
    for root, dirs, files in os.walk(folder):  # followlinks=False: see above
        kept = []
        for name in sorted(dirs) if recursive else ():
            path = Path(root) / name
            if path.is_symlink():
                log.info("%s: a symlink to a folder, not followed", shown(path))
            elif not name.startswith(".") and real_path(path) != skipped:
                kept.append(name)
        dirs[:] = kept
        for name in files:
            relative = (Path(root) / name).relative_to(folder)
            if name.startswith(".") or not _wanted(relative, patterns):
                continue
            found.append(relative)
    return sorted(found)


def _wanted(relative: Path, patterns: Sequence[str]) -> bool:
    if relative.suffix.lower() not in READ_EXTENSIONS:
        return False
    if not patterns:
        return True
    text = relative.as_posix()
    return any(fnmatch.fnmatch(text, p) or fnmatch.fnmatch(relative.name, p) for p in patterns)


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' (1-based i) -> (i - 1, n)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise BadInputError(f"--shard {text!r}: expected i/n, e.g. 2/4") from None
    if not 1 <= index <= count:
        raise BadInputError(f"--shard {text!r}: i must be between 1 and n")
    return index - 1, count


def select_shard(paths: Iterable[Path], index: int, count: int) -> list[Path]:
    """The files of shard `index` of `count`, chosen by a hash of the relative path: the
    same on every machine, and stable when files are added to the dataset."""
    return [p for p in paths if zlib.crc32(p.as_posix().encode()) % count == index]


def plan_jobs(
    source: Path, target: Path, relatives: Iterable[Path], suffix: str = "", ext: str | None = None
) -> list[Job]:
    """Mirror the folder structure of `source` under `target`."""
    jobs = [
        Job(source / rel, target / output_name(rel, suffix, ext), rel.as_posix())
        for rel in relatives
    ]
    check_outputs([(job.source, job.target) for job in jobs])
    return jobs


def plan(
    source: Path,
    target: Path,
    suffix: str = "",
    ext: str | None = None,
    recursive: bool = False,
    patterns: Sequence[str] = (),
    shard: tuple[int, int] | None = None,
) -> list[Job]:
    """Jobs for a file (to a file, or into an existing folder) or for a folder (to a folder,
    structure kept with `recursive`)."""
    if not os.path.lexists(source):
        raise BadInputError(f"{shown(source)}: no such file or folder")
    if source.is_dir():
        if target.exists() and not target.is_dir():
            raise BadInputError(
                f"{shown(target)}: input is a folder, so the output must be a folder"
            )
        relatives = discover(source, recursive, patterns, exclude=target)
        if not relatives:
            raise BadInputError(f"{shown(source)}: no images found")
        if shard is not None:
            relatives = select_shard(relatives, *shard)
        return plan_jobs(source, target, relatives, suffix, ext)
    check_regular(source, "an image file or a folder")
    if target.is_dir():
        destination = target / output_name(Path(source.name), suffix, ext)
    else:
        destination = target if not ext or ext == "auto" else output_name(target, "", ext)
    check_outputs([(source, destination)])
    return [Job(source, destination, source.name)]


@contextmanager
def torch_threads(count: int):
    """Split the CPU between parallel workers so they do not oversubscribe it (PyTorch's
    pool only: without PyTorch loaded, the ncnn backend sizes its own threads)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_batch(
    jobs: Sequence[Job],
    process: Process | Stages,
    workers: int = 1,
    skip_existing: bool = False,
    chunk_size: int | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> BatchReport:
    """Run `process(source, target)` over the jobs with `workers` threads, handing them
    `chunk_size` files at a time (default 2 x workers); each worker holds one image, so
    memory grows with the workers, not with the number of files. Outputs are
    byte-identical whatever the worker count. On Ctrl-C the queued files are dropped and
    only the running ones finish (their outputs are complete or absent).

    Given `Stages`, the next file is read and the previous one written while the workers
    compute (`srgan.inference.pipeline`)."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    in_flight = max(workers, chunk_size or 2 * workers)
    report = BatchReport()
    started = time.perf_counter()

    def record(outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    pending = []
    for job in jobs:
        if skip_existing and job.target.exists():
            record(Outcome(job, "skipped"))
        else:
            pending.append(job)

    cores = os.cpu_count() or 1
    if isinstance(process, Stages):

        def finished(item: Finished) -> None:
            job = pending[item.index]
            if item.error is None:
                record(Outcome(job, "done", None, item.seconds))
            else:
                record(Outcome(job, "failed", failure_message(job.source, item.error)))

        with torch_threads(cores // workers):
            pairs = [(job.source, job.target) for job in pending]
            run_pipeline(pairs, process, workers, max(1, in_flight - workers), finished)
        report.seconds = time.perf_counter() - started
        return report
    pool = ThreadPoolExecutor(workers)
    try:
        with torch_threads(cores // workers):
            running: dict[Future[Outcome], Job] = {}
            for job in pending:
                running[pool.submit(_run_job, process, job)] = job
                if len(running) >= in_flight:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.pop(future)
                        record(future.result())
            for future in list(running):
                record(future.result())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: finish the running files only
        raise
    pool.shutdown()
    report.seconds = time.perf_counter() - started
    return report


def failure_message(source: Path, exc: BaseException) -> str:
    """One line naming the file, for errors srgan did not anticipate (disk full, an
    encoder's size limit, out of memory)."""
    if isinstance(exc, SrganError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"{source}: out of memory; try a smaller --tile"
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"{source}: {type(exc).__name__}: {detail}"


def _run_job(process: Process, job: Job) -> Outcome:
    started = time.perf_counter()
    try:
        process(job.source, job.target)
    except Exception as exc:  # one bad file must never stop the batch
        return Outcome(job, "failed", failure_message(job.source, exc))
    return Outcome(job, "done", None, time.perf_counter() - started)
