"""A bidirectional recurrent video super-resolution network (the BasicVSR family).

Chan et al. 2021 ("BasicVSR: The Search for Essential Components in Video Super-Resolution
and Beyond") showed that two recurrent passes over a clip, one backward and one forward,
whose hidden states are fused per frame and upsampled, make a strong and simple VSR model.
This module keeps that shape and drops the optical-flow alignment: there is no flow network
(a pretrained SPyNet would be a second set of weights and slow on CPU), so motion is handled
implicitly by the receptive field of the propagation trunks. That keeps the network small,
fully convolutional and cheap enough to train and run on a CPU at small sizes.

One difference from BasicVSR on purpose: neither direction starts from a zero hidden state.
Both initial states are computed from the features of the clip's centre frame (index
``T // 2``), so the first frame of the backward pass (``T - 1``) and of the forward pass
(``0``) already see the middle of the window. Windowed inference (several overlapping
windows over a long video) then gives every window a hidden state anchored on its own
content instead of on nothing.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from srgan.archs.spec import ArchSpec, Hyperparameters, StateDict, dims, indices, upsample_factors

__all__ = [
    "SPEC",
    "SUPPORTED_SCALES",
    "BidirectionalRecurrentVSR",
    "vsr_guess",
    "vsr_hyperparameters",
]

#: Upscaling factors the network can be built for, with their pixel-shuffle factors per stage.
_STAGES: dict[int, tuple[int, ...]] = {2: (2,), 3: (3,), 4: (2, 2)}
SUPPORTED_SCALES: tuple[int, ...] = tuple(sorted(_STAGES))

#: Residual blocks after the first convolution of the per-frame feature extractor.
EXTRACTION_BLOCKS = 2
_NEGATIVE_SLOPE = 0.1


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=_NEGATIVE_SLOPE, inplace=True)


class ResidualBlock(nn.Module):
    """conv3x3-LeakyReLU-conv3x3 with an identity skip (no normalisation)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, 1, 1)
        self.act = _lrelu()
        self.conv2 = nn.Conv2d(num_features, num_features, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class PropagationTrunk(nn.Module):
    """One direction's recurrent cell: [frame features, hidden state] -> new hidden state."""

    def __init__(self, num_features: int, num_blocks: int) -> None:
        super().__init__()
        self.merge = nn.Conv2d(2 * num_features, num_features, 3, 1, 1)
        self.act = _lrelu()
        self.blocks = nn.Sequential(*(ResidualBlock(num_features) for _ in range(num_blocks)))

    def forward(self, features: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        merged = self.act(self.merge(torch.cat((features, hidden), dim=1)))
        out: torch.Tensor = self.blocks(merged)
        return out


class UpsampleStage(nn.Module):
    """conv3x3 (C -> r*r*C), PixelShuffle(r), LeakyReLU."""

    def __init__(self, num_features: int, factor: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_features, num_features * factor * factor, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(factor)
        self.act = _lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class BidirectionalRecurrentVSR(nn.Module):
    """Maps a clip ``[N, T, C, h, w]`` in [0, 1] to ``[N, T, C, h*scale, w*scale]``.

    Per frame: feature extraction (conv + LeakyReLU + two residual blocks). Then a backward
    pass ``t = T-1 .. 0`` and a forward pass ``t = 0 .. T-1``, each a residual trunk fed
    ``[features_t, hidden]``; both passes start from a hidden state computed from the
    centre frame's features (``init_backward`` / ``init_forward`` applied to frame
    ``T // 2``). For each frame the two hidden states are fused by a 1x1 conv, upsampled by
    pixel shuffle and a final conv, and added to the bilinearly upsampled input frame
    (``F.interpolate(mode="bilinear", align_corners=False)``: cheap and differentiable).
    The output is not clamped. There is no optical-flow alignment (see the module doc).
    An ``[N, C, h, w]`` input is taken as a one-frame clip and gives ``[N, C, H, W]``, so
    the network also upscales single images.

    State-dict keys (``C`` = ``num_features``, ``k`` < 2 extraction blocks, ``i`` <
    ``num_blocks``, ``d`` in ``{backward, forward}``, ``j`` < number of upsampling stages;
    every conv has a bias of shape ``[out]``)::

        extract_conv.{weight,bias}                 [C, in_channels, 3, 3]
        extract_blocks.k.conv1.{weight,bias}       [C, C, 3, 3]
        extract_blocks.k.conv2.{weight,bias}       [C, C, 3, 3]
        init_backward.{weight,bias}                [C, C, 3, 3]   centre frame -> hidden
        init_forward.{weight,bias}                 [C, C, 3, 3]
        d_trunk.merge.{weight,bias}                [C, 2C, 3, 3]  [features, hidden] -> C
        d_trunk.blocks.i.conv1.{weight,bias}       [C, C, 3, 3]
        d_trunk.blocks.i.conv2.{weight,bias}       [C, C, 3, 3]
        fusion.{weight,bias}                       [C, 2C, 1, 1]  [backward, forward] -> C
        upsample.j.conv.{weight,bias}              [r*r*C, C, 3, 3]  r = 2 (x2, x4) or 3 (x3)
        output_conv.{weight,bias}                  [out_channels, C, 3, 3]

    Scale 2 and 3 use one upsampling stage, scale 4 two. ``in_channels`` must equal
    ``out_channels`` (the upsampled input is added channel for channel).
    :func:`vsr_hyperparameters` recovers the constructor arguments from such a dict.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 32,
        num_blocks: int = 4,
        scale: int = 3,
    ) -> None:
        super().__init__()
        if scale not in _STAGES:
            raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, not {scale!r}")
        if min(in_channels, out_channels, num_features) < 1 or num_blocks < 0:
            raise ValueError("channel counts must be positive and num_blocks non-negative")
        if in_channels != out_channels:
            raise ValueError("BidirectionalRecurrentVSR needs in_channels == out_channels")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_features = num_features
        self.num_blocks = num_blocks
        self.scale = scale

        self.extract_conv = nn.Conv2d(in_channels, num_features, 3, 1, 1)
        self.extract_act = _lrelu()
        self.extract_blocks = nn.Sequential(
            *(ResidualBlock(num_features) for _ in range(EXTRACTION_BLOCKS))
        )
        self.init_backward = nn.Conv2d(num_features, num_features, 3, 1, 1)
        self.init_forward = nn.Conv2d(num_features, num_features, 3, 1, 1)
        self.backward_trunk = PropagationTrunk(num_features, num_blocks)
        self.forward_trunk = PropagationTrunk(num_features, num_blocks)
        self.fusion = nn.Conv2d(2 * num_features, num_features, 1, 1, 0)
        self.fusion_act = _lrelu()
        self.upsample = nn.Sequential(*(UpsampleStage(num_features, r) for r in _STAGES[scale]))
        self.output_conv = nn.Conv2d(num_features, out_channels, 3, 1, 1)

    def extract_features(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, T, C, h, w]`` -> per-frame features ``[N, T, F, h, w]``."""
        n, t, c, h, w = frames.shape
        flat = self.extract_act(self.extract_conv(frames.reshape(n * t, c, h, w)))
        features: torch.Tensor = self.extract_blocks(flat)
        return features.reshape(n, t, self.num_features, h, w)

    def initial_states(self, centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial (backward, forward) hidden states from the centre frame's features."""
        backward = F.leaky_relu(self.init_backward(centre), _NEGATIVE_SLOPE)
        forward = F.leaky_relu(self.init_forward(centre), _NEGATIVE_SLOPE)
        return backward, forward

    def reconstruct(self, fused: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """Fused LR features ``[B, F, h, w]`` + LR frame ``[B, C, h, w]`` -> HR frame."""
        residual = self.output_conv(self.upsample(fused))
        base = F.interpolate(frame, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return residual + base

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim == 4:  # an image is a one-frame clip
            return self.forward(frames.unsqueeze(1)).squeeze(1)
        if frames.ndim != 5:
            raise ValueError(f"expected [N, T, C, h, w] frames, got shape {tuple(frames.shape)}")
        num_frames = frames.shape[1]
        if num_frames < 1:
            raise ValueError("a clip needs at least one frame")
        features = self.extract_features(frames)
        hidden_backward, hidden_forward = self.initial_states(features[:, num_frames // 2])

        backward_states: list[torch.Tensor] = []
        for t in range(num_frames - 1, -1, -1):
            hidden_backward = self.backward_trunk(features[:, t], hidden_backward)
            backward_states.append(hidden_backward)
        backward_states.reverse()

        outputs: list[torch.Tensor] = []
        for t in range(num_frames):
            hidden_forward = self.forward_trunk(features[:, t], hidden_forward)
            both = torch.cat((backward_states[t], hidden_forward), dim=1)
            fused = self.fusion_act(self.fusion(both))
            outputs.append(self.reconstruct(fused, frames[:, t]))
        return torch.stack(outputs, dim=1)


def vsr_guess(state: StateDict) -> Hyperparameters | None:
    """The network's constructor arguments as the key names and shapes imply them."""
    first, last = dims(state, "extract_conv.weight", 2), dims(state, "output_conv.weight", 1)
    if first is None or last is None:
        return None
    num_features, in_channels = first
    factors = upsample_factors(state, num_features)
    if not factors:
        return None
    blocks = indices(state, "forward_trunk.blocks.", ".conv1.weight")
    return {
        "in_channels": in_channels,
        "out_channels": last[0],
        "num_features": num_features,
        "num_blocks": blocks[-1] + 1 if blocks else 0,
        "scale": math.prod(factors),
    }


def vsr_hyperparameters(state_dict: StateDict) -> Hyperparameters | None:
    """Constructor kwargs of the :class:`BidirectionalRecurrentVSR` behind ``state_dict``.

    Returns None unless a network built with the result has exactly the same keys and
    tensor shapes as ``state_dict``. Keys must be unprefixed (strip e.g. ``module.``).
    """
    return SPEC.recognise(state_dict)


SPEC = ArchSpec(
    name="BidirectionalRecurrentVSR",
    build=BidirectionalRecurrentVSR,
    guess=vsr_guess,
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
    # per frame: features and two hidden states at LR, the upsampling at HR
    memory_per_pixel=lambda hp: 4.0 * int(hp["num_features"]) * (8 + 2 * int(hp["scale"]) ** 2),
    example={"in_channels": 3, "out_channels": 3, "num_features": 8, "num_blocks": 1, "scale": 2},
    temporal=True,
)
