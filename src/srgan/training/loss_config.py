"""Losses chosen by name in the training config, and the factories that build them.

Defaults are Real-ESRGAN's x4plus GAN stage (`options/train_realesrgan_x4plus.yml`): L1
pixel loss (weight 1), the perceptual loss on conv1_2..conv5_4 before activation with
weights 0.1, 0.1, 1, 1, 1 and an L1 criterion (weight 1), and the vanilla GAN loss with
the U-Net discriminator (weight 0.1). `preset = "srgan"` gives SRGAN's VGG54 instead.
A weight of 0 switches a term off.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from srgan.archs.discriminator import SRGANDiscriminator
from srgan.archs.unet_discriminator import UNetDiscriminatorSN
from srgan.archs.vgg import VGG19Features, layer_index, layer_name
from srgan.errors import BadInputError
from srgan.training.losses import (
    CHARBONNIER_EPS,
    VGG_RESCALE,
    FeatureCriterion,
    PerceptualLoss,
    PixelLoss,
    PixelLossName,
    ValueRange,
    discriminator_loss,
    generator_adversarial_loss,
)
from srgan.training.vgg_weights import load_vgg19_features

Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PerceptualPreset = Literal["realesrgan", "srgan"]
DiscriminatorName = Literal["unet", "srgan"]


@dataclass(frozen=True)
class FeatureLossRecipe:
    layer_weights: Mapping[str, float]
    criterion: FeatureCriterion
    feature_scale: float


PERCEPTUAL_PRESETS: dict[PerceptualPreset, FeatureLossRecipe] = {
    # Real-ESRGAN: before the ReLU, L1, no rescaling.
    "realesrgan": FeatureLossRecipe(
        {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0},
        "l1",
        1.0,
    ),
    # SRGAN (Ledig et al.): phi_{5,4} after the ReLU, MSE, features / 12.75.
    "srgan": FeatureLossRecipe({"relu5_4": 1.0}, "mse", VGG_RESCALE),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PixelLossConfig(_Section):
    kind: PixelLossName = "l1"
    weight: Weight = 1.0
    charbonnier_eps: Annotated[float, Field(gt=0, le=1)] = CHARBONNIER_EPS


class PerceptualLossConfig(_Section):
    """A preset, optionally with its layer weights, criterion or scale replaced."""

    preset: PerceptualPreset = "realesrgan"
    layer_weights: dict[str, Weight] | None = None  # e.g. {conv5_4 = 1.0, relu2_2 = 0.5}
    criterion: FeatureCriterion | None = None
    feature_scale: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    weight: Weight = 1.0
    vgg_weights: Path | None = None  # torchvision's vgg19-dcbb9e9d.pth; else $SRGAN_VGG19

    @field_validator("layer_weights")
    @classmethod
    def _known_layers(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return value
        if not value or not math.fsum(value.values()) > 0:
            raise ValueError("name at least one VGG19 layer with a weight above 0")
        for name in value:
            layer_index(name)  # ValueError: unknown VGG19 layer ...
        return value

    def recipe(self) -> FeatureLossRecipe:
        base = PERCEPTUAL_PRESETS[self.preset]
        return FeatureLossRecipe(
            self.layer_weights if self.layer_weights is not None else base.layer_weights,
            self.criterion or base.criterion,
            self.feature_scale if self.feature_scale is not None else base.feature_scale,
        )


class AdversarialConfig(_Section):
    discriminator: DiscriminatorName = "unet"
    weight: Weight = 0.1  # Real-ESRGAN's; SRGAN uses 1e-3
    num_features: Annotated[int, Field(gt=0, le=512)] = 64
    skip_connection: bool = True  # U-Net only
    pretrained: Path | None = None  # e.g. RealESRGAN_x4plus_netD.pth, to fine-tune from


class LossConfig(_Section):
    pixel: PixelLossConfig = PixelLossConfig()
    perceptual: PerceptualLossConfig = PerceptualLossConfig()
    adversarial: AdversarialConfig = AdversarialConfig()


def make_pixel_loss(name: PixelLossName, eps: float = CHARBONNIER_EPS) -> PixelLoss:
    """`l1`, `mse` or `charbonnier` (sqrt(d^2 + eps^2)), averaged over all pixels."""
    return PixelLoss(name, eps)


def make_perceptual_loss(
    config: PerceptualLossConfig,
    value_range: ValueRange = "unit",
    features: VGG19Features | None = None,
) -> PerceptualLoss:
    """The VGG19 feature loss of `config`, the network read from `config.vgg_weights` (or
    $SRGAN_VGG19) up to the deepest layer it needs; `features` replaces the file (tests,
    benchmarks). BadInputError, saying what to do, when no weights file is given."""
    recipe = config.recipe()
    if features is None:
        deepest = layer_name(max(layer_index(name) for name in recipe.layer_weights))
        features = load_vgg19_features(config.vgg_weights, deepest)
    return PerceptualLoss(
        features, recipe.layer_weights, recipe.criterion, recipe.feature_scale, value_range
    )


def make_discriminator(config: AdversarialConfig, hr_size: int, in_channels: int = 3) -> nn.Module:
    """The discriminator of `config` for HR patches of `hr_size`, with its pretrained
    weights when `config.pretrained` names a file."""
    if config.discriminator == "unet":
        if hr_size % UNetDiscriminatorSN.size_multiple:
            raise BadInputError(
                f"the U-Net discriminator needs an HR patch size in multiples of "
                f"{UNetDiscriminatorSN.size_multiple}, not {hr_size}"
            )
        model: nn.Module = UNetDiscriminatorSN(
            in_channels, config.num_features, config.skip_connection
        )
    else:
        try:
            model = SRGANDiscriminator(in_channels, config.num_features, hr_size)
        except ValueError as exc:
            raise BadInputError(f"the SRGAN discriminator: {exc}") from exc
    if config.pretrained is not None:
        load_discriminator_weights(model, config.pretrained)
    return model


def load_discriminator_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a state dict file (plain, or under BasicSR's `params`/`params_ema` or
    `state_dict`) into `model`, strictly; BadInputError naming the file otherwise."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise BadInputError(f"{file}: no such discriminator weights file")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses anything but tensors and containers
        raise BadInputError(f"{file}: not a state dict torch can read safely ({exc})") from exc
    for key in ("params_ema", "params", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInputError(f"{file}: not a state dict of tensors")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:3])
        raise BadInputError(
            f"{file}: does not fit the {type(model).__name__} of this config ({detail})"
        ) from exc


class GeneratorLoss(nn.Module):
    """The weighted generator terms of a LossConfig: `pixel` and `perceptual` against the
    target, `adversarial` from the discriminator's logits on the output. Returns each
    weighted term that is on, and their sum as `total`."""

    def __init__(
        self,
        config: LossConfig,
        perceptual: PerceptualLoss | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.pixel = make_pixel_loss(config.pixel.kind, config.pixel.charbonnier_eps)
        if config.perceptual.weight > 0 and perceptual is None:
            raise ValueError("perceptual.weight > 0: pass the loss from make_perceptual_loss")
        self.perceptual = perceptual if config.perceptual.weight > 0 else None

    def forward(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        fake_logits: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        config = self.config
        terms: dict[str, torch.Tensor] = {}
        if config.pixel.weight > 0:
            terms["pixel"] = config.pixel.weight * self.pixel(output, target)
        if self.perceptual is not None:
            terms["perceptual"] = config.perceptual.weight * self.perceptual(output, target)
        if config.adversarial.weight > 0 and fake_logits is not None:
            adversarial = generator_adversarial_loss(fake_logits)
            terms["adversarial"] = config.adversarial.weight * adversarial
        terms["total"] = torch.stack(list(terms.values())).sum() if terms else output.new_zeros(())
        return terms


__all__ = [
    "PERCEPTUAL_PRESETS",
    "AdversarialConfig",
    "GeneratorLoss",
    "LossConfig",
    "PerceptualLossConfig",
    "PixelLossConfig",
    "discriminator_loss",
    "load_discriminator_weights",
    "make_discriminator",
    "make_perceptual_loss",
    "make_pixel_loss",
]
