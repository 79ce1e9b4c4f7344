"""The server's SQLite database (WAL): jobs, API keys, the result cache's index and the
A/B preference trials.

One file in the data folder, shared by the server's threads and by `srgan serve keys`
in another process. Each thread gets its own connection; writes are short transactions.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    params TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    key_id TEXT,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    media_type TEXT,
    result_bytes INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_expiry ON jobs (expires_at);

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);

CREATE TABLE IF NOT EXISTS cache_entries (
    key TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_by_use ON cache_entries (last_used);

CREATE TABLE IF NOT EXISTS ab_trials (
    id TEXT PRIMARY KEY,
    key_id TEXT,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    job_a TEXT NOT NULL,
    job_b TEXT NOT NULL,
    created_at REAL NOT NULL,
    choice TEXT CHECK (choice IN ('a', 'b', 'same')),
    voted_at REAL
);
CREATE INDEX IF NOT EXISTS ab_trials_by_vote ON ab_trials (choice, created_at);
"""


class Database:
    """Connections to one SQLite file: one per thread, WAL journal, waits on locks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = self.connection()
        connection.executescript(_SCHEMA)  # idempotent: every statement is IF NOT EXISTS
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed job survives even a power cut, not only a killed process.
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA busy_timeout = 30000")
            # Up to one connection per thread of the request pool: keep each one small.
            connection.execute("PRAGMA cache_size = -1024")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: the write lock is taken at once, so two writers
        never deadlock upgrading from a read."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
