"""The U-Net discriminator with spectral normalization of Real-ESRGAN (Wang et al. 2021,
figure 6): a real-vs-fake logit for every pixel, so the generator gets feedback on
local detail, not one verdict per patch.

Layout (C = num_features): conv0 3x3 C; three stride-2 4x4 convolutions to 2C, 4C, 8C;
three steps of x2 bilinear upsampling + 3x3 convolution back to 4C, 2C, C, each added
to the encoder feature of the same size (skip connections); two 3x3 C convolutions;
conv9 3x3 to one channel. LeakyReLU(0.2) after all but conv9. conv1..conv8 are
bias-free and spectrally normalised with torch's hook-based `spectral_norm`, so the
state dict uses Real-ESRGAN's key names: `conv0.weight`, `conv0.bias`,
`conv{1..8}.weight_orig`, `.weight_u`, `.weight_v`, `conv9.weight`, `conv9.bias`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

__all__ = ["UNetDiscriminatorSN"]

_SIZE_MULTIPLE = 8  # three stride-2 convolutions, undone by three x2 upsamplings


class UNetDiscriminatorSN(nn.Module):
    """Takes [N, in_channels, H, W] with H and W multiples of 8; returns logits
    [N, 1, H, W] (no sigmoid; pair with BCE-with-logits)."""

    size_multiple = _SIZE_MULTIPLE

    def __init__(
        self, in_channels: int = 3, num_features: int = 64, skip_connection: bool = True
    ) -> None:
        super().__init__()
        c = num_features
        self.in_channels = in_channels
        self.num_features = num_features
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(in_channels, c, 3, 1, 1)
        # encoder: halve the size, double the width
        self.conv1 = spectral_norm(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(2 * c, 4 * c, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(4 * c, 8 * c, 4, 2, 1, bias=False))
        # decoder: after each x2 upsampling, back to the width of the matching encoder level
        self.conv4 = spectral_norm(nn.Conv2d(8 * c, 4 * c, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(4 * c, 2 * c, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(2 * c, c, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(c, c, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(c, c, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(c, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNetDiscriminatorSN expects [N, {self.in_channels}, H, W], got {list(x.shape)}"
            )
        if x.shape[-2] % _SIZE_MULTIPLE or x.shape[-1] % _SIZE_MULTIPLE:
            raise ValueError(
                f"UNetDiscriminatorSN needs H and W in multiples of {_SIZE_MULTIPLE}, "
                f"got {x.shape[-2]}x{x.shape[-1]}"
            )

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, 0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        e0 = act(self.conv0(x))
        e1 = act(self.conv1(e0))
        e2 = act(self.conv2(e1))
        e3 = act(self.conv3(e2))
        d = act(self.conv4(up(e3)))
        for conv, skip in ((self.conv5, e2), (self.conv6, e1)):
            if self.skip_connection:
                d = d + skip
            d = act(conv(up(d)))
        if self.skip_connection:
            d = d + e0
        d = act(self.conv8(act(self.conv7(d))))
        out: torch.Tensor = self.conv9(d)
        return out
