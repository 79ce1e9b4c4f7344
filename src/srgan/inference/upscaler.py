"""Upscale decoded images with any `LoadedModel`, keeping alpha, gray and bit depth."""

from __future__ import annotations

import torch

from srgan.imaging.io import Image
from srgan.imaging.resize import imresize, output_size
from srgan.zoo.descriptor import LoadedModel


def run_model(model: LoadedModel, x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> (C, H*s, W*s) through the model, channel layout adapted to it.

    Colour networks (in_channels 3) see gray as three equal channels and return the mean
    of their output channels; alpha is upscaled separately as a gray image.
    """
    wanted = model.descriptor.in_channels
    channels = x.shape[0]
    if wanted in (0, channels):
        return model.module(x.unsqueeze(0)).squeeze(0)
    has_alpha = channels in (2, 4)
    colour = x[:-1] if has_alpha else x
    if colour.shape[0] == 1:
        result = model.module(colour.expand(3, -1, -1).unsqueeze(0)).squeeze(0).mean(0, True)
    else:
        result = model.module(colour.unsqueeze(0)).squeeze(0)
    if has_alpha:
        alpha = model.module(x[-1:].expand(3, -1, -1).unsqueeze(0)).squeeze(0).mean(0, True)
        result = torch.cat([result, alpha], dim=0)
    return result


@torch.inference_mode()
def upscale_tensor(
    model: LoadedModel, x: torch.Tensor, outscale: float | None = None
) -> torch.Tensor:
    """(C, H, W) float in [0, 1] -> upscaled, resized to ceil(H * outscale) if asked."""
    result = run_model(model, x).clamp_(0, 1)
    if outscale is not None and outscale != model.scale:
        size = output_size(x.shape[1], x.shape[2], outscale)
        result = imresize(result, size=size).clamp_(0, 1)
    return result


def upscale_image(model: LoadedModel, image: Image, outscale: float | None = None) -> Image:
    """Upscale a decoded image; the result keeps its bit depth, channels and metadata."""
    result = upscale_tensor(model, image.to_tensor(), outscale)
    return Image.from_tensor(result, image.meta)
