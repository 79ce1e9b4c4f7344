"""Time backends on a small probe tile: the measurement behind `--backend auto`.

The probe is sized so that one run on the first backend takes about PROBE_TARGET_S (a
compact model gets a 96-128 px tile, a large one 32 px), which keeps the whole
measurement well under the time of one real image. Each backend runs the tile once to
warm up (allocations, kernel selection), then timed runs: up to PROBE_REPEATS while they
stay within TIMING_BUDGET_S, at least one; the least time counts. A backend whose timed
run is already ELIMINATE times slower than the best so far is not timed further, nor one
whose warm-up alone is ELIMINATE_WARM times slower (its warm-up time stands).

A backend's fixed cost per run (thread start-up, layout changes around the network)
weighs more on a small tile than on an image: on an Intel Xeon, ncnn led ONNX Runtime by
15 % on a 112 px tile of anime-video and trailed it by 17 % on a 640x480 image. So the
backends within FINALIST_MARGIN of the fastest are timed again on a tile of twice the
side (four times the pixels), and that decides between them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import numpy as np

from srgan.inference.backends.base import AnyModel, Backend, Runner
from srgan.inference.backends.choice import Probe

PROBE_TARGET_S = 0.05  # seconds per probe run on the first backend
PROBE_REPEATS = 3  # timed runs at most, while they stay cheap (TIMING_BUDGET_S)
TIMING_BUDGET_S = 3 * PROBE_TARGET_S
ELIMINATE = 3.0
# A warm-up this much slower than the best timed run (and at least WARM_FLOOR_S) is not
# followed by timed runs: one-off set-up costs are far smaller than that.
ELIMINATE_WARM, WARM_FLOOR_S = 10.0, 1.0
MIN_SIDE, SIZING_SIDE, MAX_SIDE = 32, 32, 128
FINALIST_MARGIN = 1.5  # within this factor of the fastest: timed on the larger tile too
LARGE_REPEATS = 1  # timed runs per finalist on the larger tile (after a warm-up)


def probe_tile(side: int, channels: int) -> np.ndarray:
    """A deterministic photo-like [1, C, side, side] float32 tile (smooth + noise)."""
    from srgan.inference.benchmarking import synthetic_photo

    pixels = synthetic_photo(side, side).astype(np.float32) / 255.0
    planar = pixels.transpose(2, 0, 1)[:channels] if channels == 3 else pixels.mean(2)[None]
    return np.ascontiguousarray(planar[None])


def _round_side(side: float, multiple: int) -> int:
    step = max(16, multiple)
    rounded = max(MIN_SIDE, min(MAX_SIDE, round(side / step) * step))
    return max(multiple, rounded // multiple * multiple)


def _timed(runner: Runner, tile: np.ndarray) -> float:
    started = time.perf_counter()
    runner(tile)
    return time.perf_counter() - started


def measure(
    backends: Sequence[Backend],
    prepare: Callable[[Backend], AnyModel],
    make_runner: Callable[[Backend, AnyModel], Runner],
    channels: int,
    size_multiple: int = 1,
    threads_context: Callable[[Backend], AbstractContextManager[object]] | None = None,
) -> Probe:
    """Time each backend on the same probe tile; a backend that fails is reported in
    `errors` and the others go on. Preparing the backends (conversions and exports, which
    are cached, and session set-up) is counted apart from the timing runs."""
    times: dict[str, float] = {}
    errors: dict[str, str] = {}
    eliminated: list[str] = []
    side = 0
    setup = timing = 0.0
    runners: dict[str, Runner] = {}
    for backend in backends:
        started = time.perf_counter()
        try:
            with _threads(threads_context, backend):
                runner = make_runner(backend, prepare(backend))
                runners[backend.name] = runner
                ready = time.perf_counter()
                setup += ready - started
                runs: list[float] = []
                if not side:
                    side, sample = _size_probe(runner, channels, size_multiple)
                    runs += [sample] if sample is not None else []
                tile = probe_tile(side, channels)
                best = min(times.values(), default=math.inf)
                if not runs:
                    warm = _timed(runner, tile)  # allocations and kernel choices: not counted
                    if warm > max(ELIMINATE_WARM * best, WARM_FLOOR_S):
                        times[backend.name] = warm
                        eliminated.append(backend.name)
                        timing += time.perf_counter() - ready
                        continue
                while len(runs) < PROBE_REPEATS and (not runs or sum(runs) < TIMING_BUDGET_S):
                    runs.append(_timed(runner, tile))
                    if runs[-1] > ELIMINATE * best:
                        eliminated.append(backend.name)
                        break
                times[backend.name] = min(runs)
                timing += time.perf_counter() - ready
        except Exception as exc:  # one backend failing must not stop the others
            errors[backend.name] = _failure(exc)
            setup += time.perf_counter() - started
    started = time.perf_counter()
    large_times = _time_finalists(
        backends, times, eliminated, runners, channels, 2 * side, threads_context, errors
    )
    timing += time.perf_counter() - started
    return Probe(
        times,
        side or SIZING_SIDE,
        timing,
        errors,
        tuple(eliminated),
        setup,
        large_times,
        2 * side if large_times else 0,
    )


def _time_finalists(
    backends: Sequence[Backend],
    times: dict[str, float],
    eliminated: Sequence[str],
    runners: dict[str, Runner],
    channels: int,
    side: int,
    threads_context: Callable[[Backend], AbstractContextManager[object]] | None,
    errors: dict[str, str],
) -> dict[str, float]:
    """Seconds per `side` tile for the backends within FINALIST_MARGIN of the fastest, when
    there are two or more (else empty); one that fails there leaves `times` for `errors`."""
    best = min(times.values(), default=math.inf)
    finalists = [
        backend
        for backend in backends
        if backend.name in times
        and backend.name not in eliminated
        and times[backend.name] <= FINALIST_MARGIN * best
    ]
    if len(finalists) < 2:
        return {}
    tile = probe_tile(side, channels)
    large_times: dict[str, float] = {}
    for backend in finalists:
        runner = runners[backend.name]
        try:
            with _threads(threads_context, backend):
                runner(tile)  # warm-up: buffers for the new size
                large_times[backend.name] = min(_timed(runner, tile) for _ in range(LARGE_REPEATS))
        except Exception as exc:  # as in the first round: the others go on
            errors[backend.name] = _failure(exc)
            times.pop(backend.name, None)
    return large_times if len(large_times) > 1 else {}


def _threads(
    threads_context: Callable[[Backend], AbstractContextManager[object]] | None, backend: Backend
) -> AbstractContextManager[object]:
    return threads_context(backend) if threads_context else nullcontext()


def _failure(exc: Exception) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _size_probe(runner: Runner, channels: int, multiple: int) -> tuple[int, float | None]:
    """The probe side for PROBE_TARGET_S on this first runner, and the sizing run's time
    when the probe keeps the sizing side (it then counts as a sample)."""
    small = _round_side(SIZING_SIDE, multiple)
    tile = probe_tile(small, channels)
    runner(tile)  # warm-up
    seconds = max(_timed(runner, tile), 1e-6)
    side = _round_side(small * math.sqrt(PROBE_TARGET_S / seconds), multiple)
    return side, seconds if side == small else None
