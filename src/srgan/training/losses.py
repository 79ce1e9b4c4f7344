"""The SRGAN losses: pixel (MSE, L1), VGG feature content loss, adversarial (BCE)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from srgan.archs.vgg import VGG19Features

ValueRange = Literal["unit", "symmetric"]  # [0, 1] or [-1, 1]
VGG_RESCALE = 1 / 12.75  # Ledig et al.: brings VGG losses to the scale of the MSE
ADVERSARIAL_WEIGHT = 1e-3


def to_unit_range(x: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    return (x + 1) / 2 if value_range == "symmetric" else x


class PixelLoss(nn.Module):
    def __init__(self, kind: Literal["mse", "l1"] = "mse") -> None:
        super().__init__()
        if kind not in ("mse", "l1"):
            raise ValueError(f"pixel loss {kind!r}: use mse or l1")
        self.kind = kind

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output, target) if self.kind == "mse" else F.l1_loss(output, target)


class VGGContentLoss(nn.Module):
    """MSE between VGG19 feature maps (phi_{5,4} after activation by default), each
    scaled by 1/12.75 as in the paper. Images may be in [0, 1] or [-1, 1]."""

    def __init__(
        self,
        features: VGG19Features,
        value_range: ValueRange = "unit",
        rescale: float = VGG_RESCALE,
    ) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        self.value_range = value_range
        self.rescale = rescale

    def train(self, mode: bool = True) -> VGGContentLoss:
        super().train(mode)
        self.features.eval()  # the frozen network never switches to training mode
        return self

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fake = self.features(to_unit_range(output, self.value_range)) * self.rescale
        with torch.no_grad():
            real = self.features(to_unit_range(target, self.value_range)) * self.rescale
        return F.mse_loss(fake, real)


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)) in its numerically stable BCE-with-logits form."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def perceptual_loss(
    content: torch.Tensor, adversarial: torch.Tensor, weight: float = ADVERSARIAL_WEIGHT
) -> torch.Tensor:
    """The paper's generator objective: content loss + 1e-3 x adversarial loss."""
    return content + weight * adversarial
