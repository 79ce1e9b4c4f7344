"""Blind A/B preference tests: two models' results of the same image, shown in random
order as "A" and "B"; a person picks the better one, or "same".

A trial is one row of the server's database naming the two models (A on the left), the
two jobs that compute their results and, once given, the vote. The page and the API see
only the trial: its job ids and models stay hidden until the vote is in. Votes are kept
after the images have expired; `tallies` counts them per pair of models with a Wilson
score interval on the win rate (ties left out of the rate, counted apart).
"""

from __future__ import annotations

import itertools
import math
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from srgan.serve.database import Database

CHOICES = ("a", "b", "same")
Z_95 = 1.959963984540054  # two-sided 95% normal quantile
_random = secrets.SystemRandom()


class AlreadyVoted(Exception):
    """A trial takes one vote."""


@dataclass(frozen=True)
class Trial:
    id: str
    key_id: str | None
    model_a: str
    model_b: str
    job_a: str
    job_b: str
    created_at: float
    choice: str | None
    voted_at: float | None

    def job_of(self, side: str) -> str:
        return self.job_a if side == "a" else self.job_b


@dataclass(frozen=True)
class PairTally:
    """The votes between two models (`first` < `second` by name)."""

    first: str
    second: str
    first_wins: int
    second_wins: int
    same: int

    @property
    def votes(self) -> int:
        return self.first_wins + self.second_wins + self.same

    @property
    def decisive(self) -> int:
        return self.first_wins + self.second_wins

    @property
    def first_rate(self) -> float | None:
        """How often `first` was preferred when a side was picked; None without votes."""
        return self.first_wins / self.decisive if self.decisive else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson score interval of `first_rate`."""
        return wilson_interval(self.first_wins, self.decisive) if self.decisive else None

    def as_dict(self) -> dict[str, object]:
        interval = self.interval
        return {
            "models": [self.first, self.second],
            "votes": self.votes,
            "wins": {self.first: self.first_wins, self.second: self.second_wins},
            "same": self.same,
            "win_rate": self.first_rate,
            "interval_95": list(interval) if interval else None,
        }


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (Wilson 1927): unlike the
    normal approximation it stays inside [0, 1] and is sensible for few trials."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials and trials > 0")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def choose_pair(models: Sequence[str], counts: dict[tuple[str, str], int]) -> tuple[str, str]:
    """Two different models, (A, B) in random order: a pair with the fewest trials so far,
    so that every pair collects votes at the same pace."""
    pairs = [tuple(sorted(pair)) for pair in itertools.combinations(sorted(set(models)), 2)]
    if not pairs:
        raise ValueError("an A/B test needs two different models")
    fewest = min(counts.get(pair, 0) for pair in pairs)  # type: ignore[arg-type]
    first, second = _random.choice([p for p in pairs if counts.get(p, 0) == fewest])  # type: ignore[arg-type]
    return (first, second) if _random.random() < 0.5 else (second, first)


def _trial(row) -> Trial:
    return Trial(**{name: row[name] for name in Trial.__dataclass_fields__})


class TrialStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def trial_counts(self) -> dict[tuple[str, str], int]:
        rows = self.db.connection().execute(
            "SELECT MIN(model_a, model_b), MAX(model_a, model_b), COUNT(*) FROM ab_trials"
            " GROUP BY 1, 2"
        )
        return {(a, b): count for a, b, count in rows}

    def create(self, key_id: str | None, models: tuple[str, str], jobs: tuple[str, str]) -> Trial:
        with self.db.transaction() as db:
            row = db.execute(
                "INSERT INTO ab_trials (id, key_id, model_a, model_b, job_a, job_b, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (str(uuid.uuid4()), key_id, *models, *jobs, time.time()),
            ).fetchone()
        return _trial(row)

    def get(self, trial_id: str) -> Trial | None:
        row = (
            self.db.connection()
            .execute("SELECT * FROM ab_trials WHERE id = ?", (trial_id,))
            .fetchone()
        )
        return _trial(row) if row else None

    def vote(self, trial_id: str, choice: str) -> Trial:
        """Record the vote; AlreadyVoted if the trial has one."""
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {', '.join(CHOICES)}")
        with self.db.transaction() as db:
            row = db.execute(
                "UPDATE ab_trials SET choice = ?, voted_at = ? WHERE id = ? AND choice IS NULL"
                " RETURNING *",
                (choice, time.time(), trial_id),
            ).fetchone()
        if row is None:
            raise AlreadyVoted(trial_id)
        return _trial(row)

    def tallies(self) -> list[PairTally]:
        """The votes of every pair of models that has any, by pair name."""
        rows = self.db.connection().execute(
            "SELECT model_a, model_b, choice FROM ab_trials WHERE choice IS NOT NULL"
        )
        counts: dict[tuple[str, str], list[int]] = {}
        for model_a, model_b, choice in rows:
            first, second = sorted((model_a, model_b))
            entry = counts.setdefault((first, second), [0, 0, 0])
            if choice == "same":
                entry[2] += 1
            else:
                winner = model_a if choice == "a" else model_b
                entry[0 if winner == first else 1] += 1
        return [PairTally(a, b, *values) for (a, b), values in sorted(counts.items())]

    def prune(self, older_than_s: float, now: float | None = None) -> int:
        """Forget trials nobody voted on once their images have expired."""
        limit = (time.time() if now is None else now) - older_than_s
        with self.db.transaction() as db:
            return db.execute(
                "DELETE FROM ab_trials WHERE choice IS NULL AND created_at < ?", (limit,)
            ).rowcount
