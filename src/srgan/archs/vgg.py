"""VGG19 feature extractor with torchvision's key names (`features.N.weight`).

Only the convolutional part is built, up to the layer a perceptual loss needs. Layer
names follow the paper's phi_{i,j}: `relu5_4` is the 4th convolution of block 5 after its
ReLU (SRGAN's VGG54), `conv5_4` the same before the ReLU, `pool4` a max-pool output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# Convolutions per block of VGG19; widths are those of the ImageNet model by default.
_BLOCKS = (2, 2, 4, 4, 4)
IMAGENET_WIDTHS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_index(name: str) -> int:
    """Index into torchvision's `features` of the named layer (`conv3_4`, `relu5_4`,
    `pool2`, ...); ValueError for unknown names."""
    index = 0
    for block, convs in enumerate(_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            if name == f"conv{block}_{conv}":
                return index
            if name == f"relu{block}_{conv}":
                return index + 1
            index += 2
        if name == f"pool{block}":
            return index
        index += 1
    raise ValueError(f"unknown VGG19 layer {name!r} (e.g. relu5_4, conv5_4, relu2_2, pool4)")


def layer_name(index: int) -> str:
    """The name of the layer at `index` of torchvision's `features` (the inverse of
    layer_index, with `relu`/`conv`/`pool` names)."""
    position = 0
    for block, convs in enumerate(_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            if index == position:
                return f"conv{block}_{conv}"
            if index == position + 1:
                return f"relu{block}_{conv}"
            position += 2
        if index == position:
            return f"pool{block}"
        position += 1
    raise ValueError(f"VGG19 has no feature layer {index}")


class VGG19Features(nn.Module):
    """`features[: layer_index(last_layer) + 1]` of torchvision's VGG19.

    Inputs are RGB in [0, 1]; ImageNet normalisation is applied inside. `widths` lets
    tests build small VGGs with the same key names."""

    features: nn.Sequential
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, last_layer: str = "relu5_4", widths: tuple[int, ...] = IMAGENET_WIDTHS
    ) -> None:
        super().__init__()
        stop = layer_index(last_layer)
        layers: list[nn.Module] = []
        channels = 3
        for block, convs in enumerate(_BLOCKS):
            for _ in range(convs):
                layers += [nn.Conv2d(channels, widths[block], 3, padding=1), nn.ReLU()]
                channels = widths[block]
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers[: stop + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)

    def feature_maps(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """The outputs of the named layers (`conv5_4`, `relu2_2`, ...) in one pass."""
        wanted = {layer_index(name): name for name in layers}
        if not wanted:
            raise ValueError("name at least one VGG19 layer")
        deepest = max(wanted)
        if deepest >= len(self.features):
            raise ValueError(
                f"layer {wanted[deepest]} lies beyond the last layer of this VGG19 "
                f"(it has {len(self.features)} of torchvision's feature modules)"
            )
        maps: dict[str, torch.Tensor] = {}
        h = (x - self.mean) / self.std
        for index, module in enumerate(self.features):
            h = module(h)
            if index in wanted:
                maps[wanted[index]] = h
            if index == deepest:
                break
        return maps


def vgg19_widths(state_dict: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """The block widths of a torchvision-layout VGG19 state dict (ValueError otherwise)."""
    widths, index = [], 0
    for convs in _BLOCKS:
        key = f"features.{index}.weight"
        if key not in state_dict:
            raise ValueError(f"not a VGG19 state dict: {key} is missing")
        widths.append(int(state_dict[key].shape[0]))
        index += 2 * convs + 1
    return tuple(widths)
