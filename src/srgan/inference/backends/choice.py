"""`--backend auto`: the fastest backend by measurement, remembered per machine and model.

The first time a model runs here with a given thread count, the backends that can run it
are timed on a small probe (`probe.py`) and the fastest is kept in
`<cache>/backend-choices.json`, keyed by everything that changes the answer: the CPU
(model name and a digest of its flags), the thread count, the model (name + weights
digest), the precision, the device and each candidate backend's version. Any change there
is a different key, so the old choice is simply not found and a new measurement is made.
Later runs read the file and measure nothing.

OpenMP runtimes (ncnn, PyTorch) slow down far more than ONNX Runtime's thread pool when
other processes compete for the cores, so a choice measured on a busy machine (the load
average per core above BUSY_LOAD_PER_CORE) is measured once more the first time srgan
runs while the machine is quiet (below QUIET_LOAD_PER_CORE).

Measuring and storing happen under an exclusive file lock, so concurrent processes (a
batch split over many jobs) measure once: the others wait, then read the result. The
file is replaced atomically (temporary file + rename). An unreadable file counts as empty;
an unwritable cache only means the measurement is not kept (it is still used, and
remembered for the rest of the process).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from srgan.errors import SrganError

try:
    import fcntl
except ImportError:  # Windows: the atomic rename alone keeps the file consistent
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

CHOICES_FILE = "backend-choices.json"
FORMAT_VERSION = 2  # 2: finalists timed again on a larger tile (1's choices are stale)
MAX_ENTRIES = 256
BUSY_LOAD_PER_CORE = 1.5
QUIET_LOAD_PER_CORE = 0.75


def load_per_core() -> float:
    """The 1-minute load average per core (0 where the system does not tell)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 0.0


@dataclass(frozen=True)
class ChoiceKey:
    """Everything that can change which backend is fastest."""

    model: str  # the model's identity: name + weights digest
    name: str  # the model's name, for tables
    precision: str
    device: str
    threads: int
    cpu: str  # model name, for people reading the file
    cpu_signature: str  # digest of model name, architecture and flags
    versions: tuple[tuple[str, str], ...]  # (backend, version) of every candidate

    @property
    def id(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def backends(self) -> list[str]:
        return [name for name, _ in self.versions]

    def same_slot(self, other: ChoiceKey) -> bool:
        """The same question asked with other software versions: the old answer is stale."""
        return (self.model, self.precision, self.device, self.threads, self.cpu_signature) == (
            other.model,
            other.precision,
            other.device,
            other.threads,
            other.cpu_signature,
        )


@dataclass(frozen=True)
class Probe:
    """One measurement: seconds per probe tile for each backend that ran, and for the
    backends that came close to the fastest, seconds per tile of a larger side, which
    decides between them (a backend's fixed cost per run favours it on small tiles only)."""

    times: dict[str, float]
    side: int  # the probe tile's side in input pixels
    seconds: float  # what the timing runs cost
    errors: dict[str, str] = field(default_factory=dict)
    eliminated: tuple[str, ...] = ()  # timed once only: already far slower than the best
    setup_seconds: float = 0.0  # preparing the backends: cached conversions, sessions
    large_times: dict[str, float] = field(default_factory=dict)  # the finalists
    large_side: int = 0

    def winner(self) -> str:
        return fastest(self.large_times or self.times)


@dataclass(frozen=True)
class Choice:
    key: ChoiceKey
    backend: str
    probe: Probe
    measured_at: float  # Unix time
    from_cache: bool = False
    load_per_core: float = 0.0  # the machine's load when it was measured

    @property
    def measured_busy(self) -> bool:
        return self.load_per_core > BUSY_LOAD_PER_CORE

    def explain(self) -> str:
        """One line: what was picked, the times behind it, and when they were measured."""
        others = _listed(self.probe.times, leaving_out=self.backend)
        failed = "".join(f"; {name} failed: {why}" for name, why in self.probe.errors.items())
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.measured_at))
        how = f"measured {when}, cached" if self.from_cache else "measured now"
        if self.measured_busy:
            how += (
                f" on a busy machine (load {self.load_per_core:.1f} per core; "
                "measured again once it is quiet)"
            )
        side = self.probe.side
        large = self.probe.large_times
        decider = ""
        if large:
            big = self.probe.large_side
            decider = (
                f"; decided on a {big}x{big} tile: {large[self.backend] * 1000:.0f} ms, "
                f"against {_listed(large, leaving_out=self.backend)}"
            )
        return (
            f"{self.backend} ({self.probe.times[self.backend] * 1000:.0f} ms per {side}x{side} "
            f"probe{', against ' + others if others else ''}{failed}{decider}) for "
            f"{self.key.name} in {self.key.precision} with {self.key.threads} threads; {how} "
            f"(timing took {self.probe.seconds:.1f} s, preparing the backends "
            f"{self.probe.setup_seconds:.1f} s; "
            "`srgan benchmark --calibrate` measures again)"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "key": asdict(self.key),
            "backend": self.backend,
            "times": self.probe.times,
            "errors": self.probe.errors,
            "eliminated": list(self.probe.eliminated),
            "probe_side": self.probe.side,
            "large_times": self.probe.large_times,
            "large_side": self.probe.large_side,
            "probe_seconds": round(self.probe.seconds, 3),
            "setup_seconds": round(self.probe.setup_seconds, 3),
            "measured_at": self.measured_at,
            "load_per_core": round(self.load_per_core, 2),
        }


def _listed(times: Mapping[str, float], leaving_out: str) -> str:
    """'name N ms, ...' fastest first, without `leaving_out`."""
    ordered = sorted(times.items(), key=lambda item: (item[1], item[0]))
    return ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in ordered if name != leaving_out)


def fastest(times: Mapping[str, float]) -> str:
    """The backend with the least time (ties: the first name alphabetically)."""
    if not times:
        raise ValueError("no times to choose from")
    return min(times, key=lambda name: (times[name], name))


Measure = Callable[[Sequence[str]], Probe]
_IN_PROCESS: dict[tuple[str, str], Choice] = {}  # this process's, for unwritable caches


def choose(
    key: ChoiceKey,
    measure: Measure,
    cache: ChoiceCache,
    recalibrate: bool = False,
    load: Callable[[], float] = load_per_core,
) -> Choice:
    """The cached choice for `key`, else measure the key's backends and keep the fastest.

    `recalibrate` measures again and replaces the cached choice; so does a quiet machine
    (`load`) for a choice that was measured on a busy one."""
    memo = (str(cache.path), key.id)

    def usable(known: Choice | None) -> bool:
        if known is None or recalibrate:
            return False
        return not (known.measured_busy and load() < QUIET_LOAD_PER_CORE)

    known = cache.lookup(key) or _IN_PROCESS.get(memo)
    if usable(known):
        assert known is not None
        return known
    with cache.locked():
        known = cache.lookup(key)  # another process may have measured while we waited
        if usable(known):
            assert known is not None
            return known
        probe = measure(key.backends)
        if not probe.times:
            reasons = "; ".join(f"{name}: {why}" for name, why in probe.errors.items())
            raise SrganError(f"no backend could run {key.name} ({reasons})")
        choice = Choice(key, probe.winner(), probe, time.time(), load_per_core=load())
        _IN_PROCESS[memo] = choice
        try:
            cache.store(choice)
        except OSError as exc:
            log.warning("backend choice not cached (%s): it will be measured again", exc)
    return choice


class ChoiceCache:
    """The file of measured choices (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / CHOICES_FILE
        self._lock_path = folder / f"{CHOICES_FILE}.lock"

    def lookup(self, key: ChoiceKey) -> Choice | None:
        entry = self._read().get(key.id)
        choice = _parse(entry) if entry is not None else None
        return choice if choice is not None and choice.key == key else None

    def entries(self) -> list[Choice]:
        parsed = (_parse(entry) for entry in self._read().values())
        return sorted(
            (choice for choice in parsed if choice is not None),
            key=lambda c: (c.key.model, c.key.precision, c.key.threads, -c.measured_at),
        )

    def store(self, choice: Choice) -> None:
        """Add or replace `choice` (call under `locked`); stale versions of the same slot
        and the oldest entries beyond MAX_ENTRIES go."""
        entries = {
            entry_id: entry
            for entry_id, entry in self._read().items()
            if (parsed := _parse(entry)) is not None and not parsed.key.same_slot(choice.key)
        }
        entries[choice.key.id] = choice.as_dict()
        if len(entries) > MAX_ENTRIES:
            newest = sorted(entries, key=lambda i: _measured_at(entries[i]), reverse=True)
            entries = {entry_id: entries[entry_id] for entry_id in newest[:MAX_ENTRIES]}
        document = {"format": FORMAT_VERSION, "choices": entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.part")
        try:
            temp.write_text(json.dumps(document, indent=1, sort_keys=True))
            os.replace(temp, self.path)
        finally:
            temp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            self._lock_path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._lock_path.open("a")
        except OSError:
            yield  # an unwritable cache: nothing to protect
            return
        with handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> dict[str, object]:
        try:
            document = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
            return {}
        choices = document.get("choices")
        return choices if isinstance(choices, dict) else {}


def _measured_at(entry: object) -> float:
    value = entry.get("measured_at") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def _parse(entry: object) -> Choice | None:
    """A stored entry, or None when any part of it is missing or of the wrong type."""
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), dict):
        return None
    try:
        raw = entry["key"]
        versions = tuple((str(name), str(v)) for name, v in raw["versions"])
        key = ChoiceKey(
            model=str(raw["model"]),
            name=str(raw["name"]),
            precision=str(raw["precision"]),
            device=str(raw["device"]),
            threads=int(raw["threads"]),
            cpu=str(raw["cpu"]),
            cpu_signature=str(raw["cpu_signature"]),
            versions=versions,
        )
        times = {str(name): float(seconds) for name, seconds in dict(entry["times"]).items()}
        backend = str(entry["backend"])
        if backend not in times:
            return None
        probe = Probe(
            times=times,
            side=int(entry["probe_side"]),
            seconds=float(entry["probe_seconds"]),
            errors={str(k): str(v) for k, v in dict(entry.get("errors", {})).items()},
            eliminated=tuple(str(name) for name in entry.get("eliminated", [])),
            setup_seconds=float(entry.get("setup_seconds", 0.0)),
            large_times={
                str(name): float(seconds)
                for name, seconds in dict(entry.get("large_times", {})).items()
            },
            large_side=int(entry.get("large_side", 0)),
        )
        if probe.large_times and backend not in probe.large_times:
            return None
        load = float(entry.get("load_per_core", 0.0))
        return Choice(key, backend, probe, float(entry["measured_at"]), True, load)
    except (KeyError, TypeError, ValueError):
        return None
