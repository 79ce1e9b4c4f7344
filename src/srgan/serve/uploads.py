"""Checks on an uploaded image before anything is decoded or stored: its type from its
bytes (not its name or content type), its size from its header (decompression bombs),
and the size of the result it would give."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from srgan.errors import BadInputError
from srgan.imaging.io import image_size, sniff_image_format
from srgan.serve.engine import Engine
from srgan.serve.schemas import UpscaleParams
from srgan.serve.settings import ServeSettings

ACCEPTED = "PNG, JPEG, WebP, TIFF or BMP"


class UploadRejected(Exception):
    """An upload the server will not take; `status` is the HTTP status to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Upload:
    data: bytes
    sha256: str
    format: str
    width: int
    height: int


def inspect_upload(
    data: bytes,
    params: UpscaleParams,
    settings: ServeSettings,
    engine: Engine,
    synchronous: bool,
) -> Upload:
    if not data:
        raise UploadRejected(400, "the image is empty")
    kind = sniff_image_format(data[:32])
    if kind is None:
        raise UploadRejected(
            415, f"not an image: expected {ACCEPTED} (the type is read from the file's bytes)"
        )
    try:
        width, height = image_size(data, "image")
    except BadInputError as exc:
        raise UploadRejected(400, str(exc)) from None
    if width <= 0 or height <= 0:
        raise UploadRejected(400, f"image header gives an empty size {width}x{height}")
    pixels = width * height
    if pixels > settings.max_pixels:
        raise UploadRejected(
            413,
            f"image is {width}x{height} = {pixels:,} pixels; this server takes at most "
            f"{settings.max_pixels:,}",
        )
    out_width, out_height = engine.output_size(params, width, height)
    if out_width * out_height > settings.max_output_pixels:
        raise UploadRejected(
            413,
            f"the result would be {out_width}x{out_height} pixels; this server makes at most "
            f"{settings.max_output_pixels:,} (use a smaller outscale)",
        )
    if synchronous and pixels > settings.sync_max_pixels:
        raise UploadRejected(
            413,
            f"image is {width}x{height} = {pixels:,} pixels, more than POST /v1/upscale takes "
            f"({settings.sync_max_pixels:,}); submit it as a job with POST /v1/jobs",
        )
    return Upload(data, hashlib.sha256(data).hexdigest(), kind, width, height)
