"""Image files, colour conversion and MATLAB-compatible resizing."""

from srgan.imaging.io import (
    DEFAULT_MAX_PIXELS,
    Image,
    ImageMeta,
    list_images,
    output_format,
    pixels_to_tensor,
    read_image,
    tensor_to_pixels,
    write_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Image",
    "ImageMeta",
    "list_images",
    "output_format",
    "pixels_to_tensor",
    "read_image",
    "tensor_to_pixels",
    "write_image",
]
