"""SHA-256 of weight files, remembered by path, size, inode and modification time.

Caches of converted models and of backend choices are keyed by the weights' hash. Hashing
a large file on every start would cost more than the rest of the start-up, so a digest is
kept in `<cache>/digests.json` and reused while the file's size, inode and modification
time are unchanged. The memo only speeds up cache keying; cached files are still checked
against their own hashes.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from srgan.zoo.cache import cache_dir, sha256_file

_MEMO_NAME = "digests.json"
_MEMO_LIMIT = 512  # entries kept; the oldest go first


def file_digest(path: Path) -> str:
    """The SHA-256 of `path`, from the memo when the file has not changed since."""
    status = path.stat()
    stamp = [status.st_size, status.st_ino, status.st_mtime_ns]
    key = str(path.resolve())
    memo = _read_memo()
    entry = memo.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        known = entry.get("sha256")
        if isinstance(known, str):
            return known
    digest = sha256_file(path)
    memo.pop(key, None)
    memo[key] = {"stamp": stamp, "sha256": digest}
    while len(memo) > _MEMO_LIMIT:
        memo.pop(next(iter(memo)))
    _write_memo(memo)
    return digest


def _memo_path() -> Path:
    return cache_dir() / _MEMO_NAME


def _read_memo() -> dict[str, object]:
    try:
        memo = json.loads(_memo_path().read_text())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _write_memo(memo: dict[str, object]) -> None:
    """Atomic, without a lock: concurrent writers store the same digests, and a lost
    update only means one file is hashed again."""
    path = _memo_path()
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps(memo))
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)  # an unwritable cache: the digest is simply not kept
