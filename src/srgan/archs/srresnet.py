"""SRResNet, the generator of SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image
Super-Resolution Using a Generative Adversarial Network", figure 4).

The network works at low resolution: a 9x9 head convolution, ``num_blocks`` residual blocks
(conv-BN-PReLU-conv-BN plus identity), a conv-BN with a global skip back to the head output,
sub-pixel upsampling stages (conv, pixel shuffle, PReLU) and a 9x9 tail convolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from srgan.archs.spec import ArchSpec, Hyperparameters, StateDict, dims, indices, upsample_factors

__all__ = ["SPEC", "SUPPORTED_SCALES", "SRResNet", "srresnet_guess", "srresnet_hyperparameters"]

#: Upscaling factors the generator can be built for, with their pixel-shuffle factors per stage.
_STAGES: dict[int, tuple[int, ...]] = {2: (2,), 3: (3,), 4: (2, 2), 8: (2, 2, 2)}
SUPPORTED_SCALES: tuple[int, ...] = tuple(sorted(_STAGES))


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN with an identity skip."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        # Convolutions followed by batch norm carry no bias: BN's shift makes it redundant.
        self.conv1 = nn.Conv2d(num_features, num_features, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(num_features)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(num_features, num_features, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return x + out


class UpsampleStage(nn.Module):
    """conv3x3 (C -> r*r*C), PixelShuffle(r), PReLU: one sub-pixel upsampling step by ``r``."""

    def __init__(self, num_features: int, factor: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_features, num_features * factor * factor, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(factor)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """SRResNet generator; maps an ``[N, in_channels, H, W]`` tensor to
    ``[N, out_channels, H*scale, W*scale]``.

    The output is not clamped and no value range is assumed; the caller picks the input
    normalisation the weights were trained with.

    State-dict keys (``C`` = ``num_features``, ``i`` < ``num_blocks``, ``j`` < number of
    upsampling stages; PReLUs have a single shared slope, shape ``[1]``)::

        head.0.weight              [C, in_channels, 9, 9]   9x9 conv
        head.0.bias                [C]
        head.1.weight              [1]                      PReLU
        blocks.i.conv1.weight      [C, C, 3, 3]             (no bias)
        blocks.i.bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
        blocks.i.prelu.weight      [1]
        blocks.i.conv2.weight      [C, C, 3, 3]             (no bias)
        blocks.i.bn2.{weight,bias,running_mean,running_var,num_batches_tracked}
        trunk_conv.weight          [C, C, 3, 3]             (no bias)
        trunk_bn.{weight,bias,running_mean,running_var,num_batches_tracked}
        upsample.j.conv.weight     [r*r*C, C, 3, 3]         r = 2 (scale 2, 4, 8) or 3 (scale 3)
        upsample.j.conv.bias       [r*r*C]
        upsample.j.prelu.weight    [1]
        tail.weight                [out_channels, C, 9, 9]  9x9 conv
        tail.bias                  [out_channels]

    Scale 2 and 3 use one stage, scale 4 two and scale 8 three stages.
    :func:`srresnet_hyperparameters` recovers the constructor arguments from such a dict.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 16,
        scale: int = 4,
    ) -> None:
        super().__init__()
        if scale not in _STAGES:
            raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, not {scale!r}")
        if min(in_channels, out_channels, num_features) < 1 or num_blocks < 0:
            raise ValueError("channel counts must be positive and num_blocks non-negative")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_features = num_features
        self.num_blocks = num_blocks
        self.scale = scale

        self.head = nn.Sequential(nn.Conv2d(in_channels, num_features, 9, 1, 4), nn.PReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(num_features) for _ in range(num_blocks)))
        self.trunk_conv = nn.Conv2d(num_features, num_features, 3, 1, 1, bias=False)
        self.trunk_bn = nn.BatchNorm2d(num_features)
        self.upsample = nn.Sequential(*(UpsampleStage(num_features, r) for r in _STAGES[scale]))
        self.tail = nn.Conv2d(num_features, out_channels, 9, 1, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        trunk = self.trunk_bn(self.trunk_conv(self.blocks(feat)))
        out: torch.Tensor = self.tail(self.upsample(feat + trunk))
        return out


def srresnet_guess(state: StateDict) -> Hyperparameters | None:
    """SRResNet's constructor arguments as the key names and shapes imply them."""
    head, tail = dims(state, "head.0.weight", 2), dims(state, "tail.weight", 1)
    if head is None or tail is None:
        return None
    num_features, in_channels = head
    factors = upsample_factors(state, num_features)
    if not factors:
        return None
    blocks = indices(state, "blocks.", ".conv1.weight")
    return {
        "in_channels": in_channels,
        "out_channels": tail[0],
        "num_features": num_features,
        "num_blocks": blocks[-1] + 1 if blocks else 0,
        "scale": math.prod(factors),
    }


def srresnet_hyperparameters(state_dict: StateDict) -> Hyperparameters | None:
    """Constructor kwargs of the :class:`SRResNet` that produced ``state_dict``, else None.

    The result is only returned when an ``SRResNet`` built with it has exactly the same keys
    and tensor shapes as ``state_dict`` (``*.num_batches_tracked`` entries may be absent).
    Keys must be unprefixed (strip e.g. ``module.`` beforehand).
    """
    return SPEC.recognise(state_dict)


SPEC = ArchSpec(
    name="SRResNet",
    build=SRResNet,
    guess=srresnet_guess,
    plausible={
        "in_channels": range(1, 17),
        "out_channels": range(1, 17),
        "num_features": range(1, 513),
        "num_blocks": range(0, 257),
        "scale": SUPPORTED_SCALES,
    },
    scale=lambda hp: int(hp["scale"]),
    in_channels=lambda hp: int(hp["in_channels"]),
    out_channels=lambda hp: int(hp["out_channels"]),
    memory_per_pixel=lambda hp: 4.0 * int(hp["num_features"]) * (6 + 2 * int(hp["scale"]) ** 2),
    example={"in_channels": 3, "out_channels": 3, "num_features": 8, "num_blocks": 2, "scale": 2},
)
