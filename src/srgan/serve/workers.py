"""A bounded pool of worker threads that run the queued jobs, and the sweeper that
deletes expired ones. Threads suit this work: the backends release the GIL while they
compute, and a job is stopped between tiles through its `CancelToken`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from srgan.errors import BadInputError
from srgan.imaging.io import write_bytes_atomically
from srgan.serve.cache import ResultCache, link_or_copy
from srgan.serve.engine import Cancelled, CancelToken, Engine
from srgan.serve.metrics import Metrics
from srgan.serve.store import JobRecord, JobStore

log = logging.getLogger(__name__)

SHUTDOWN = "the server is shutting down"
DELETED = "deleted"
_PROGRESS_INTERVAL_S = 0.25
_IDLE_POLL_S = 1.0


class WorkerPool:
    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        cache: ResultCache,
        metrics: Metrics,
        workers: int,
        job_timeout_s: float,
    ) -> None:
        self.store = store
        self.engine = engine
        self.cache = cache
        self.metrics = metrics
        self.workers = workers
        self.job_timeout_s = job_timeout_s
        self._wake = threading.Condition()
        self._pending = False
        self._stopping = threading.Event()
        self._running: dict[str, CancelToken] = {}
        self._running_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"srgan-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """A job was queued: wake a sleeping worker."""
        with self._wake:
            self._pending = True
            self._wake.notify()

    def cancel(self, job_id: str, reason: str = DELETED) -> bool:
        """Stop a running job at its next tile; False if it is not running here."""
        with self._running_lock:
            token = self._running.get(job_id)
        if token is not None:
            token.cancel(reason)
        return token is not None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking jobs; running ones stop at their next tile and go back to the
        queue without counting as an attempt."""
        self._stopping.set()
        with self._running_lock:
            for token in self._running.values():
                token.cancel(SHUTDOWN)
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self.store.claim_next()
            except Exception:  # a locked or damaged database: keep the worker alive
                log.exception("could not take a job from the queue")
                job = None
            if job is None:
                with self._wake:
                    if not self._pending and not self._stopping.is_set():
                        self._wake.wait(_IDLE_POLL_S)
                    self._pending = False
                continue
            self._run(job)

    def _run(self, job: JobRecord) -> None:
        token = CancelToken(self.job_timeout_s)
        with self._running_lock:
            self._running[job.id] = token
        self.metrics.workers_busy.inc()
        if self._stopping.is_set():
            token.cancel(SHUTDOWN)
        started = time.monotonic()
        media_type = job.params.media_type
        result = self.store.result_path(job.id, media_type)
        outcome = "failed"
        try:
            self._compute(job, token, result)
            if self.store.finish(job.id, media_type, result.stat().st_size):
                outcome = "done"
            else:  # deleted while it ran
                result.unlink(missing_ok=True)
                outcome = "deleted"
        except Cancelled as stop:
            result.unlink(missing_ok=True)
            if stop.reason == SHUTDOWN:
                self.store.requeue(job.id)
                outcome = "requeued"
            elif stop.reason == DELETED:
                outcome = "deleted"
            else:
                self.store.fail(job.id, stop.reason)
        except BadInputError as exc:
            self.store.fail(job.id, str(exc))
        except FileNotFoundError:
            self.store.fail(job.id, "the job's input is missing from the data folder")
        except MemoryError:
            self.store.fail(job.id, "out of memory: try a smaller image or tile")
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self.store.fail(job.id, f"internal error ({type(exc).__name__})")
        finally:
            with self._running_lock:
                self._running.pop(job.id, None)
            self.metrics.workers_busy.dec()
        self.metrics.job_finished(outcome, time.monotonic() - started)

    def _compute(self, job: JobRecord, token: CancelToken, result) -> None:
        cached = self.cache.get(job.cache_key)
        if cached is not None and cached.media_type == job.params.media_type:
            try:
                link_or_copy(cached.path, result)
                return
            except FileNotFoundError:  # evicted meanwhile: compute it
                pass
        data = self.store.read_input(job.id)
        last_report = 0.0

        def progress(value: float) -> None:
            nonlocal last_report
            now = time.monotonic()
            if now - last_report >= _PROGRESS_INTERVAL_S and value < 1:
                last_report = now
                self.store.set_progress(job.id, value)

        encoded = self.engine.upscale(data, job.params, token, progress)
        write_bytes_atomically(result, encoded)
        try:
            self.cache.adopt(job.cache_key, result, job.params.media_type)
        except OSError as exc:  # a full disk must not fail a finished job
            log.warning("could not cache the result of job %s: %s", job.id, exc)


class Sweeper:
    """Deletes expired jobs and their results every `interval_s`, and runs `also` (more
    housekeeping: unvoted A/B trials) each time."""

    def __init__(
        self, store: JobStore, interval_s: float, also: Callable[[], int] | None = None
    ) -> None:
        self.store = store
        self.interval_s = interval_s
        self.also = also
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="srgan-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                removed = self.store.expire()
                if removed:
                    log.info("deleted %d expired jobs", removed)
                if self.also is not None:
                    self.also()
            except Exception:
                log.exception("could not delete expired jobs")
