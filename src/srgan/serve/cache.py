"""Finished results kept on disk by content: the same image bytes with the same model and
options give the cached file. The index is in SQLite; past `max_bytes` the least recently
used entries are deleted. Job results are hard links to cache files (copies where links
are impossible), so evicting an entry never takes a job's result away."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from srgan.imaging.io import write_bytes_atomically
from srgan.serve.database import Database
from srgan.serve.schemas import EXTENSIONS


@dataclass(frozen=True)
class CachedResult:
    path: Path
    media_type: str
    size: int


class ResultCache:
    def __init__(
        self,
        database: Database,
        folder: Path,
        max_bytes: int,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        """`on_lookup(hit)` is told the outcome of every `get` (for the metrics)."""
        self.db = database
        self.folder = folder
        self.max_bytes = max_bytes
        self.on_lookup = on_lookup or (lambda _hit: None)
        self._evicting = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, key: str) -> CachedResult | None:
        if not self.enabled:
            return None
        connection = self.db.connection()
        row = connection.execute(
            "SELECT file, media_type, size FROM cache_entries WHERE key = ?", (key,)
        ).fetchone()
        path = self.folder / row["file"] if row else None
        if path is None or not path.is_file():
            if path is not None:  # the file went away (by hand): forget the entry
                with self.db.transaction() as db:
                    db.execute("DELETE FROM cache_entries WHERE key = ?", (key,))
            self.on_lookup(False)
            return None
        with self.db.transaction() as db:
            db.execute("UPDATE cache_entries SET last_used = ? WHERE key = ?", (time.time(), key))
        self.on_lookup(True)
        return CachedResult(path, row["media_type"], row["size"])

    def put(self, key: str, data: bytes, media_type: str) -> None:
        """Keep `data` under `key` (unless it alone exceeds the cap), then evict."""
        if not self.enabled or len(data) > self.max_bytes:
            return
        name = self._file_name(key, media_type)
        write_bytes_atomically(self.folder / name, data)
        self._index(key, name, media_type, len(data))

    def adopt(self, key: str, path: Path, media_type: str) -> None:
        """Keep an existing result file (a job's) under `key`, by a hard link."""
        if not self.enabled:
            return
        size = path.stat().st_size
        if size > self.max_bytes:
            return
        name = self._file_name(key, media_type)
        link_or_copy(path, self.folder / name)
        self._index(key, name, media_type, size)

    def total_bytes(self) -> int:
        (total,) = self.db.connection().execute("SELECT TOTAL(size) FROM cache_entries").fetchone()
        return int(total)

    def entries(self) -> int:
        (count,) = self.db.connection().execute("SELECT COUNT(*) FROM cache_entries").fetchone()
        return int(count)

    def _file_name(self, key: str, media_type: str) -> str:
        int(key, 16)  # a hex digest made by the server, never a client's text
        return f"{key}.{EXTENSIONS[media_type]}"

    def _index(self, key: str, name: str, media_type: str, size: int) -> None:
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO cache_entries (key, file, media_type, size, last_used)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, name, media_type, size, time.time()),
            )
        self.evict()

    def evict(self) -> None:
        """Delete least recently used entries until the total fits `max_bytes`."""
        with self._evicting:
            excess = self.total_bytes() - self.max_bytes
            if excess <= 0:
                return
            removed: list[str] = []
            with self.db.transaction() as db:
                rows = db.execute(
                    "SELECT key, file, size FROM cache_entries ORDER BY last_used"
                ).fetchall()
                for row in rows:
                    if excess <= 0:
                        break
                    removed.append(row["file"])
                    excess -= row["size"]
                    db.execute("DELETE FROM cache_entries WHERE key = ?", (row["key"],))
            for name in removed:
                with contextlib.suppress(OSError):
                    (self.folder / name).unlink()


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link `source` to `target` (replacing it), or copy where links fail."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)
