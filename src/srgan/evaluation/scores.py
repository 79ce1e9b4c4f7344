"""Scores of one image against its reference, and tables of them (per image or per clip)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from srgan import metrics
from srgan.errors import BadInputError
from srgan.imaging.io import Image

SSIM_WINDOW = 11


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "psnr": self.psnr, "ssim": self.ssim}


@dataclass(frozen=True)
class ClipScore(ImageScore):
    """A clip's scores: the means over its frames."""

    frames: int = 0

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "frames": self.frames}


@dataclass
class ScoreTable:
    """Per-image (or per-clip: `unit` "clips") scores and their means."""

    images: list[ImageScore] = field(default_factory=list)
    unit: str = "images"

    @property
    def mean_psnr(self) -> float:
        return sum(s.psnr for s in self.images) / len(self.images)

    @property
    def mean_ssim(self) -> float:
        return sum(s.ssim for s in self.images) / len(self.images)

    def by_name(self) -> dict[str, ImageScore]:
        return {s.name: s for s in self.images}

    def as_dict(self) -> dict[str, object]:
        return {
            self.unit: [s.as_dict() for s in self.images],
            "mean": {"psnr": self.mean_psnr, "ssim": self.mean_ssim},
        }


def score(
    name: str, image: Image, reference: Image, crop_border: int = 0, y_channel: bool = True
) -> ImageScore:
    """PSNR/SSIM of two decoded images as stored (their own bit depths)."""
    if (image.height, image.width) != (reference.height, reference.width):
        raise BadInputError(
            f"{name}: sizes differ ({image.width}x{image.height} vs "
            f"{reference.width}x{reference.height})"
        )
    if image.grayscale != reference.grayscale:
        kinds = ["gray" if i.grayscale else "colour" for i in (image, reference)]
        raise BadInputError(f"{name}: cannot compare a {kinds[0]} image with a {kinds[1]} one")
    if min(image.height, image.width) - 2 * crop_border < SSIM_WINDOW:
        raise BadInputError(
            f"{name}: {image.width}x{image.height} is too small: SSIM needs at least "
            f"{SSIM_WINDOW}x{SSIM_WINDOW} pixels after removing {crop_border} at each border"
        )
    bit_depth = max(image.meta.bit_depth, reference.meta.bit_depth)
    a, b = _colour_only(image), _colour_only(reference)
    return ImageScore(
        name,
        float(metrics.psnr(a, b, crop_border, y_channel, bit_depth)),
        float(metrics.ssim(a, b, crop_border, y_channel, bit_depth)),
    )


def _colour_only(image: Image) -> torch.Tensor:
    tensor = image.to_tensor()
    return tensor[:-1] if image.has_alpha else tensor


def mean_score(name: str, scores: list[ImageScore]) -> ClipScore:
    return ClipScore(
        name,
        sum(s.psnr for s in scores) / len(scores),
        sum(s.ssim for s in scores) / len(scores),
        len(scores),
    )
