"""The MATLAB-bicubic baseline, packaged like any other model."""

from __future__ import annotations

import torch
from torch import nn

from srgan.imaging.resize import imresize
from srgan.zoo.descriptor import LoadedModel, ModelDescriptor


class BicubicUpscaler(nn.Module):
    """Upscale by `scale` with MATLAB's antialiased bicubic kernel; no weights."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, scale=self.scale)


def load_bicubic(scale: float) -> LoadedModel:
    descriptor = ModelDescriptor(
        name="bicubic",
        architecture="MATLAB bicubic",
        scale=scale,
        in_channels=0,
        supports_half=False,
        supports_bf16=False,
        # Bicubic needs 2 px of context on each side; tiles with padding reproduce it exactly.
        tileable=True,
        memory_per_pixel=16.0 * (scale * scale + 2),
    )
    return LoadedModel(BicubicUpscaler(scale).eval(), descriptor)
