"""Recognise an architecture and its hyper-parameters from a state dict (spandrel's idea).

Each supported architecture has a detector that looks only at key names and tensor shapes
and returns the constructor arguments, so users' `.pth`/`.safetensors` files load without
being told what they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from srgan.archs.rrdbnet import RRDBNet
from srgan.archs.srresnet import SRResNet, srresnet_hyperparameters
from srgan.archs.srvgg import SRVGGNetCompact
from srgan.archs.vsr import BidirectionalRecurrentVSR, vsr_hyperparameters

StateDict = Mapping[str, torch.Tensor]
Hyperparameters = dict[str, int | str]


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]
    detect: Callable[[StateDict], Hyperparameters | None]
    scale: Callable[[Hyperparameters], int]
    in_channels: Callable[[Hyperparameters], int]
    out_channels: Callable[[Hyperparameters], int]
    memory_per_pixel: Callable[[Hyperparameters], float]
    size_multiple: Callable[[Hyperparameters], int] = lambda _: 1
    temporal: bool = False  # takes clips [N, T, C, h, w] (an image is T = 1)


def _indices(state: StateDict, pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in state if (m := regex.fullmatch(key))})


def detect_rrdbnet(state: StateDict) -> Hyperparameters | None:
    required = ("conv_first.weight", "conv_body.weight", "conv_up1.weight", "conv_last.weight")
    if not all(key in state for key in required):
        return None
    blocks = _indices(state, r"body\.(\d+)\.rdb1\.conv1\.weight")
    if not blocks:
        return None
    first_in = int(state["conv_first.weight"].shape[1])
    out_channels = int(state["conv_last.weight"].shape[0])
    # BasicSR feeds x2 and x1 models a pixel-unshuffled input (4x or 16x the channels).
    scale, in_channels = 4, first_in
    if first_in % 16 == 0 and first_in // 16 == out_channels:
        scale, in_channels = 1, first_in // 16
    elif first_in % 4 == 0 and first_in // 4 == out_channels:
        scale, in_channels = 2, first_in // 4
    return {
        "num_in_ch": in_channels,
        "num_out_ch": out_channels,
        "scale": scale,
        "num_feat": int(state["conv_first.weight"].shape[0]),
        "num_block": len(blocks),
        "num_grow_ch": int(state["body.0.rdb1.conv1.weight"].shape[0]),
    }


def detect_srvgg(state: StateDict) -> Hyperparameters | None:
    conv_indices = [
        i for i in _indices(state, r"body\.(\d+)\.weight") if state[f"body.{i}.weight"].ndim == 4
    ]
    if len(conv_indices) < 2 or any(not k.startswith("body.") for k in state):
        return None
    first, last = state[f"body.{conv_indices[0]}.weight"], state[f"body.{conv_indices[-1]}.weight"]
    in_channels, features = int(first.shape[1]), int(first.shape[0])
    has_prelu = f"body.{conv_indices[0] + 1}.weight" in state
    if not has_prelu:
        return None  # ReLU and LeakyReLU variants have no parameters to tell them apart
    out_channels = in_channels
    upscale = round((int(last.shape[0]) / out_channels) ** 0.5)
    if upscale * upscale * out_channels != last.shape[0]:
        return None
    return {
        "num_in_ch": in_channels,
        "num_out_ch": out_channels,
        "num_feat": features,
        "num_conv": len(conv_indices) - 2,
        "upscale": upscale,
        "act_type": "prelu",
    }


def build_vsr(**hyperparameters: int | str) -> BidirectionalRecurrentVSR:
    """A BidirectionalRecurrentVSR ready to run: alignment "dis" gets OpenCV's DIS flow."""
    model = BidirectionalRecurrentVSR(**hyperparameters)  # type: ignore[arg-type]
    if model.alignment == "dis":
        from srgan.imaging.optical_flow import dis_flow

        model.flow_estimator = dis_flow
    return model


def _vsr_memory_per_pixel(hp: Hyperparameters) -> float:
    """Per frame: features and two hidden states at LR, the upsampling at HR; an aligned
    network also holds two flows and a warped state, and the flow pyramid's activations."""
    per_pixel = 4.0 * int(hp["num_features"]) * (8 + 2 * int(hp["scale"]) ** 2)
    if hp.get("alignment", "none") == "learned":
        per_pixel += 4.0 * (2 * int(hp.get("flow_features", 16)) + int(hp["num_features"]))
    elif hp.get("alignment", "none") != "none":
        per_pixel += 4.0 * (4 + int(hp["num_features"]))
    return per_pixel


def _rrdb_multiple(hp: Hyperparameters) -> int:
    return {1: 4, 2: 2}.get(int(hp["scale"]), 1)


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture(
        "RRDBNet",
        RRDBNet,
        detect_rrdbnet,
        scale=lambda hp: int(hp["scale"]),
        in_channels=lambda hp: int(hp["num_in_ch"]),
        out_channels=lambda hp: int(hp["num_out_ch"]),
        # dense blocks hold ~5x num_feat at LR; two feature maps live at the output size
        memory_per_pixel=lambda hp: 4.0 * int(hp["num_feat"]) * (6 + 2 * int(hp["scale"]) ** 2),
        size_multiple=_rrdb_multiple,
    ),
    Architecture(
        "SRVGGNetCompact",
        SRVGGNetCompact,
        detect_srvgg,
        scale=lambda hp: int(hp["upscale"]),
        in_channels=lambda hp: int(hp["num_in_ch"]),
        out_channels=lambda hp: int(hp["num_out_ch"]),
        memory_per_pixel=lambda hp: 4.0 * int(hp["num_feat"]) * 4,
    ),
    Architecture(
        "SRResNet",
        SRResNet,
        srresnet_hyperparameters,  # type: ignore[arg-type]
        scale=lambda hp: int(hp["scale"]),
        in_channels=lambda hp: int(hp["in_channels"]),
        out_channels=lambda hp: int(hp["out_channels"]),
        memory_per_pixel=lambda hp: 4.0 * int(hp["num_features"]) * (6 + 2 * int(hp["scale"]) ** 2),
    ),
    Architecture(
        "BidirectionalRecurrentVSR",
        build_vsr,
        vsr_hyperparameters,  # type: ignore[arg-type]
        scale=lambda hp: int(hp["scale"]),
        in_channels=lambda hp: int(hp["in_channels"]),
        out_channels=lambda hp: int(hp["out_channels"]),
        memory_per_pixel=_vsr_memory_per_pixel,
        temporal=True,
    ),
)
BY_NAME = {arch.name: arch for arch in ARCHITECTURES}


def unwrap_state_dict(checkpoint: object) -> dict[str, torch.Tensor]:
    """Accept BasicSR's `params_ema`/`params` wrappers, `state_dict` wrappers, and the
    `module.` prefix that DistributedDataParallel adds."""
    state = checkpoint
    for wrapper in ("params_ema", "params", "state_dict", "model", "generator"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
            break
    if not isinstance(state, Mapping):
        raise ValueError("the file holds no state dict")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def detect(state: StateDict) -> tuple[Architecture, Hyperparameters] | None:
    for arch in ARCHITECTURES:
        hyperparameters = arch.detect(state)
        if hyperparameters is not None:
            return arch, hyperparameters
    return None
