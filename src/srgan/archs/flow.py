"""Optical flow for aligning video features: backward warping and a small flow network.

Convention everywhere: ``flow = estimate(reference, neighbour)`` is a ``[B, 2, h, w]``
tensor of pixel displacements ``(dx, dy)`` such that the neighbour sampled at
``p + flow(p)`` looks like the reference at ``p`` (``warp(neighbour, flow) ~ reference``).
That is the flow OpenCV's ``calcOpticalFlow*``/DIS return for ``(prev=reference,
next=neighbour)``, so learned and classical estimators are interchangeable.

:class:`PyramidFlow` is a SPyNet-like estimator (Ranjan and Black 2017): an image
pyramid by 2x average pooling, a zero flow at the coarsest level, and at each finer
level the flow doubled and upsampled, the neighbour warped by it, and a small CNN fed
``[reference, warped neighbour, flow]`` predicting a residual. There are no pretrained
weights: the last convolution of every level starts at zero, so a fresh estimator
returns exactly zero flow (the network then behaves as an unaligned one) and learns its
flows from the data (a photometric loss, and the super-resolution loss through the warp).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PyramidFlow", "downsample", "flow_warp"]

_NEGATIVE_SLOPE = 0.1


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``x`` ``[B, C, h, w]`` sampled at ``p + flow(p)`` (bilinear, border padding).

    Zero flow returns ``x`` (up to float rounding): pixel centres sit exactly on the
    sampling grid (``align_corners=True`` with pixel ``i`` at coordinate ``i``)."""
    if flow.shape[0] != x.shape[0] or flow.shape[1] != 2 or flow.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"flow {tuple(flow.shape)} does not match features {tuple(x.shape)}")
    height, width = x.shape[-2:]
    ys = torch.arange(height, dtype=flow.dtype, device=flow.device).view(1, height, 1)
    xs = torch.arange(width, dtype=flow.dtype, device=flow.device).view(1, 1, width)
    grid_x = (xs + flow[:, 0]) * (2 / max(width - 1, 1)) - 1
    grid_y = (ys + flow[:, 1]) * (2 / max(height - 1, 1)) - 1
    if width == 1:
        grid_x = torch.zeros_like(grid_x)
    if height == 1:
        grid_y = torch.zeros_like(grid_y)
    grid = torch.stack((grid_x, grid_y), dim=-1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def downsample(x: torch.Tensor) -> torch.Tensor:
    """Half the size (rounded up) by averaging: one pyramid level."""
    height, width = x.shape[-2:]
    return F.adaptive_avg_pool2d(x, ((height + 1) // 2, (width + 1) // 2))


def upsample_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A flow brought to ``size`` (bilinear), its displacements scaled to the new pixels."""
    height, width = flow.shape[-2:]
    if (height, width) == size:
        return flow
    resized = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    factors = torch.tensor([size[1] / width, size[0] / height], dtype=flow.dtype)
    return resized * factors.to(flow.device).view(1, 2, 1, 1)


class FlowLevel(nn.Module):
    """[reference, warped neighbour, flow] -> residual flow: four 3x3 convolutions."""

    def __init__(self, in_channels: int, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2 * in_channels + 2, features, 3, 1, 1)
        self.conv2 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv3 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv4 = nn.Conv2d(features, 2, 3, 1, 1)
        nn.init.zeros_(self.conv4.weight)  # a fresh level predicts no motion
        assert self.conv4.bias is not None
        nn.init.zeros_(self.conv4.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in (self.conv1, self.conv2, self.conv3):
            x = F.leaky_relu(conv(x), _NEGATIVE_SLOPE)
        out: torch.Tensor = self.conv4(x)
        return out


class PyramidFlow(nn.Module):
    """``(reference, neighbour)`` ``[B, C, h, w]`` in [0, 1] -> flow ``[B, 2, h, w]``.

    State-dict keys (``l`` < ``levels``, level 0 the finest; ``F`` = ``features``)::

        levels.l.conv1.{weight,bias}   [F, 2C + 2, 3, 3]
        levels.l.conv{2,3}.{weight,bias} [F, F, 3, 3]
        levels.l.conv4.{weight,bias}   [2, F, 3, 3]
    """

    def __init__(self, in_channels: int = 3, levels: int = 3, features: int = 16) -> None:
        super().__init__()
        if levels < 1 or features < 1:
            raise ValueError("a flow pyramid needs at least one level and one feature")
        self.levels = nn.ModuleList(FlowLevel(in_channels, features) for _ in range(levels))

    def forward(self, reference: torch.Tensor, neighbour: torch.Tensor) -> torch.Tensor:
        references, neighbours = [reference - 0.5], [neighbour - 0.5]
        for _ in range(len(self.levels) - 1):
            references.append(downsample(references[-1]))
            neighbours.append(downsample(neighbours[-1]))
        flow: torch.Tensor | None = None
        for level in range(len(self.levels) - 1, -1, -1):
            ref, nbr = references[level], neighbours[level]
            size = (ref.shape[-2], ref.shape[-1])
            if flow is None:
                flow = ref.new_zeros(ref.shape[0], 2, *size)
            else:
                flow = upsample_flow(flow, size)
            warped = flow_warp(nbr, flow)
            flow = flow + self.levels[level](torch.cat((ref, warped, flow), dim=1))
        assert flow is not None
        return flow
