"""Whole-image operations on decoded `Image`s."""

from __future__ import annotations

from srgan.imaging.io import Image
from srgan.imaging.resize import imresize


def resize_image(
    image: Image, scale: float | None = None, size: tuple[int, int] | None = None
) -> Image:
    """MATLAB-bicubic resize (antialiased when shrinking), quantized to the image's depth."""
    resized = imresize(image.to_tensor(), scale=scale, size=size)
    return Image.from_tensor(resized, image.meta)


def crop_to_multiple(image: Image, multiple: int) -> Image:
    """Drop bottom rows and right columns so both sides divide by `multiple` (modcrop)."""
    height = image.height - image.height % multiple
    width = image.width - image.width % multiple
    return Image(image.pixels[:height, :width], image.meta)
