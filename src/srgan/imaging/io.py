"""Read and write images without losing bit depth, alpha, grayscale, ICC profile or EXIF.

Pixels travel as numpy arrays of shape (H, W, C) in their stored dtype (uint8 or uint16);
C is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). `ImageMeta` remembers what is
needed to write a result back the way the input was stored.

Pillow decodes everything except 16-bit PNG colour images, which it silently reduces to
8 bits, and 16-bit TIFFs, which it handles only partly: those go through imagecodecs and
tifffile instead.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import struct
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from srgan.defaults import DEFAULT_MAX_PIXELS, DEFAULT_PNG_LEVEL
from srgan.errors import BadInputError, ImageTooLargeError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# srgan enforces its own limit (`max_pixels`) on every read, before decoding.
PILImage.MAX_IMAGE_PIXELS = None


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

_EXIF_ORIENTATION = 0x0112
_TIFF_ICC_PROFILE = 34675
_DEEP_TIFF_PHOTOMETRICS = ("MINISBLACK", "MINISWHITE", "RGB")
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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

    EXIF orientation is applied to the pixels (and removed from the kept EXIF). Palette
    images become RGB or RGBA, CMYK becomes RGB (through its ICC profile when it has one),
    bilevel becomes gray.
    """
    path = Path(path)
    return decode_image(_read_bytes(path), str(path), max_pixels)


def decode_image(
    data: bytes, name: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image:
    """Decode an image held in memory, as `read_image` does a file; `name` is used in
    error messages only. The pixel count is checked from the header, before decoding."""
    path = Path(name)
    if not data:
        raise BadInputError(f"{name}: file is empty")
    try:
        if data[:4] in _TIFF_MAGIC:
            pixels, meta, orientation = _read_tiff(path, data, max_pixels)
        else:
            pixels, meta, orientation = _read_with_pillow(path, data, max_pixels)
    except BadInputError:
        raise
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise BadInputError(
            f"{path}: not a recognised image file (expected PNG, JPEG, WebP, TIFF or BMP)"
        ) from exc
    except (OSError, ValueError, RuntimeError, EOFError, struct.error, zlib.error) as exc:
        raise BadInputError(f"{path}: image data is damaged or truncated ({_reason(exc)})") from exc
    except Exception as exc:  # imagecodecs/tifffile raise their own exception classes
        raise BadInputError(f"{path}: could not decode image ({_reason(exc)})") from exc

    if pixels.dtype == np.uint16:
        meta = replace(meta, bit_depth=16)
    return Image(_apply_orientation(pixels, orientation), meta)


def _read_with_pillow(
    path: Path, data: bytes, max_pixels: int | None
) -> tuple[np.ndarray, ImageMeta, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pil = PILImage.open(io.BytesIO(data))
    _check_pixel_count(path, pil.width * pil.height, max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": the pixels still decode
        exif = pil.getexif()
        orientation = int(exif.pop(_EXIF_ORIENTATION, 1) or 1)
        # For TIFFs Pillow reports the file's own tags as EXIF: those must not be copied.
        kept_exif = exif.tobytes() if len(exif) and pil.format != "TIFF" else None
        meta = ImageMeta(
            bit_depth=8,
            icc_profile=pil.info.get("icc_profile") or None,
            exif=kept_exif,
            source_format=pil.format,
        )
        if pil.format == "PNG" and _png_bit_depth(data) == 16:
            return _decode_png16(data), meta, orientation
        pixels, meta = _decode_with_pillow(pil, meta)
    return pixels, meta, orientation


def _read_tiff(
    path: Path, data: bytes, max_pixels: int | None
) -> tuple[np.ndarray, ImageMeta, int]:
    """8-bit TIFFs go through Pillow (it knows more compressions); deeper ones, and layouts
    Pillow cannot open (16-bit gray + alpha), through tifffile."""
    import tifffile  # imported on use, like imagecodecs: start-up stays short

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        _check_pixel_count(path, int(page.imagewidth) * int(page.imagelength), max_pixels)
        if page.bitspersample <= 8:
            return _read_with_pillow(path, data, max_pixels)
        tags = page.tags
        icc = tags.get(_TIFF_ICC_PROFILE)
        orientation = tags.get(_EXIF_ORIENTATION)
        meta = ImageMeta(
            bit_depth=16,
            icc_profile=bytes(icc.value) if icc is not None else None,
            source_format="TIFF",
        )
        photometric = tifffile.PHOTOMETRIC(page.photometric)
        if photometric.name not in _DEEP_TIFF_PHOTOMETRICS:
            raise BadInputError(
                f"{path}: 16-bit TIFF with {photometric.name} colour is not supported "
                "(use gray or RGB)"
            )
        pixels = page.asarray()
        planar = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
    pixels = _tiff_pixels(pixels, planar)
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        pixels[..., :1] = 65535 - pixels[..., :1]
    return pixels, meta, int(orientation.value) if orientation else 1


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory, expected an image file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror})") from exc
    if not data:
        raise BadInputError(f"{path}: file is empty")
    return data


def sniff_image_format(data: bytes) -> str | None:
    """The format of an image from its first bytes ('PNG', 'JPEG', 'WEBP', 'TIFF', 'BMP'),
    or None: what a file says it is by name or by content type is not trusted."""
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in _TIFF_MAGIC:
        return "TIFF"
    if data[:2] == b"BM" and len(data) >= 26:
        return "BMP"
    return None


def image_size(data: bytes, name: str = "image") -> tuple[int, int]:
    """(width, height) from the header alone, without decoding the pixels."""
    try:
        if data[:4] in _TIFF_MAGIC:
            import tifffile

            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                page = tif.pages.first
                return int(page.imagewidth), int(page.imagelength)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pil = PILImage.open(io.BytesIO(data))
        return pil.width, pil.height
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise BadInputError(
            f"{name}: not a recognised image file (expected PNG, JPEG, WebP, TIFF or BMP)"
        ) from exc
    except Exception as exc:  # Pillow and tifffile raise many classes on bad headers
        raise BadInputError(f"{name}: image header is damaged ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_pixel_count(path: Path, pixels: int, max_pixels: int | None) -> None:
    if max_pixels and pixels > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {pixels:,} pixels exceeds the limit of {max_pixels:,} "
            "(raise it with --max-pixels if the file is trusted)"
        )


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: signature(8) length(4) type(4) width(4) height(4) depth(1)
    return data[24] if len(data) > 25 and data.startswith(_PNG_SIGNATURE) else 8


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
    path = Path(path)
    encoded = encode_image(image, output_format(path), quality, compress_level, name=path.name)
    write_bytes_atomically(path, encoded)


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
    if fmt not in set(WRITE_FORMATS.values()):
        raise ValueError(f"unknown image format {fmt!r}")
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"pixels must be (H, W, 1-4), got {pixels.shape}")
    if fmt in EIGHT_BIT_FORMATS and pixels.dtype == np.uint16:
        log.warning("%s holds 8 bits per channel: writing %s as 8-bit", fmt, name)
        pixels = (pixels.astype(np.uint32) * 255 + 32767) // 65535
        pixels = pixels.astype(np.uint8)
    if fmt in NO_ALPHA_FORMATS and pixels.shape[2] in (2, 4):
        log.warning("%s has no alpha channel: dropping transparency of %s", fmt, name)
        pixels = pixels[..., :-1]
    return _encode(pixels, meta, fmt, quality, compress_level)


def _encode(
    pixels: np.ndarray, meta: ImageMeta, fmt: str, quality: int, compress_level: int
) -> bytes:
    if fmt == "TIFF":
        return _encode_tiff(pixels, meta)
    if fmt == "PNG":  # libpng through imagecodecs: 16-bit colour, and faster than Pillow
        import imagecodecs

        encoded = imagecodecs.png_encode(_squeeze_gray(pixels), level=compress_level)
        # imagecodecs' encoder takes no metadata: add the chunks right after IHDR.
        if meta.exif:
            encoded = _png_insert_chunk(encoded, b"eXIf", _exif_payload(meta.exif))
        if meta.icc_profile:
            payload = b"ICC profile\x00\x00" + zlib.compress(meta.icc_profile)
            encoded = _png_insert_chunk(encoded, b"iCCP", payload)
        return encoded
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


def _encode_tiff(pixels: np.ndarray, meta: ImageMeta) -> bytes:
    import tifffile

    channels = pixels.shape[2]
    photometric = "minisblack" if channels in (1, 2) else "rgb"
    extratags = []
    if meta.icc_profile:
        extratags.append((34675, 7, len(meta.icc_profile), meta.icc_profile, True))
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        _squeeze_gray(pixels),
        photometric=photometric,
        planarconfig="contig",
        extrasamples=("unassalpha",) if channels in (2, 4) else None,
        compression="zlib",
        extratags=extratags,
    )
    return buffer.getvalue()


def _png_insert_chunk(png: bytes, kind: bytes, payload: bytes) -> bytes:
    """Insert a chunk right after IHDR (signature 8 + length 4 + type 4 + data 13 + CRC 4)."""
    chunk = struct.pack(">I", len(payload)) + kind + payload
    chunk += struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    ihdr_end = 8 + 4 + 4 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _exif_payload(exif: bytes) -> bytes:
    """PNG's eXIf chunk holds the TIFF structure without the 6-byte JPEG 'Exif' header."""
    return exif[6:] if exif.startswith(b"Exif\x00\x00") else exif


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"{directory}: cannot create output folder ({exc.strerror})") from exc
    # Opened with "xb" (not mkstemp) so the file gets the usual umask-based permissions.
    temp_path = directory / f".{path.name}.{secrets.token_hex(4)}.part"
    try:
        with open(temp_path, "xb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def list_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Image files (by extension) in a folder, sorted; hidden and partial files skipped."""
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in candidates
        if p.is_file() and p.suffix.lower() in READ_EXTENSIONS and not p.name.startswith(".")
    )
