"""The hybrid loss of the video trainer: pixel L1, a multi-scale L1 and a gradient L1.

    total = w_l1 * L1 + w_multiscale * multiscale + w_gradient * gradient

- `l1`: mean absolute error of the frames.
- `multiscale`: L1 on image pyramids: the mean, over levels k = 1 .. `levels`, of the
  L1 between the output and the target each average-pooled k times by 2x2 (1/2, 1/4,
  1/8 of the size for 3 levels). Coarse levels weigh low-frequency errors (colour
  shifts, blur of large structures) that the full-resolution L1 spreads thin. Levels
  whose side would fall below 1 pixel are left out.
- `gradient`: the mean of the L1 between horizontal finite differences
  (x[..., :, 1:] - x[..., :, :-1]) and the L1 between vertical ones: edges and texture.

Clips [N, T, C, H, W] and images [N, C, H, W] are both accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class HybridLossResult:
    terms: dict[str, torch.Tensor]  # unweighted
    total: torch.Tensor  # the weighted sum


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(0, 1) if x.ndim == 5 else x


def multiscale_l1(output: torch.Tensor, target: torch.Tensor, levels: int = 3) -> torch.Tensor:
    output, target = _flat(output), _flat(target)
    losses = []
    for _ in range(levels):
        if min(output.shape[-2:]) < 2:
            break
        output, target = F.avg_pool2d(output, 2), F.avg_pool2d(target, 2)
        losses.append(F.l1_loss(output, target))
    if not losses:
        return F.l1_loss(output, target)
    return torch.stack(losses).mean()


def gradient_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    def dx(x: torch.Tensor) -> torch.Tensor:
        return x[..., :, 1:] - x[..., :, :-1]

    def dy(x: torch.Tensor) -> torch.Tensor:
        return x[..., 1:, :] - x[..., :-1, :]

    return (F.l1_loss(dx(output), dx(target)) + F.l1_loss(dy(output), dy(target))) / 2


class HybridLoss(nn.Module):
    def __init__(self, levels: int = 3) -> None:
        super().__init__()
        self.levels = levels

    def terms(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "l1": F.l1_loss(output, target),
            "multiscale": multiscale_l1(output, target, self.levels),
            "gradient": gradient_l1(output, target),
        }  # named as video_config.TERMS

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, weights: Mapping[str, float]
    ) -> HybridLossResult:
        terms = self.terms(output, target)
        total = sum((weights[name] * value for name, value in terms.items()), output.new_zeros(()))
        return HybridLossResult(terms, total)
