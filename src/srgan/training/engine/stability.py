"""Training stability: gradient clipping adapted to recent gradient norms, and an
exponential moving average (EMA) of a model's weights."""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class ClipResult:
    norm: float  # the gradient norm before clipping
    limit: float  # the limit applied (inf: none)

    @property
    def clipped(self) -> bool:
        return self.norm > self.limit


class GradientClipper:
    """Clips the global gradient norm at `max_norm` and, when `percentile` is set, at that
    percentile of the last `window` norms (once `min_history` norms are known), whichever
    is lower. Norms are recorded before clipping."""

    def __init__(
        self,
        max_norm: float | None = None,
        percentile: float | None = None,
        window: int = 200,
        min_history: int = 20,
    ) -> None:
        self.max_norm = max_norm
        self.percentile = percentile
        self.min_history = min_history
        self.history: deque[float] = deque(maxlen=window)

    def limit(self) -> float:
        limit = self.max_norm if self.max_norm is not None else math.inf
        if self.percentile is not None and len(self.history) >= self.min_history:
            limit = min(limit, float(np.percentile(list(self.history), self.percentile)))
        return limit

    def clip(self, parameters: Iterable[nn.Parameter]) -> ClipResult:
        limit = self.limit()
        norm = float(torch.nn.utils.clip_grad_norm_(list(parameters), limit))
        if math.isfinite(norm):
            self.history.append(norm)
        return ClipResult(norm, limit)

    def state_dict(self) -> dict[str, list[float]]:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        self.history.clear()
        self.history.extend(state["history"])


class ModelEMA:
    """A copy of `model` whose floating-point weights follow
    `ema = decay * ema + (1 - decay) * weights` after each update; buffers (batch-norm
    statistics) are copied as they are."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self._parameter_names = {name for name, _ in self.module.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        current = model.state_dict()
        for name, average in self.module.state_dict().items():
            value = current[name]
            if name in self._parameter_names:
                average.lerp_(value, 1 - self.decay)
            else:
                average.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
