"""The SRGAN discriminator (Ledig et al. 2017, figure 4): a VGG-style classifier of
high-resolution patches that returns one real-vs-fake logit per image.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SRGANDiscriminator"]

#: (width multiplier, stride) of the eight 3x3 convolutions.
_CONV_PLAN: tuple[tuple[int, int], ...] = (
    (1, 1),
    (1, 2),
    (2, 1),
    (2, 2),
    (4, 1),
    (4, 2),
    (8, 1),
    (8, 2),
)
_DOWNSAMPLE = 16  # four stride-2 convolutions


class SRGANDiscriminator(nn.Module):
    """Eight conv3x3 layers (BN after all but the first, LeakyReLU(0.2) after each), then
    Linear(8C * (input_size/16)^2 -> 1024), LeakyReLU(0.2), Linear(1024 -> 1).

    Takes ``[N, in_channels, input_size, input_size]`` and returns raw logits ``[N, 1]``
    (no sigmoid; pair with ``BCEWithLogitsLoss``). ``C`` = ``num_features``.

    State-dict keys: ``features.k.conv.weight`` for k in 0..7 (``features.0.conv.bias`` only,
    the others are bias-free and followed by ``features.k.bn.*``), ``classifier.0.*``
    (hidden linear) and ``classifier.2.*`` (output linear).
    """

    def __init__(self, in_channels: int = 3, num_features: int = 64, input_size: int = 96) -> None:
        super().__init__()
        if input_size < _DOWNSAMPLE or input_size % _DOWNSAMPLE:
            raise ValueError(
                f"input_size must be a positive multiple of {_DOWNSAMPLE}, not {input_size!r}"
            )
        self.in_channels = in_channels
        self.num_features = num_features
        self.input_size = input_size

        layers: list[nn.Module] = []
        prev = in_channels
        for k, (mult, stride) in enumerate(_CONV_PLAN):
            width = num_features * mult
            block = nn.Sequential()
            block.add_module("conv", nn.Conv2d(prev, width, 3, stride, 1, bias=k == 0))
            if k > 0:
                block.add_module("bn", nn.BatchNorm2d(width))
            block.add_module("act", nn.LeakyReLU(0.2, inplace=True))
            layers.append(block)
            prev = width
        self.features = nn.Sequential(*layers)

        side = input_size // _DOWNSAMPLE
        self.classifier = nn.Sequential(
            nn.Linear(prev * side * side, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.input_size, self.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"SRGANDiscriminator expects input of shape [N, {expected[0]}, {expected[1]}, "
                f"{expected[2]}], got {list(x.shape)}"
            )
        out: torch.Tensor = self.classifier(torch.flatten(self.features(x), 1))
        return out
