"""Learning-rate schedules built from small pieces.

A schedule maps a step (counted from the start of its stage) to a learning rate:

    Warmup(100, Cosine(2e-4, total=2000, floor=1e-6))    # linear warmup, then cosine
    Steps(1e-4, milestones=[50_000], gamma=0.1)           # the SRGAN paper's GAN stage

`PlateauHalving` multiplies any of them by a factor that halves whenever validation
stops improving; it is stateful and saves with the checkpoint so a resumed run keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Schedule(Protocol):
    def __call__(self, step: int) -> float: ...


@dataclass(frozen=True)
class Constant:
    rate: float

    def __call__(self, step: int) -> float:
        return self.rate


@dataclass(frozen=True)
class Steps:
    """`rate`, multiplied by `gamma` at each milestone step."""

    rate: float
    milestones: Sequence[int]
    gamma: float = 0.1

    def __call__(self, step: int) -> float:
        passed = sum(1 for milestone in self.milestones if step >= milestone)
        return self.rate * self.gamma**passed


@dataclass(frozen=True)
class Cosine:
    """Half a cosine from `rate` at step 0 down to `floor` at step `total`."""

    rate: float
    total: int
    floor: float = 0.0

    def __call__(self, step: int) -> float:
        progress = min(max(step / self.total, 0.0), 1.0) if self.total > 0 else 1.0
        return self.floor + (self.rate - self.floor) * (1 + math.cos(math.pi * progress)) / 2


@dataclass(frozen=True)
class Warmup:
    """Linear ramp over the first `steps` steps, then `inner` (which starts its own step
    count after the warmup)."""

    steps: int
    inner: Schedule

    def __call__(self, step: int) -> float:
        if step < self.steps:
            return self.inner(0) * (step + 1) / self.steps
        return self.inner(step - self.steps)


class PlateauHalving:
    """A factor on the learning rate: multiplied by `factor` when the validation score
    has not beaten its best by `min_delta` for `patience` validations in a row."""

    def __init__(self, patience: int, factor: float = 0.5, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.factor = factor
        self.min_delta = min_delta
        self.scale = 1.0
        self.best = -math.inf
        self.stale = 0

    def observe(self, score: float) -> bool:
        """Record a validation score (higher is better); True when the rate was cut."""
        if score > self.best + self.min_delta:
            self.best, self.stale = score, 0
            return False
        self.stale += 1
        if self.patience <= 0 or self.stale < self.patience:
            return False
        self.scale *= self.factor
        self.stale = 0
        return True

    def state_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "best": self.best, "stale": self.stale}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.scale, self.best, self.stale = state["scale"], state["best"], int(state["stale"])


def build_schedule(
    rate: float,
    total_steps: int,
    decay: str = "constant",
    warmup_steps: int = 0,
    milestones: Sequence[float] = (),
    gamma: float = 0.1,
    floor: float = 0.0,
    decay_steps: int | None = None,
) -> Schedule:
    """A schedule for a phase of `total_steps`. The decay spans `decay_steps` (default:
    the steps after warmup); `milestones` are fractions of that span (0.5: half way)."""
    span = decay_steps if decay_steps is not None else max(total_steps - warmup_steps, 0)
    inner: Schedule
    if decay == "constant":
        inner = Constant(rate)
    elif decay == "cosine":
        inner = Cosine(rate, span, floor)
    elif decay == "steps":
        inner = Steps(rate, [round(fraction * span) for fraction in milestones], gamma)
    else:
        raise ValueError(f"unknown decay {decay!r}: use constant, cosine or steps")
    return Warmup(warmup_steps, inner) if warmup_steps > 0 else inner


SCHEDULE_PARTS = ("warmup", "decay", "floor")


def schedule_part(
    step: int, total_steps: int, decay: str, warmup_steps: int, decay_steps: int | None = None
) -> int:
    """0 during warmup, 1 while decaying (or constant), 2 once a cosine reached its floor."""
    if step < warmup_steps:
        return 0
    span = decay_steps if decay_steps is not None else max(total_steps - warmup_steps, 0)
    return 2 if decay == "cosine" and step >= warmup_steps + span else 1
