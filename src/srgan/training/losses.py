"""Training losses: pixel (MSE, L1, Charbonnier), VGG19 feature losses (SRGAN's VGG54,
Real-ESRGAN's five-layer perceptual loss), adversarial (BCE with logits)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from srgan.archs.vgg import VGG19Features, layer_index, layer_name

ValueRange = Literal["unit", "symmetric"]  # [0, 1] or [-1, 1]
VGG_RESCALE = 1 / 12.75  # Ledig et al.: brings VGG losses to the scale of the MSE
ADVERSARIAL_WEIGHT = 1e-3


def to_unit_range(x: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    return (x + 1) / 2 if value_range == "symmetric" else x


PixelLossName = Literal["l1", "mse", "charbonnier"]
PIXEL_LOSSES: tuple[PixelLossName, ...] = ("l1", "mse", "charbonnier")
CHARBONNIER_EPS = 1e-6  # BasicSR's CharbonnierLoss: sqrt(d^2 + 1e-12)


class PixelLoss(nn.Module):
    """Mean over all pixels of (d = output - target): `mse` d^2, `l1` |d|, `charbonnier`
    sqrt(d^2 + eps^2), a differentiable L1 (Lai et al. 2017)."""

    def __init__(self, kind: PixelLossName = "mse", eps: float = CHARBONNIER_EPS) -> None:
        super().__init__()
        if kind not in PIXEL_LOSSES:
            raise ValueError(f"pixel loss {kind!r}: use one of {', '.join(PIXEL_LOSSES)}")
        if not eps > 0:
            raise ValueError(f"the Charbonnier eps must be above 0, not {eps}")
        self.kind = kind
        self.eps = eps

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "mse":
            return F.mse_loss(output, target)
        if self.kind == "l1":
            return F.l1_loss(output, target)
        return torch.sqrt((output - target) ** 2 + self.eps**2).mean()


FeatureCriterion = Literal["l1", "mse"]


class PerceptualLoss(nn.Module):
    """Weighted sum over VGG19 layers of criterion(phi(output) x s, phi(target) x s),
    target features without gradient; `s` = feature_scale (SRGAN: 1/12.75). Images may be
    in [0, 1] or [-1, 1]; the network stays frozen and in eval mode."""

    def __init__(
        self,
        features: VGG19Features,
        layer_weights: Mapping[str, float],
        criterion: FeatureCriterion = "l1",
        feature_scale: float = 1.0,
        value_range: ValueRange = "unit",
    ) -> None:
        super().__init__()
        if not layer_weights:
            raise ValueError("the perceptual loss needs at least one VGG19 layer")
        if criterion not in ("l1", "mse"):
            raise ValueError(f"feature criterion {criterion!r}: use l1 or mse")
        for name in layer_weights:
            layer_index(name)  # a clear error for unknown names
        self.features = features.eval().requires_grad_(False)
        self.layer_weights = dict(layer_weights)
        self.criterion = criterion
        self.feature_scale = feature_scale
        self.value_range: ValueRange = value_range

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # the frozen network never switches to training mode
        return self

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        layers = list(self.layer_weights)
        fake = self.features.feature_maps(to_unit_range(output, self.value_range), layers)
        with torch.no_grad():
            real = self.features.feature_maps(to_unit_range(target, self.value_range), layers)
        compare = F.l1_loss if self.criterion == "l1" else F.mse_loss
        total = output.new_zeros(())
        for name, weight in self.layer_weights.items():
            scale = self.feature_scale
            total = total + weight * compare(fake[name] * scale, real[name] * scale)
        return total


class VGGContentLoss(PerceptualLoss):
    """SRGAN's content loss: MSE between the feature maps of the extractor's last layer
    (phi_{5,4} after activation by default), each scaled by 1/12.75 as in the paper."""

    def __init__(
        self,
        features: VGG19Features,
        value_range: ValueRange = "unit",
        rescale: float = VGG_RESCALE,
    ) -> None:
        last = layer_name(len(features.features) - 1)
        super().__init__(features, {last: 1.0}, "mse", rescale, value_range)
        self.rescale = rescale


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
