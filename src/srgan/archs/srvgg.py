"""SRVGGNetCompact, the small VGG-style network of Real-ESRGAN (``realesr-animevideov3``,
``realesr-general-x4v3``).

Parameter names match the Real-ESRGAN releases: ``body`` is one ``nn.ModuleList`` holding
``[conv_first, act, (conv, act) * num_conv, conv_last]``, so convolutions are
``body.{0,2,4,...}`` and PReLU slopes (``act_type='prelu'`` only) are ``body.{1,3,5,...}``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from srgan.archs.ncnn_match import (
    Act,
    GraphLayer,
    Mismatch,
    NcnnGraph,
    NcnnMatch,
    close,
    conv_tensors,
    depth_order,
    to_tensor,
)
from srgan.archs.spec import ArchSpec, Hyperparameters, StateDict, dims, indices

__all__ = ["SPEC", "SRVGGNetCompact", "srvgg_guess"]

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


def srvgg_guess(state: StateDict) -> Hyperparameters | None:
    """SRVGGNetCompact's constructor arguments as the key names and shapes imply them.
    Only the PReLU variant is recognised: the ReLU and LeakyReLU ones have no parameters
    between the convolutions to tell them from other plain conv stacks."""
    if any(not key.startswith("body.") for key in state):
        return None
    tensors = indices(state, "body.", ".weight")
    convs = [i for i in tensors if dims(state, f"body.{i}.weight", 4) is not None]
    if len(convs) < 2 or f"body.{convs[0] + 1}.weight" not in state:
        return None
    first = dims(state, f"body.{convs[0]}.weight", 2)
    last = dims(state, f"body.{convs[-1]}.weight", 1)
    if first is None or last is None:
        return None
    (features, channels), (last_out,) = first, last
    upscale = math.isqrt(last_out // channels) if channels > 0 else 0
    if upscale < 1 or upscale * upscale * channels != last_out:
        return None
    return {
        "num_in_ch": channels,
        "num_out_ch": channels,
        "num_feat": features,
        "num_conv": len(convs) - 2,
        "upscale": upscale,
        "act_type": "prelu",
    }


def _ncnn_act_type(act: Act, name: str) -> str:
    if act.kind == "prelu":
        return "prelu"
    if act.kind == "relu":
        return "relu"
    if act.kind == "leaky" and close(act.slope, 0.1):
        return "leakyrelu"
    raise Mismatch(f"activation after {name!r} is not ReLU, LeakyReLU(0.1) or PReLU")


def match_ncnn(g: NcnnGraph) -> NcnnMatch:
    """SRVGGNetCompact: convolutions, a PixelShuffle, plus the nearest-upsampled input."""
    sd: dict[str, torch.Tensor] = {}
    x = g.single_input()
    op, h, act = g.conv(x, "any")
    if act.kind == "none":
        raise Mismatch(f"no activation after the first convolution {op.name!r}")
    act_type = _ncnn_act_type(act, op.name)
    convs: list[tuple[GraphLayer, Act]] = [(op, act)]
    while True:
        op, h, act = g.conv(h, "any")
        convs.append((op, act))
        if act.kind == "none":
            break
        if _ncnn_act_type(act, op.name) != act_type:
            raise Mismatch(f"activation after {op.name!r} differs from the first one")
    shuffle = g.find("PixelShuffle", [h])
    factor = shuffle.int_param(0, 1)
    mode = shuffle.int_param(1, 0)
    if factor < 1 or mode not in (0, 1):
        raise Mismatch(f"PixelShuffle {shuffle.name!r} has unsupported parameters")
    base = g.upsample_nearest(x, factor)
    out = g.scaled_add(g.out(shuffle), base, 1.0)
    g.finish(out, "SRVGGNetCompact")

    num_feat = 0
    for i, (op, act) in enumerate(convs):
        w, b = conv_tensors(op)
        if i == 0:
            num_feat = w.shape[0]
        if i == len(convs) - 1:
            if w.shape[0] % (factor * factor):
                raise Mismatch(f"last convolution {op.name!r} does not fit the PixelShuffle")
            if mode == 1:
                order = depth_order(w.shape[0] // (factor * factor), factor)
                w, b = w[order], b[order]
        sd[f"body.{2 * i}.weight"], sd[f"body.{2 * i}.bias"] = to_tensor(w), to_tensor(b)
        if act.kind == "prelu" and act.layer is not None:
            slope = act.layer.weights["slope"]
            if slope.size == 1:
                slope = np.repeat(slope, num_feat)
            sd[f"body.{2 * i + 1}.weight"] = to_tensor(slope)
    last_out = int(sd[f"body.{2 * (len(convs) - 1)}.weight"].shape[0])
    hp: dict[str, int | str] = {
        "num_in_ch": int(sd["body.0.weight"].shape[1]),
        "num_out_ch": last_out // (factor * factor),
        "num_feat": num_feat,
        "num_conv": len(convs) - 2,
        "upscale": factor,
        "act_type": act_type,
    }
    return hp, sd


SPEC = ArchSpec(
    name="SRVGGNetCompact",
    build=SRVGGNetCompact,
    guess=srvgg_guess,
    plausible={
        "num_in_ch": range(1, 17),
        "num_out_ch": range(1, 17),
        "num_feat": range(1, 513),
        "num_conv": range(0, 257),
        "upscale": range(1, 9),
        "act_type": _ACT_TYPES,
    },
    scale=lambda hp: int(hp["upscale"]),
    in_channels=lambda hp: int(hp["num_in_ch"]),
    out_channels=lambda hp: int(hp["num_out_ch"]),
    memory_per_pixel=lambda hp: 4.0 * int(hp["num_feat"]) * 4,
    example={
        "num_in_ch": 3,
        "num_out_ch": 3,
        "num_feat": 8,
        "num_conv": 2,
        "upscale": 2,
        "act_type": "prelu",
    },
    ncnn_match=match_ncnn,
)
