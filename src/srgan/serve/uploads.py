"""Checks on an uploaded image before anything is decoded or stored: its type from its
bytes (not its name or content type), its size from its header (decompression bombs),
and the size of the result it would give. A refused upload is returned as a `Refusal`,
never raised (see `Refusal` for why)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

from srgan.errors import BadInputError
from srgan.imaging.io import image_size, sniff_image_format
from srgan.serve.engine import Engine
from srgan.serve.schemas import Refusal, UpscaleParams
from srgan.serve.settings import ServeSettings

ACCEPTED = "PNG, JPEG, WebP, TIFF or BMP"


@dataclass(frozen=True)
class Upload:
    data: bytes
    sha256: str
    format: str
    width: int
    height: int


def read_upload(
    file: BinaryIO,
    params: UpscaleParams,
    settings: ServeSettings,
    engine: Engine,
    synchronous: bool,
) -> Upload | Refusal:
    """The uploaded file's bytes, checked (`inspect_upload`)."""
    file.seek(0)
    return inspect_upload(file.read(), params, settings, engine, synchronous)


def inspect_upload(
    data: bytes,
    params: UpscaleParams,
    settings: ServeSettings,
    engine: Engine,
    synchronous: bool,
) -> Upload | Refusal:
    if not data:
        return Refusal(400, "the image is empty")
    kind = sniff_image_format(data[:32])
    if kind is None:
        return Refusal(
            415, f"not an image: expected {ACCEPTED} (the type is read from the file's bytes)"
        )
    size = _header_size(data)
    if isinstance(size, Refusal):
        return size
    width, height = size
    if width <= 0 or height <= 0:
        return Refusal(400, f"image header gives an empty size {width}x{height}")
    pixels = width * height
    if pixels > settings.max_pixels:
        return Refusal(
            413,
            f"image is {width}x{height} = {pixels:,} pixels; this server takes at most "
            f"{settings.max_pixels:,}",
        )
    out_width, out_height = engine.output_size(params, width, height)
    if out_width * out_height > settings.max_output_pixels:
        return Refusal(
            413,
            f"the result would be {out_width}x{out_height} pixels; this server makes at most "
            f"{settings.max_output_pixels:,} (use a smaller outscale)",
        )
    if synchronous and pixels > settings.sync_max_pixels:
        return Refusal(
            413,
            f"image is {width}x{height} = {pixels:,} pixels, more than POST /v1/upscale takes "
            f"({settings.sync_max_pixels:,}); submit it as a job with POST /v1/jobs",
        )
    return Upload(data, hashlib.sha256(data).hexdigest(), kind, width, height)


def _header_size(data: bytes) -> tuple[int, int] | Refusal:
    try:
        return image_size(data, "image")
    except BadInputError as exc:
        return Refusal(400, str(exc))
