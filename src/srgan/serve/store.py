"""The durable job queue: one SQLite row per job, its input and result as files.

A job's input is written (and fsynced) before its row is committed, so a committed job
always has its input. States: queued -> running -> done | failed. A restart requeues the
jobs that were running (each may start `max_attempts` times) and fails the others with a
reason. Finished jobs expire after the TTL: row and files are deleted. File names are
made from the server's own UUIDs; nothing a client sends becomes a path.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, fields
from pathlib import Path

from srgan.imaging.io import write_bytes_atomically
from srgan.serve.database import Database
from srgan.serve.schemas import EXTENSIONS, InputInfo, JobInfo, UpscaleParams

STATES = ("queued", "running", "done", "failed")


class QueueFullError(Exception):
    """The queue holds `queue_size` jobs already."""


@dataclass(frozen=True)
class JobRecord:
    id: str
    state: str
    params: UpscaleParams
    cache_key: str
    key_id: str | None
    width: int
    height: int
    progress: float
    attempts: int
    error: str | None
    media_type: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None

    def info(self, result_url: str | None) -> JobInfo:
        return JobInfo(
            id=self.id,
            state=self.state,  # type: ignore[arg-type]
            progress=self.progress,
            error=self.error,
            attempts=self.attempts,
            params=self.params,
            input=InputInfo(width=self.width, height=self.height),
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            expires_at=self.expires_at,
            result_url=result_url if self.state == "done" else None,
        )


@dataclass(frozen=True)
class Recovery:
    requeued: int
    failed: int


def new_job_id() -> str:
    return str(uuid.uuid4())


class JobStore:
    def __init__(self, database: Database, data_dir: Path, result_ttl_s: float) -> None:
        self.db = database
        self.inputs = data_dir / "inputs"
        self.results = data_dir / "results"
        self.result_ttl_s = result_ttl_s
        self.inputs.mkdir(parents=True, exist_ok=True)
        self.results.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ paths

    def input_path(self, job_id: str) -> Path:
        return self.inputs / str(uuid.UUID(job_id))

    def result_path(self, job_id: str, media_type: str) -> Path:
        return self.results / f"{uuid.UUID(job_id)}.{EXTENSIONS[media_type]}"

    # ------------------------------------------------------------------ submit and read

    def create(
        self,
        params: UpscaleParams,
        cache_key: str,
        key_id: str | None,
        size: tuple[int, int],
        data: bytes,
        queue_size: int,
    ) -> JobRecord:
        """Store the input, then commit the queued job; QueueFullError when full. The
        input is written before the transaction, so the lock is not held while it is."""
        job_id = new_job_id()
        path = self.input_path(job_id)
        now = time.time()
        if self.queue_depth() >= queue_size:  # cheap early answer; checked again below
            raise QueueFullError(f"{queue_size} jobs are queued")
        try:
            write_bytes_atomically(path, data)
            with self.db.transaction() as db:
                (queued,) = db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE state = 'queued'"
                ).fetchone()
                if queued >= queue_size:
                    raise QueueFullError(f"{queued} jobs are queued")
                row = db.execute(
                    "INSERT INTO jobs (id, state, params, cache_key, key_id, width, height,"
                    " created_at) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?) RETURNING *",
                    (job_id, params.model_dump_json(), cache_key, key_id, *size, now),
                ).fetchone()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return _record(row)

    def get(self, job_id: str) -> JobRecord | None:
        row = self.db.connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def read_input(self, job_id: str) -> bytes:
        return self.input_path(job_id).read_bytes()

    def counts(self) -> dict[str, int]:
        rows = self.db.connection().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        counts.update({state: count for state, count in rows})
        return counts

    def queue_depth(self) -> int:
        (count,) = (
            self.db.connection()
            .execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'")
            .fetchone()
        )
        return int(count)

    # ------------------------------------------------------------------ the workers' side

    def claim_next(self) -> JobRecord | None:
        """The oldest queued job, now running (its attempt counted), or None."""
        with self.db.transaction() as db:
            row = db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, progress = 0,"
                " started_at = ? WHERE id = (SELECT id FROM jobs WHERE state = 'queued'"
                " ORDER BY created_at LIMIT 1) RETURNING *",
                (time.time(),),
            ).fetchone()
        return _record(row) if row else None

    def set_progress(self, job_id: str, progress: float) -> None:
        with self.db.transaction() as db:
            db.execute(
                "UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'",
                (min(max(progress, 0.0), 1.0), job_id),
            )

    def finish(self, job_id: str, media_type: str, size: int) -> bool:
        """Mark a running job done (its result file is in place); False if it was deleted."""
        now = time.time()
        with self.db.transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET state = 'done', progress = 1, media_type = ?, result_bytes = ?,"
                " finished_at = ?, expires_at = ? WHERE id = ? AND state = 'running'",
                (media_type, size, now, now + self.result_ttl_s, job_id),
            ).rowcount
        self.input_path(job_id).unlink(missing_ok=True)
        return changed == 1

    def fail(self, job_id: str, error: str) -> bool:
        now = time.time()
        with self.db.transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, expires_at = ?"
                " WHERE id = ? AND state = 'running'",
                (error, now, now + self.result_ttl_s, job_id),
            ).rowcount
        self.input_path(job_id).unlink(missing_ok=True)
        return changed == 1

    def requeue(self, job_id: str) -> None:
        """Give back a job interrupted by a shutdown; the attempt does not count."""
        with self.db.transaction() as db:
            db.execute(
                "UPDATE jobs SET state = 'queued', progress = 0, started_at = NULL,"
                " attempts = MAX(attempts - 1, 0) WHERE id = ? AND state = 'running'",
                (job_id,),
            )

    # ------------------------------------------------------------------ housekeeping

    def delete(self, job_id: str) -> JobRecord | None:
        """Remove a job with its files; the record it had, or None if there was none."""
        with self.db.transaction() as db:
            row = db.execute("DELETE FROM jobs WHERE id = ? RETURNING *", (job_id,)).fetchone()
        if row is None:
            return None
        record = _record(row)
        self._remove_files(record)
        return record

    def recover(self, max_attempts: int) -> Recovery:
        """After a restart: jobs left running start again unless they have had
        `max_attempts` starts already; those fail with the reason."""
        now = time.time()
        reason = (
            f"the server stopped while this job was running, {max_attempts} times;"
            " it is not retried again"
        )
        with self.db.transaction() as db:
            requeued = db.execute(
                "UPDATE jobs SET state = 'queued', progress = 0, started_at = NULL"
                " WHERE state = 'running' AND attempts < ?",
                (max_attempts,),
            ).rowcount
            failed_ids = [
                row[0]
                for row in db.execute(
                    "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, expires_at = ?"
                    " WHERE state = 'running' RETURNING id",
                    (reason, now, now + self.result_ttl_s),
                )
            ]
        for job_id in failed_ids:
            self.input_path(job_id).unlink(missing_ok=True)
        self.remove_orphans()
        return Recovery(requeued, len(failed_ids))

    def expire(self, now: float | None = None) -> int:
        """Delete finished jobs whose time is up, with their results."""
        now = time.time() if now is None else now
        with self.db.transaction() as db:
            rows = db.execute(
                "DELETE FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ? RETURNING *",
                (now,),
            ).fetchall()
        for row in rows:
            self._remove_files(_record(row))
        return len(rows)

    def remove_orphans(self) -> None:
        """Files with no job (a crash between writing a file and committing, or the other
        way round) and temporary files."""
        known = {row[0] for row in self.db.connection().execute("SELECT id FROM jobs")}
        for folder in (self.inputs, self.results):
            for path in folder.iterdir():
                job_id = path.name.split(".")[0]
                if path.name.startswith(".") or job_id not in known:
                    with contextlib.suppress(OSError):
                        path.unlink()

    def _remove_files(self, record: JobRecord) -> None:
        self.input_path(record.id).unlink(missing_ok=True)
        if record.media_type:
            self.result_path(record.id, record.media_type).unlink(missing_ok=True)


_FIELDS = tuple(field.name for field in fields(JobRecord) if field.name != "params")


def _record(row) -> JobRecord:
    params = UpscaleParams.model_validate_json(row["params"])
    return JobRecord(params=params, **{name: row[name] for name in _FIELDS})
