"""Read and write images without losing bit depth, alpha, grayscale, ICC profile or EXIF.

Pixels travel as numpy arrays of shape (H, W, C) in their stored dtype (uint8 or uint16);
C is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). `ImageMeta` remembers what is
needed to write a result back the way the input was stored.

Pillow decodes everything except 16-bit PNG colour images, which it silently reduces to
8 bits, and 16-bit TIFFs, which it handles only partly: those go through imagecodecs and
tifffile instead. Every file is opened through `srgan.user_files` (no pipes or devices)
and its header is probed (`header`) before decoding. PNG and TIFF are written by srgan's
own row-by-row encoders (`png_stream`, `tiff_stream`), from a whole image or from a
stream of rows (`write_rows`); JPEG, WebP and BMP by Pillow.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from srgan.defaults import DEFAULT_MAX_PIXELS, DEFAULT_PNG_LEVEL
from srgan.errors import BadInputError
from srgan.imaging.header import (
    EXIF_ORIENTATION,
    PNG_SIGNATURE,
    TIFF_MAGIC,
    not_an_image,
    png_exif,
    probe_bytes,
    reason,
)
from srgan.imaging.header import sniff_image_format as sniff_image_format  # re-exported
from srgan.imaging.png_stream import PngRowWriter
from srgan.imaging.rows import RowStream, collect, stream_array
from srgan.imaging.tiff_stream import write_tiff_rows
from srgan.user_files import read_regular, shown

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

READ_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
EIGHT_BIT_FORMATS = {"JPEG", "WEBP", "BMP"}
NO_ALPHA_FORMATS = {"JPEG", "BMP"}  # Pillow writes 32-bit BMPs that it reads back as RGB

_TIFF_ICC_PROFILE = 34675


@dataclass(frozen=True)
class ImageMeta:
    """How an image was stored: enough to write a processed result back the same way."""

    bit_depth: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None
    source_format: str | None = None


@dataclass
class Image:
    """Decoded pixels (H, W, C) in their stored dtype, plus how they were stored."""

    pixels: np.ndarray
    meta: ImageMeta

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    @property
    def grayscale(self) -> bool:
        return self.channels in (1, 2)

    def to_tensor(self) -> torch.Tensor:
        """Float32 tensor (C, H, W) in [0, 1]."""
        return pixels_to_tensor(self.pixels)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor, meta: ImageMeta) -> Image:
        """Quantize a (C, H, W) tensor in [0, 1] to the bit depth recorded in `meta`."""
        return cls(tensor_to_pixels(tensor, meta.bit_depth), meta)


def pixels_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8/uint16 array -> float32 (C, H, W) tensor in [0, 1]."""
    import torch  # imported on use: decoding and the ncnn backend do not need PyTorch

    peak = float(np.iinfo(pixels.dtype).max)
    return torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32)).div_(peak)


def tensor_to_pixels(tensor: torch.Tensor, bit_depth: int = 8) -> np.ndarray:
    """Float (C, H, W) tensor in [0, 1] -> (H, W, C) uint8 or uint16 array, rounded."""
    import torch

    if tensor.ndim != 3:
        raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(tensor.shape)}")
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    peak = float(np.iinfo(dtype).max)
    quantized = tensor.detach().float().clamp(0, 1).mul(peak).round().to(torch.int32)
    return np.ascontiguousarray(quantized.permute(1, 2, 0).cpu().numpy().astype(dtype))


# ----------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Decode an image file; raise BadInputError with a one-line reason if it is unusable.

    Only regular files are opened (a pipe or a device is refused before any blocking
    open). EXIF orientation is applied to the pixels (and removed from the kept EXIF).
    Palette images become RGB or RGBA, CMYK becomes RGB (through its ICC profile when it
    has one), bilevel becomes gray.
    """
    return decode_image(read_regular(path, "an image file"), str(path), max_pixels)


def decode_image(
    data: bytes, name: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image:
    """Decode an image held in memory, as `read_image` does a file; `name` is used in
    error messages only. The pixel count is checked from the header, before decoding."""
    probe_bytes(data, name, max_pixels)
    try:
        if data[:4] in TIFF_MAGIC:
            pixels, meta, orientation = _read_tiff(data)
        else:
            pixels, meta, orientation = _read_with_pillow(data)
    except BadInputError:
        raise
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise not_an_image(name, data[:32]) from exc
    except (OSError, ValueError, RuntimeError, EOFError, struct.error, zlib.error) as exc:
        raise BadInputError(
            f"{shown(name)}: image data is damaged or truncated ({reason(exc)})"
        ) from exc
    except Exception as exc:  # imagecodecs/tifffile raise their own exception classes
        raise BadInputError(f"{shown(name)}: could not decode image ({reason(exc)})") from exc

    if pixels.dtype == np.uint16:
        meta = replace(meta, bit_depth=16)
    return Image(_apply_orientation(pixels, orientation), meta)


def _read_with_pillow(data: bytes) -> tuple[np.ndarray, ImageMeta, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": the pixels still decode
        pil = PILImage.open(io.BytesIO(data))
        if pil.format == "PNG" and _png_bit_depth(data) == 16:
            exif_bytes = pil.info.get("exif") or png_exif(data)
            meta, orientation = _pillow_meta(pil, _exif_of(exif_bytes))
            return _decode_png16(data), meta, orientation
        if pil.format == "TIFF":
            # Pillow turns TIFFs upright while loading them (and drops the tag); their
            # tags are the file's own, not EXIF to copy.
            pixels, meta = _decode_with_pillow(pil, _pillow_meta(pil, None)[0])
            return pixels, meta, 1
        pil.load()  # PNG: an eXIf chunk after the pixels is only found once they are read
        meta, orientation = _pillow_meta(pil, pil.getexif())
        pixels, meta = _decode_with_pillow(pil, meta)
    return pixels, meta, orientation


def _exif_of(data: bytes | None) -> PILImage.Exif | None:
    if not data:
        return None
    exif = PILImage.Exif()
    exif.load(data)
    return exif


def _pillow_meta(pil: PILImage.Image, exif: PILImage.Exif | None) -> tuple[ImageMeta, int]:
    """The metadata to keep and the EXIF orientation to apply (removed from the EXIF)."""
    orientation = 1
    kept_exif = None
    if exif is not None:
        value = exif.pop(EXIF_ORIENTATION, 1)
        orientation = value if isinstance(value, int) and 1 <= value <= 8 else 1
        kept_exif = exif.tobytes() if len(exif) else None
    meta = ImageMeta(
        bit_depth=8,
        icc_profile=pil.info.get("icc_profile") or None,
        exif=kept_exif,
        source_format=pil.format,
    )
    return meta, orientation


def _read_tiff(data: bytes) -> tuple[np.ndarray, ImageMeta, int]:
    """8-bit TIFFs go through Pillow (it knows more compressions); deeper ones, and layouts
    Pillow cannot open (16-bit gray + alpha), through tifffile."""
    import tifffile  # imported on use, like imagecodecs: start-up stays short

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        if page.bitspersample <= 8:
            return _read_with_pillow(data)
        tags = page.tags
        icc = tags.get(_TIFF_ICC_PROFILE)
        orientation = tags.get(EXIF_ORIENTATION)
        meta = ImageMeta(
            bit_depth=16,
            icc_profile=bytes(icc.value) if icc is not None else None,
            source_format="TIFF",
        )
        photometric = page.photometric  # the probe refused other colour models
        pixels = page.asarray()
        planar = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
    pixels = _tiff_pixels(pixels, planar)
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        pixels[..., :1] = 65535 - pixels[..., :1]
    value = int(orientation.value) if orientation else 1
    return pixels, meta, value if 1 <= value <= 8 else 1


def image_size(data: bytes, name: str = "image") -> tuple[int, int]:
    """(width, height) from the header alone, without decoding the pixels."""
    header = probe_bytes(data, name)
    return header.width, header.height


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: signature(8) length(4) type(4) width(4) height(4) depth(1)
    return data[24] if len(data) > 25 and data.startswith(PNG_SIGNATURE) else 8


def _decode_png16(data: bytes) -> np.ndarray:
    import imagecodecs

    pixels = imagecodecs.png_decode(data)
    if pixels.dtype != np.uint16:
        raise ValueError(f"unexpected 16-bit PNG sample type {pixels.dtype}")
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _tiff_pixels(pixels: np.ndarray, planar: bool) -> np.ndarray:
    if pixels.ndim == 3 and planar:
        pixels = pixels.transpose(1, 2, 0)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] > 4:
        raise ValueError(f"unsupported TIFF layout {pixels.shape}")
    if pixels.dtype == np.uint16:
        return pixels
    if pixels.dtype.kind == "f":  # float TIFFs are taken as linear [0, 1] data
        return (np.clip(pixels, 0, 1) * 65535 + 0.5).astype(np.uint16)
    if pixels.dtype.kind == "u":
        shift = pixels.dtype.itemsize * 8 - 16
        return (pixels >> shift).astype(np.uint16)
    raise ValueError(f"unsupported TIFF sample type {pixels.dtype}")


def _decode_with_pillow(pil: PILImage.Image, meta: ImageMeta) -> tuple[np.ndarray, ImageMeta]:
    pil.load()
    mode = pil.mode
    if mode == "CMYK":
        pil, meta = _cmyk_to_rgb(pil, meta)
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(pil).astype(np.uint16)[..., None], meta
    elif mode in ("I", "F"):
        # 32-bit gray from a few PNG/TIFF writers: Pillow widens 16-bit gray to "I".
        values = np.asarray(pil)
        return np.clip(values, 0, 65535).astype(np.uint16)[..., None], meta
    elif mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in pil.info
        pil = pil.convert("RGBA" if has_alpha else "RGB")
    elif mode == "1":
        pil = pil.convert("L")
    elif mode == "La":
        pil = pil.convert("LA")
    elif mode in ("RGBa", "RGBX"):
        pil = pil.convert("RGBA" if mode == "RGBa" else "RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        pil = pil.convert("RGB")
    pixels = np.asarray(pil)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return np.ascontiguousarray(pixels), meta


def pil_to_pixels(pil: PILImage.Image) -> np.ndarray:
    """A PIL image as (H, W, C) uint8/uint16 pixels, modes normalised as `read_image` does."""
    return _decode_with_pillow(pil, ImageMeta())[0]


def _cmyk_to_rgb(pil: PILImage.Image, meta: ImageMeta) -> tuple[PILImage.Image, ImageMeta]:
    """Convert CMYK through its embedded profile to sRGB; the CMYK profile is then dropped."""
    from PIL import ImageCms

    if meta.icc_profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(meta.icc_profile))
            target = ImageCms.createProfile("sRGB")
            rgb = ImageCms.profileToProfile(pil, source, target, outputMode="RGB")
            if rgb is not None:
                return rgb, replace(meta, icc_profile=None)
        except (ImageCms.PyCMSError, OSError) as exc:
            log.warning("CMYK ICC profile unusable (%s); converting without it", exc)
    return pil.convert("RGB"), replace(meta, icc_profile=None)


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Undo EXIF orientation 1-8 on an (H, W, C) array, as a viewer would show the image."""
    swap = (1, 0, 2)
    transforms = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(swap),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a.transpose(swap)[::-1, ::-1],
        8: lambda a: np.rot90(a, k=1),
    }
    transform = transforms.get(orientation)
    return pixels if transform is None else np.ascontiguousarray(transform(pixels))


# ----------------------------------------------------------------------------- writing


def output_format(path: str | os.PathLike[str]) -> str:
    """Pillow-style format name for an output path, or BadInputError for unknown extensions."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        known = ", ".join(sorted(WRITE_FORMATS))
        raise BadInputError(f"{path}: unsupported output extension {suffix!r} (use one of {known})")
    return WRITE_FORMATS[suffix]


STREAMED_FORMATS = frozenset({"PNG", "TIFF"})
"""Formats written band by band as the rows are made (`write_rows`): the whole result is
never held in memory. The others are encoded from the whole image."""

# Largest side each format can store (libjpeg: 65500; WebP: 14 bits), and BMP's 32-bit
# file size. PNG allows 2**31 - 1 per side and TIFF switches to BigTIFF when needed.
_MAX_SIDE = {"JPEG": 65500, "WEBP": 16383, "PNG": 2**31 - 1, "TIFF": 2**32 - 1, "BMP": 2**31 - 1}
_BMP_MAX_BYTES = 2**32 - 1 - 138


def check_output_size(name: object, fmt: str, width: int, height: int, channels: int = 3) -> None:
    """BadInputError (one line, naming a format that can hold it) when an image of this
    size cannot be stored in `fmt`; called before the work, from the planned size."""
    limit = _MAX_SIDE.get(fmt)
    if limit is None:
        raise ValueError(f"unknown image format {fmt!r}")
    too_big = max(width, height) > limit
    if fmt == "BMP":
        stride = (width * (4 if channels in (2, 4) else 3) + 3) // 4 * 4
        too_big = too_big or stride * height > _BMP_MAX_BYTES
    if too_big:
        raise BadInputError(
            f"{shown(name)}: a {width}x{height} result is larger than {fmt} can store "
            f"({limit} px per side); write PNG or TIFF instead (--ext png or --ext tif)"
        )


def write_image(
    path: str | os.PathLike[str],
    image: Image,
    quality: int = 95,
    *,
    compress_level: int = DEFAULT_PNG_LEVEL,
) -> None:
    """Write atomically (temp file + rename), format chosen by extension.

    PNG uses zlib level `compress_level` (default 3: about 3x faster than 6 for 5-10%
    larger files; 9 is smallest). 16-bit data is written as 16-bit PNG/TIFF; formats
    that hold only 8 bits (JPEG, WebP, BMP) get 8-bit data, and JPEG and BMP lose alpha,
    each with a logged warning.
    """
    write_rows(path, stream_array(image.pixels), image.meta, quality, compress_level=compress_level)


def write_rows(
    path: str | os.PathLike[str],
    rows: RowStream,
    meta: ImageMeta,
    quality: int = 95,
    *,
    compress_level: int = DEFAULT_PNG_LEVEL,
) -> None:
    """Write an image given as a stream of row blocks, atomically. PNG and TIFF are
    encoded block by block as the rows come (`STREAMED_FORMATS`): memory holds one block,
    not the image. Other formats collect the rows first."""
    path = Path(path)
    fmt = output_format(path)
    _check_layout(rows.shape, fmt)
    check_output_size(path, fmt, rows.width, rows.height, rows.channels)
    if fmt not in STREAMED_FORMATS:
        encoded = encode_image(
            Image(collect(rows), meta), fmt, quality, compress_level, name=path.name
        )
        write_bytes_atomically(path, encoded)
        return
    with atomic_output(path) as stream:
        _encode_rows(stream, rows, meta, fmt, compress_level)


def encode_image(
    image: Image,
    fmt: str,
    quality: int = 95,
    compress_level: int = DEFAULT_PNG_LEVEL,
    *,
    name: str = "image",
) -> bytes:
    """The bytes `write_image` would write for the format `fmt` ('PNG', 'JPEG', 'WEBP',
    'TIFF' or 'BMP'); `name` is used in the warnings only."""
    pixels, meta = image.pixels, image.meta
    _check_layout(pixels.shape, fmt)
    check_output_size(name, fmt, image.width, image.height, image.channels)
    if fmt in STREAMED_FORMATS:
        buffer = io.BytesIO()
        _encode_rows(buffer, stream_array(pixels), meta, fmt, compress_level)
        return buffer.getvalue()
    if pixels.dtype == np.uint16:
        log.warning("%s holds 8 bits per channel: writing %s as 8-bit", fmt, name)
        pixels = _to_8bit(pixels)
    if fmt in NO_ALPHA_FORMATS and pixels.shape[2] in (2, 4):
        log.warning("%s has no alpha channel: dropping transparency of %s", fmt, name)
        pixels = pixels[..., :-1]
    return _encode_with_pillow(pixels, meta, fmt, quality)


def _check_layout(shape: tuple[int, ...], fmt: str) -> None:
    if fmt not in set(WRITE_FORMATS.values()):
        raise ValueError(f"unknown image format {fmt!r}")
    if len(shape) != 3 or shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"pixels must be (H, W, 1-4), got {shape}")


def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    """16-bit -> 8-bit with rounding, a band of rows at a time (no 4-byte copy of it all)."""
    out = np.empty(pixels.shape, dtype=np.uint8)
    step = max(1, (1 << 22) // max(1, pixels[0].size))
    for start in range(0, pixels.shape[0], step):
        part = pixels[start : start + step].astype(np.uint32)
        out[start : start + step] = (part * 255 + 32767) // 65535
    return out


def _encode_rows(
    stream: BinaryIO, rows: RowStream, meta: ImageMeta, fmt: str, compress_level: int
) -> None:
    if fmt == "TIFF":
        write_tiff_rows(stream, rows, meta.icc_profile)
        return
    writer = PngRowWriter(
        stream,
        rows.height,
        rows.width,
        rows.channels,
        np.dtype(rows.dtype).itemsize * 8,
        level=compress_level,
        icc_profile=meta.icc_profile,
        exif=meta.exif,
    )
    for block in rows:
        writer.write(block)
    writer.close()


def _encode_with_pillow(pixels: np.ndarray, meta: ImageMeta, fmt: str, quality: int) -> bytes:
    pil = PILImage.fromarray(_squeeze_gray(pixels))
    options: dict[str, object] = {}
    if meta.icc_profile and fmt != "BMP":
        options["icc_profile"] = meta.icc_profile
    if meta.exif and fmt in ("JPEG", "WEBP"):
        options["exif"] = meta.exif
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "WEBP" and quality >= 100:
        options.update(lossless=True, exact=True)  # exact: keep colour under transparent pixels
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _squeeze_gray(pixels: np.ndarray) -> np.ndarray:
    return pixels[..., 0] if pixels.shape[2] == 1 else pixels


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`."""
    with atomic_output(path) as stream:
        stream.write(data)


@contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A binary stream into a temporary file beside `path`, renamed over it (after an
    fsync) when the block ends without error and removed otherwise.

    The temporary name is short and fixed in length (``.srgan-XXXXXXXX.part``) so that a
    target whose name is at the file system's 255-byte limit still gets one; it is
    hidden, so no folder listing of srgan's takes it for an input."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(
            f"{shown(directory)}: cannot create output folder ({exc.strerror})"
        ) from exc
    # Opened with "xb" (not mkstemp) so the file gets the usual umask-based permissions.
    for _attempt in range(100):
        temp_path = directory / f".srgan-{secrets.token_hex(4)}.part"
        try:
            stream = open(temp_path, "xb")  # noqa: SIM115 (closed below, before the rename)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise BadInputError(f"{shown(directory)}: cannot write there ({exc.strerror})") from exc
    else:
        raise BadInputError(f"{shown(directory)}: cannot create a temporary file")
    try:
        with stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def list_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Image files (by extension) in a folder, sorted; hidden and partial files skipped,
    and so is anything that is not a regular file (a pipe, a device, a symlink loop)."""
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in candidates
        if p.is_file() and p.suffix.lower() in READ_EXTENSIONS and not p.name.startswith(".")
    )
