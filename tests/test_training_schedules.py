"""Learning-rate schedules, plateau halving, adaptive gradient clipping and the EMA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srgan.training.engine.schedules import (
    Constant,
    Cosine,
    PlateauHalving,
    Steps,
    Warmup,
    build_schedule,
)
from srgan.training.engine.stability import GradientClipper, ModelEMA


def test_pieces_give_the_rates_worked_out_by_hand():
    assert Constant(3e-4)(12345) == 3e-4
    steps = Steps(1e-4, milestones=[10, 20], gamma=0.1)
    assert [steps(s) for s in (0, 9, 10, 19, 20)] == pytest.approx([1e-4, 1e-4, 1e-5, 1e-5, 1e-6])
    cosine = Cosine(1.0, total=100, floor=0.1)
    assert cosine(0) == pytest.approx(1.0)
    assert cosine(50) == pytest.approx(0.55)  # half way: the mean of rate and floor
    assert cosine(100) == pytest.approx(0.1) and cosine(500) == pytest.approx(0.1)
    warm = Warmup(4, Constant(2.0))
    assert [warm(s) for s in range(6)] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])


def test_built_schedules_compose_warmup_and_decay_over_the_stage():
    cosine = build_schedule(1e-3, 110, decay="cosine", warmup_steps=10, floor=1e-5)
    assert cosine(0) == pytest.approx(1e-4)
    assert cosine(10) == pytest.approx(1e-3)  # decay starts after the warmup
    assert cosine(60) == pytest.approx((1e-3 + 1e-5) / 2)
    assert cosine(110) == pytest.approx(1e-5)
    paper = build_schedule(1e-4, 200_000, decay="steps", milestones=[0.5], gamma=0.1)
    assert paper(99_999) == pytest.approx(1e-4) and paper(100_000) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="decay"):
        build_schedule(1e-4, 10, decay="linear")


def test_plateau_halving_cuts_after_patience_and_restores_its_state():
    plateau = PlateauHalving(patience=2, factor=0.5)
    cuts = [plateau.observe(score) for score in (20.0, 21.0, 20.5, 20.9, 21.5, 21.4, 21.0)]
    assert cuts == [False, False, False, True, False, False, True]
    assert plateau.scale == 0.25
    copy = PlateauHalving(patience=2)
    copy.load_state_dict(plateau.state_dict())
    assert (copy.scale, copy.best, copy.stale) == (0.25, 21.5, 0)
    never = PlateauHalving(patience=0)
    assert not any(never.observe(1.0) for _ in range(10)) and never.scale == 1.0


def _with_gradient(norm: float) -> torch.nn.Parameter:
    parameter = torch.nn.Parameter(torch.zeros(4))
    parameter.grad = torch.full((4,), norm / 2)  # |g| = sqrt(4 * (norm/2)^2) = norm
    return parameter


def test_adaptive_clipping_limits_at_the_percentile_of_recent_norms():
    clipper = GradientClipper(percentile=50, window=5, min_history=3)
    results = [clipper.clip([_with_gradient(n)]) for n in (1.0, 2.0, 3.0)]
    assert all(math.isinf(r.limit) for r in results)  # too little history yet
    assert [r.norm for r in results] == pytest.approx([1.0, 2.0, 3.0])
    spike = _with_gradient(100.0)
    result = clipper.clip([spike])
    assert result.limit == pytest.approx(2.0) and result.clipped
    assert float(spike.grad.norm()) == pytest.approx(2.0, rel=1e-5)
    for norm in (4.0, 5.0, 6.0):
        clipper.clip([_with_gradient(norm)])
    window = [3.0, 100.0, 4.0, 5.0, 6.0]  # only the last 5 norms count
    assert clipper.limit() == pytest.approx(float(np.percentile(window, 50)))
    fixed = GradientClipper(max_norm=0.5, percentile=50, window=5, min_history=1)
    fixed.clip([_with_gradient(10.0)])
    assert fixed.limit() == 0.5  # the fixed limit wins when it is lower
    restored = GradientClipper(percentile=50, window=5, min_history=3)
    restored.load_state_dict(clipper.state_dict())
    assert restored.limit() == clipper.limit()


def test_ema_follows_the_weights_and_copies_batch_norm_statistics():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1), torch.nn.BatchNorm2d(2))
    ema = ModelEMA(model, decay=0.9)
    before = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 2, 3, 3))  # training mode: moves the running statistics
    ema.update(model)
    expected = 0.9 * before + 0.1 * model[0].weight.detach()
    assert torch.allclose(ema.module[0].weight, expected)
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)
    assert not any(p.requires_grad for p in ema.module.parameters())
