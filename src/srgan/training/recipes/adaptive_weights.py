"""Loss weights that follow the magnitudes of their terms.

Each step, `observe` updates an exponential moving average m_i of every term's raw
(unweighted) value. Every `interval` steps, `adjust` moves the weights so that each
term's weighted contribution w_i * m_i becomes `share_i` of the current weighted total
S = sum_j w_j * m_j:

    w_i <- share_i * S / m_i

which keeps S itself unchanged (the learning rate keeps its meaning), then bounds each
new weight to [w_i / max_change, w_i * max_change] (no sudden jumps) and to
[min_factor, max_factor] times its configured weight. A term configured with weight 0,
or given no share, keeps its weight. Shares are renormalised over the adjusted terms.
The state (weights, averages, counts) goes into checkpoints so a resumed run continues
exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Adjustment:
    step: int
    previous: dict[str, float]
    weights: dict[str, float]
    magnitudes: dict[str, float]

    def record(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "event": "loss_weights",
            "weights": self.weights,
            "previous": self.previous,
            "magnitudes": self.magnitudes,
        }


class AdaptiveWeights:
    def __init__(
        self,
        base: Mapping[str, float],
        shares: Mapping[str, float],
        interval: int = 50,
        momentum: float = 0.9,
        min_factor: float = 0.1,
        max_factor: float = 10.0,
        max_change: float = 2.0,
        enabled: bool = True,
    ) -> None:
        self.base = dict(base)
        self.weights = dict(base)
        self.interval = interval
        self.momentum = momentum
        self.min_factor, self.max_factor, self.max_change = min_factor, max_factor, max_change
        self.enabled = enabled
        adjusted = {k: v for k, v in shares.items() if self.base.get(k, 0) > 0 and v > 0}
        total = sum(adjusted.values())
        self.shares = {k: v / total for k, v in adjusted.items()} if total else {}
        self.magnitudes: dict[str, float] = {}
        self.observed = 0

    def observe(self, terms: Mapping[str, float]) -> None:
        """Fold one step's raw term values into the moving averages."""
        for name, value in terms.items():
            previous = self.magnitudes.get(name, value)
            self.magnitudes[name] = self.momentum * previous + (1 - self.momentum) * value
        self.observed += 1

    def due(self, step: int) -> bool:
        return self.enabled and len(self.shares) > 1 and step % self.interval == 0

    def adjust(self, step: int) -> Adjustment | None:
        """New weights from the averages (see the module doc); None when there is nothing
        to go on yet."""
        if not self.due(step) or any(self.magnitudes.get(k, 0) <= 0 for k in self.shares):
            return None
        previous = dict(self.weights)
        total = sum(previous[k] * self.magnitudes[k] for k in self.shares)
        for name, share in self.shares.items():
            wanted = share * total / self.magnitudes[name]
            current, base = previous[name], self.base[name]
            wanted = min(max(wanted, current / self.max_change), current * self.max_change)
            self.weights[name] = min(max(wanted, base * self.min_factor), base * self.max_factor)
        return Adjustment(step, previous, dict(self.weights), dict(self.magnitudes))

    def state_dict(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "magnitudes": dict(self.magnitudes),
            "observed": self.observed,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.weights = dict(state["weights"])
        self.magnitudes = dict(state["magnitudes"])
        self.observed = int(state["observed"])
