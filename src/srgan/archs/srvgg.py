"""SRVGGNetCompact, the small VGG-style network of Real-ESRGAN (``realesr-animevideov3``,
``realesr-general-x4v3``).

Parameter names match the Real-ESRGAN releases: ``body`` is one ``nn.ModuleList`` holding
``[conv_first, act, (conv, act) * num_conv, conv_last]``, so convolutions are
``body.{0,2,4,...}`` and PReLU slopes (``act_type='prelu'`` only) are ``body.{1,3,5,...}``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SRVGGNetCompact"]

_ACT_TYPES = ("relu", "prelu", "leakyrelu")


def _make_act(act_type: str, num_feat: int) -> nn.Module:
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    return nn.LeakyReLU(negative_slope=0.1, inplace=True)


class SRVGGNetCompact(nn.Module):
    """Plain conv stack at input resolution, pixel shuffle, plus a nearest-upsampled input."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
    ) -> None:
        super().__init__()
        if act_type not in _ACT_TYPES:
            raise ValueError(f"act_type must be one of {_ACT_TYPES}, not {act_type!r}")
        if num_in_ch != num_out_ch:
            # The residual adds the upsampled input to the output channel for channel.
            raise ValueError("SRVGGNetCompact needs num_in_ch == num_out_ch")
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.num_feat = num_feat
        self.num_conv = num_conv
        self.upscale = upscale
        self.act_type = act_type

        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)]
        layers.append(_make_act(act_type, num_feat))
        for _ in range(num_conv):
            layers.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            layers.append(_make_act(act_type, num_feat))
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        shuffled: torch.Tensor = self.upsampler(out)
        return shuffled + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
