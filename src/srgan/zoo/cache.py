"""A per-user cache of converted weights: safetensors files checked by SHA-256.

Each entry is `<name>.safetensors` plus `<name>.json` recording the file's hash, the
architecture and its hyper-parameters. Writes go through a temporary file and a rename,
under an exclusive file lock, so two processes converting the same model at once neither
corrupt the cache nor both do the work.

A matching hash is not enough: an entry that does not load (garbage bytes with a hash
to match, a header that lies, weights that do not fit their architecture) is damaged;
it is built again, with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from srgan.errors import SrganError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows: the atomic rename alone keeps the cache consistent
    fcntl = None  # type: ignore[assignment]


def cache_dir() -> Path:
    """`$SRGAN_CACHE`, else `$XDG_CACHE_HOME/srgan`, else `~/.cache/srgan`."""
    if os.environ.get("SRGAN_CACHE"):
        return Path(os.environ["SRGAN_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "srgan"


@dataclass(frozen=True)
class CachedWeights:
    state_dict: dict[str, torch.Tensor]
    architecture: str
    hyperparameters: dict[str, int | str]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_paths(key: str) -> tuple[Path, Path]:
    folder = cache_dir() / "models"
    return folder / f"{key}.safetensors", folder / f"{key}.json"


def is_cached(key: str) -> bool:
    """Whether an entry exists (cheap; the hash is checked when it is loaded)."""
    return all(path.is_file() for path in entry_paths(key))


def _read_valid(
    key: str, verify: Callable[[CachedWeights], None] | None, warn: bool = True
) -> CachedWeights | None:
    from safetensors.torch import load_file  # PyTorch only when weights are loaded

    from srgan.zoo.weight_files import check_safetensors_header

    weights, record = entry_paths(key)
    if not (weights.is_file() and record.is_file()):
        return None
    try:
        meta = json.loads(record.read_text())
        if sha256_file(weights) != meta["sha256"]:
            raise ValueError("its hash does not match")
        check_safetensors_header(weights)
        entry = CachedWeights(load_file(weights), meta["architecture"], meta["hyperparameters"])
        if verify is not None:
            verify(entry)
        return entry
    except Exception as exc:  # any unloadable entry is damaged, whatever the reason
        if warn:
            log.warning("%s: damaged cache entry (%s); converting it again", weights, _why(exc))
        return None


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."


@contextlib.contextmanager
def _locked(key: str) -> Iterator[None]:
    lock_path = cache_dir() / "models" / f"{key}.lock"
    with lock_path.open("a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def load_or_convert(
    key: str,
    convert: Callable[[], CachedWeights],
    verify: Callable[[CachedWeights], None] | None = None,
) -> CachedWeights:
    """The cached entry if its hash checks out and it loads (and `verify` does not
    raise), else `convert()` it and cache the result."""
    cached = _read_valid(key, verify)
    if cached is not None:
        return cached
    folder = cache_dir() / "models"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SrganError(
            f"{folder}: cannot create the model cache ({exc.strerror}); "
            "set SRGAN_CACHE to a writable folder"
        ) from exc
    with _locked(key):
        cached = _read_valid(key, verify, warn=False)  # another process may have finished
        if cached is not None:
            return cached
        converted = convert()
        if verify is not None:
            verify(converted)
        _store(key, converted)
        return converted


def cached_file(
    filename: str, build: Callable[[Path], None], verify: Callable[[Path], None] | None = None
) -> Path:
    """`models/filename` in the cache, made by `build(temporary_path)` on first use.

    A `.sha256` file beside it is checked on every call, and `verify(path)` (which
    raises when the file does not load); a damaged or partial file is built again.
    Building happens once under the cache lock, then an atomic rename."""
    folder = cache_dir() / "models"
    target = folder / filename
    record = folder / f"{filename}.sha256"
    if _matches(target, record) and _loads(target, verify):
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{filename}.lock").touch()
    except OSError as exc:
        raise SrganError(
            f"{folder}: cannot write the model cache ({exc.strerror}); "
            "set SRGAN_CACHE to a writable folder"
        ) from exc
    with _locked(filename):
        if _matches(target, record) and _loads(target, verify, warn=False):
            return target
        temp = folder / f".{filename}.{secrets.token_hex(4)}.part"
        try:
            build(temp)
            if verify is not None:
                verify(temp)
            with temp.open("rb") as stream:
                os.fsync(stream.fileno())
            record.write_text(sha256_file(temp))
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
    return target


def _loads(path: Path, verify: Callable[[Path], None] | None, warn: bool = True) -> bool:
    if verify is None:
        return True
    try:
        verify(path)
    except Exception as exc:  # any unloadable entry is damaged, whatever the reason
        if warn:
            log.warning("%s: damaged cache entry (%s); building it again", path, _why(exc))
        return False
    return True


def _matches(target: Path, record: Path) -> bool:
    from srgan.zoo.digests import file_digest  # the memo: large exports are not re-hashed

    try:
        return target.is_file() and file_digest(target) == record.read_text().strip()
    except OSError:
        return False


def _store(key: str, entry: CachedWeights) -> None:
    from safetensors.torch import save_file

    weights, record = entry_paths(key)
    token = secrets.token_hex(4)
    temp_weights = weights.with_name(f".{weights.name}.{token}.part")
    temp_record = record.with_name(f".{record.name}.{token}.part")
    try:
        tensors = {k: v.contiguous() for k, v in entry.state_dict.items()}
        save_file(tensors, str(temp_weights))
        with temp_weights.open("rb") as stream:
            os.fsync(stream.fileno())
        meta = {
            "sha256": sha256_file(temp_weights),
            "architecture": entry.architecture,
            "hyperparameters": entry.hyperparameters,
        }
        temp_record.write_text(json.dumps(meta, indent=2))
        os.replace(temp_weights, weights)
        os.replace(temp_record, record)
    finally:
        temp_weights.unlink(missing_ok=True)
        temp_record.unlink(missing_ok=True)
