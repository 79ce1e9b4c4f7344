"""What an image file will decode to, read from its header alone.

`probe_image` opens the file (through `user_files.open_regular`: pipes and devices are
refused) and reads only what Pillow or tifffile need to tell the size, the channels and
the bit depth `read_image` will return, and how much memory decoding takes. A job's
memory is planned from this before a single pixel is decoded (`inference.job_memory`).
Only the first frame of an animated GIF/WebP or the first page of a multi-page TIFF is
ever decoded, so later frames cost nothing.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from srgan.errors import BadInputError, ImageTooLargeError
from srgan.user_files import open_regular, shown

__all__ = ["ImageHeader", "check_pixel_count", "probe_bytes", "probe_image"]

# srgan enforces its own limit (`max_pixels`) on every read, before decoding.
PILImage.MAX_IMAGE_PIXELS = None

EXIF_ORIENTATION = 0x0112
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels as read
# tifffile.PHOTOMETRIC MINISBLACK, MINISWHITE, RGB (numbers: tifffile is imported on use,
# which keeps start-up short)
DEEP_TIFF_PHOTOMETRICS = (1, 0, 2)

# Pillow mode -> (channels read_image returns, bit depth, Pillow's bytes per pixel, bytes
# per pixel of the converted copy Pillow makes on the way (0: none)).
_PILLOW_MODES = {
    "1": (1, 8, 1, 1),
    "L": (1, 8, 1, 0),
    "P": (3, 8, 1, 4),
    "PA": (4, 8, 4, 4),
    "LA": (2, 8, 4, 0),
    "La": (2, 8, 4, 4),
    "RGB": (3, 8, 4, 0),
    "RGBA": (4, 8, 4, 0),
    "RGBa": (4, 8, 4, 4),
    "RGBX": (3, 8, 4, 4),
    "CMYK": (3, 8, 4, 4),
    "I;16": (1, 16, 2, 0),
    "I;16L": (1, 16, 2, 0),
    "I;16B": (1, 16, 2, 0),
    "I;16N": (1, 16, 2, 0),
    "I": (1, 16, 4, 0),
    "F": (1, 16, 4, 0),
}
_OTHER_MODE = (3, 8, 4, 4)  # converted to RGB


@dataclass(frozen=True)
class ImageHeader:
    """An image as `read_image` will return it, known before decoding.

    `width` and `height` are upright (EXIF orientation applied); `decoder_bytes` is what
    the decoder holds besides the returned array (Pillow's own copy, conversions, raw
    TIFF samples)."""

    format: str
    width: int
    height: int
    channels: int
    bit_depth: int
    file_bytes: int
    decoder_bytes: int
    orientation: int = 1

    @property
    def pixel_count(self) -> int:
        return self.width * self.height

    @property
    def array_bytes(self) -> int:
        """The decoded (H, W, C) array."""
        return self.pixel_count * self.channels * self.bit_depth // 8

    @property
    def decode_peak(self) -> int:
        """Peak memory of reading the file: its bytes, the decoder's buffers, the array and
        (for a rotated image) its upright copy."""
        copies = 2 if self.orientation != 1 else 1
        return self.file_bytes + self.decoder_bytes + copies * self.array_bytes


def check_pixel_count(name: object, pixels: int, max_pixels: int | None) -> None:
    if max_pixels and pixels > max_pixels:
        raise ImageTooLargeError(
            f"{shown(name)}: {pixels:,} pixels exceeds the limit of {max_pixels:,} "
            "(raise it with --max-pixels if the file is trusted)"
        )


def probe_image(path: str | os.PathLike[str], max_pixels: int | None = None) -> ImageHeader:
    """The header of an image file; BadInputError (one line) if it is no usable image."""
    with open_regular(path, "an image file") as stream:
        size = os.fstat(stream.fileno()).st_size
        return _probe(stream, size, path, max_pixels)


def probe_bytes(data: bytes, name: object = "image", max_pixels: int | None = None) -> ImageHeader:
    """The header of an image held in memory (see `probe_image`)."""
    return _probe(io.BytesIO(data), len(data), name, max_pixels)


def _probe(stream: BinaryIO, size: int, name: object, max_pixels: int | None) -> ImageHeader:
    if size == 0:
        raise BadInputError(f"{shown(name)}: file is empty")
    start = stream.read(32)
    stream.seek(0)
    try:
        if start[:4] in TIFF_MAGIC:
            header = _probe_tiff(stream, size, name, max_pixels)
        else:
            header = _probe_pillow(stream, start, size, name, max_pixels)
    except BadInputError:
        raise
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise not_an_image(name, start) from exc
    except Exception as exc:  # Pillow and tifffile raise many classes on bad headers
        raise BadInputError(f"{shown(name)}: image header is damaged ({reason(exc)})") from exc
    if header.width <= 0 or header.height <= 0:
        raise BadInputError(f"{shown(name)}: image header gives no pixels")
    return header


def not_an_image(name: object, start: bytes = b"") -> BadInputError:
    """The decoder did not take the file: damaged, when it starts like a known format."""
    known = sniff_image_format(start)
    if known is not None:
        return BadInputError(f"{shown(name)}: damaged {known} file (its header cannot be read)")
    return BadInputError(
        f"{shown(name)}: not a recognised image file (expected PNG, JPEG, WebP, TIFF or BMP)"
    )


def sniff_image_format(data: bytes) -> str | None:
    """The format of an image from its first bytes ('PNG', 'JPEG', 'WEBP', 'TIFF', 'BMP'),
    or None: what a file says it is by name or by content type is not trusted."""
    if data.startswith(PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in TIFF_MAGIC:
        return "TIFF"
    if data[:2] == b"BM" and len(data) >= 26:
        return "BMP"
    return None


def reason(exc: BaseException) -> str:
    """An exception of a decoder as a short phrase for the user.

    Decoders fed malformed fields fail in their own code with errors that name Python
    types or bare keys (``KeyError: 0``, "'<' not supported between 'tuple' and 'int'"):
    those are reported as what they mean."""
    if isinstance(exc, KeyError | IndexError | TypeError | AttributeError):
        return "a field of the file has the wrong type, count or value"
    text = " ".join(str(exc).split())
    return text if text and not text.isdigit() else f"{type(exc).__name__} {text}".strip()


def _upright(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _probe_pillow(
    stream: BinaryIO, start: bytes, size: int, name: object, max_pixels: int | None
) -> ImageHeader:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pil = PILImage.open(stream)
        check_pixel_count(name, pil.width * pil.height, max_pixels)
        if pil.format == "PNG" and len(start) > 25 and start[24] == 16:
            colour_type = start[25]
            channels, bit_depth, own, converted = _PNG_CHANNELS.get(colour_type, 3), 16, 0, 0
        else:
            channels, bit_depth, own, converted = _PILLOW_MODES.get(pil.mode, _OTHER_MODE)
            if pil.mode == "P" and "transparency" in pil.info:
                channels = 4
        orientation = pillow_orientation(pil)
    width, height = pil.width, pil.height
    if pil.format != "TIFF":  # Pillow turns TIFFs upright itself (its size already is)
        width, height = _upright(width, height, orientation)
    return ImageHeader(
        format=pil.format or "unknown",
        width=width,
        height=height,
        channels=channels,
        bit_depth=bit_depth,
        file_bytes=size,
        decoder_bytes=width * height * (own + converted),
        orientation=orientation if pil.format != "TIFF" else 1,
    )


def pillow_orientation(pil: PILImage.Image) -> int:
    """EXIF orientation of an opened (not loaded) Pillow image, 1 when it has none.

    Pillow's PNG plugin decodes the whole image to look for an eXIf chunk after the
    pixels: only the chunks before them are looked at here."""
    if pil.format == "PNG" and "exif" not in pil.info:
        return 1
    if pil.format == "TIFF":
        value = getattr(pil, "tag_v2", {}).get(EXIF_ORIENTATION, 1)
    else:
        value = pil.getexif().get(EXIF_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _tag_int(value: object, name: str, label: object) -> int:
    """A TIFF field that must be one integer (tifffile hands over what the file says)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInputError(f"{shown(label)}: TIFF {name} field is malformed ({value!r:.40})")
    return value


def _probe_tiff(stream: BinaryIO, size: int, name: object, max_pixels: int | None) -> ImageHeader:
    import tifffile

    with tifffile.TiffFile(stream, name=Path(str(name)).name) as tif:
        if len(tif.pages) == 0:  # tifffile's `pages.first` would raise a bare IndexError(0)
            raise BadInputError(
                f"{shown(name)}: TIFF holds no image (its first image directory is missing "
                "or points outside the file)"
            )
        page = tif.pages.first
        width = _tag_int(page.imagewidth, "ImageWidth", name)
        height = _tag_int(page.imagelength, "ImageLength", name)
        check_pixel_count(name, width * height, max_pixels)
        samples = _tag_int(page.samplesperpixel, "SamplesPerPixel", name)
        bits = page.bitspersample
        if isinstance(bits, tuple):
            raise BadInputError(
                f"{shown(name)}: TIFF samples of different bit depths {bits!r:.40} are not "
                "supported"
            )
        bits = _tag_int(bits, "BitsPerSample", name)
        if not 1 <= samples <= 4:
            # (Pillow's libtiff decoder would print a complaint straight to the terminal.)
            raise BadInputError(
                f"{shown(name)}: TIFF with {samples} samples per pixel is not supported "
                "(expected 1 to 4: gray, gray + alpha, RGB, RGBA or CMYK)"
            )
        if bits <= 8:
            stream.seek(0)
            return _probe_pillow(stream, stream.read(32), size, name, max_pixels)
        photometric = page.photometric
        if photometric not in DEEP_TIFF_PHOTOMETRICS:
            label = getattr(photometric, "name", repr(photometric))
            raise BadInputError(
                f"{shown(name)}: {bits}-bit TIFF with {label:.40} colour is not supported "
                "(use gray or RGB)"
            )
        tag = page.tags.get(EXIF_ORIENTATION)
        orientation = tag.value if tag is not None and tag.value in range(1, 9) else 1
        raw = width * height * samples * page.dtype.itemsize if page.dtype is not None else 0
    width, height = _upright(width, height, orientation)
    return ImageHeader("TIFF", width, height, samples, 16, size, raw, orientation)


def png_exif(data: bytes) -> bytes | None:
    """The payload of a PNG's eXIf chunk wherever it is (also after the pixels)."""
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind == b"eXIf":
            return data[position + 8 : position + 8 + length]
        if kind == b"IEND":
            return None
        position += 12 + length
    return None
