"""RRDBNet, the ESRGAN / Real-ESRGAN generator.

Parameter names match the public BasicSR and Real-ESRGAN releases
(``conv_first``, ``body.N.rdbK.convM``, ``conv_body``, ``conv_up1``, ``conv_up2``,
``conv_hr``, ``conv_last``), so their ``.pth`` state dicts load with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from srgan.archs.ncnn_match import (
    GraphLayer,
    Mismatch,
    NcnnGraph,
    NcnnMatch,
    conv_tensors,
    depth_order,
    to_tensor,
)
from srgan.archs.spec import ArchSpec, Hyperparameters, StateDict, dims, indices

__all__ = ["RRDB", "SPEC", "RRDBNet", "ResidualDenseBlock", "rrdbnet_guess"]

RESIDUAL_SCALE = 0.2
_LEAKY_SLOPE = 0.2


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convolutions with a scaled residual connection."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=_LEAKY_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5: torch.Tensor = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks and a scaled residual."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    """ESRGAN generator; always upsamples its trunk by 4.

    For ``scale`` 2 and 1 the input is first pixel-unshuffled by 2 and 4 (as in BasicSR),
    so ``conv_first`` sees ``num_in_ch * 4`` or ``num_in_ch * 16`` channels and the input
    height and width must be divisible by 2 or 4.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet supports scale 1, 2 or 4, not {scale}")
        self.scale = scale
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        in_ch = num_in_ch * {4: 1, 2: 4, 1: 16}[scale]
        self.conv_first = nn.Conv2d(in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=_LEAKY_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = F.pixel_unshuffle(x, 4)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out: torch.Tensor = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out


_REQUIRED = ("conv_first.weight", "conv_body.weight", "conv_up1.weight", "conv_last.weight")


def rrdbnet_guess(state: StateDict) -> Hyperparameters | None:
    """RRDBNet's constructor arguments as the key names and shapes imply them."""
    if not all(key in state for key in _REQUIRED):
        return None
    blocks = indices(state, "body.", ".rdb1.conv1.weight")
    first, last = dims(state, "conv_first.weight", 2), dims(state, "conv_last.weight", 1)
    grow = dims(state, "body.0.rdb1.conv1.weight", 1)
    if not blocks or first is None or last is None or grow is None:
        return None
    (num_feat, first_in), (out_channels,) = first, last
    # BasicSR feeds x2 and x1 models a pixel-unshuffled input (4x or 16x the channels).
    scale, in_channels = 4, first_in
    if out_channels and first_in % 16 == 0 and first_in // 16 == out_channels:
        scale, in_channels = 1, first_in // 16
    elif out_channels and first_in % 4 == 0 and first_in // 4 == out_channels:
        scale, in_channels = 2, first_in // 4
    return {
        "num_in_ch": in_channels,
        "num_out_ch": out_channels,
        "scale": scale,
        "num_feat": num_feat,
        "num_block": blocks[-1] + 1,
        "num_grow_ch": grow[0],
    }


def _memory_per_pixel(hp: Hyperparameters) -> float:
    # dense blocks hold ~5x num_feat at LR; two feature maps live at the output size
    return 4.0 * int(hp["num_feat"]) * (6 + 2 * int(hp["scale"]) ** 2)


def match_ncnn(g: NcnnGraph) -> NcnnMatch:
    """RRDBNet as Real-ESRGAN's ncnn files hold it (x1/x2 with a Reorg pixel unshuffle)."""
    sd: dict[str, torch.Tensor] = {}

    def put(key: str, op: GraphLayer) -> None:
        w, b = conv_tensors(op)
        sd[f"{key}.weight"], sd[f"{key}.bias"] = to_tensor(w), to_tensor(b)

    x = g.single_input()
    scale = 4
    unshuffle_mode = 0
    unshuffle = 1
    reorgs = g.candidates("Reorg", [x])
    if reorgs:
        reorg = reorgs[0]
        g.use(reorg)
        unshuffle = reorg.int_param(0, 1)
        unshuffle_mode = reorg.int_param(1, 0)
        if unshuffle not in (2, 4) or unshuffle_mode not in (0, 1):
            raise Mismatch(f"Reorg {reorg.name!r} must have stride 2 or 4, mode 0 or 1")
        scale = 4 // unshuffle
        x = g.out(reorg)

    first, feat, _ = g.conv(x, "none")
    w, b = conv_tensors(first)
    if w.shape[1] % (unshuffle * unshuffle):
        raise Mismatch("conv_first input channels do not fit the pixel unshuffle")
    num_in_ch = w.shape[1] // (unshuffle * unshuffle)
    if unshuffle_mode == 1:
        w = w[:, depth_order(num_in_ch, unshuffle)]
    sd["conv_first.weight"], sd["conv_first.bias"] = to_tensor(w), to_tensor(b)

    h = feat
    num_block = 0
    num_grow_ch = 32
    while g.has_conv(h, "leaky", 0.2):
        block_in = h
        for r in (1, 2, 3):
            prefix = f"body.{num_block}.rdb{r}"
            rdb_in = h
            xs = [h]
            for i in (1, 2, 3, 4):
                src = h if i == 1 else g.concat(xs)
                op, y, _ = g.conv(src, "leaky", 0.2)
                put(f"{prefix}.conv{i}", op)
                xs.append(y)
            op, y, _ = g.conv(g.concat(xs), "none")
            put(f"{prefix}.conv5", op)
            h = g.scaled_add(y, rdb_in, 0.2)
        num_grow_ch = int(sd[f"body.{num_block}.rdb1.conv1.weight"].shape[0])
        h = g.scaled_add(h, block_in, 0.2)
        num_block += 1

    op, trunk, _ = g.conv(h, "none")
    put("conv_body", op)
    feat = g.scaled_add(trunk, feat, 1.0)
    op, feat, _ = g.conv(g.upsample_nearest(feat, 2), "leaky", 0.2)
    put("conv_up1", op)
    op, feat, _ = g.conv(g.upsample_nearest(feat, 2), "leaky", 0.2)
    put("conv_up2", op)
    op, feat, _ = g.conv(feat, "leaky", 0.2)
    put("conv_hr", op)
    last, out, _ = g.conv(feat, "none")
    put("conv_last", last)
    g.finish(out, "RRDBNet")
    hp: dict[str, int | str] = {
        "num_in_ch": num_in_ch,
        "num_out_ch": int(sd["conv_last.weight"].shape[0]),
        "scale": scale,
        "num_feat": int(sd["conv_first.weight"].shape[0]),
        "num_block": num_block,
        "num_grow_ch": num_grow_ch,
    }
    return hp, sd


SPEC = ArchSpec(
    name="RRDBNet",
    build=RRDBNet,
    guess=rrdbnet_guess,
    plausible={
        "num_in_ch": range(1, 17),
        "num_out_ch": range(1, 17),
        "scale": (1, 2, 4),
        "num_feat": range(1, 513),
        "num_block": range(1, 101),
        "num_grow_ch": range(1, 257),
    },
    scale=lambda hp: int(hp["scale"]),
    in_channels=lambda hp: int(hp["num_in_ch"]),
    out_channels=lambda hp: int(hp["num_out_ch"]),
    memory_per_pixel=_memory_per_pixel,
    example={
        "num_in_ch": 3,
        "num_out_ch": 3,
        "scale": 2,
        "num_feat": 8,
        "num_block": 2,
        "num_grow_ch": 4,
    },
    size_multiple=lambda hp: {1: 4, 2: 2}.get(int(hp["scale"]), 1),
    ncnn_match=match_ncnn,
)
