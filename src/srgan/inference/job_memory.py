"""The memory an image job needs, decided from the file's header before any decoding.

A 35-byte GIF can announce a 16384x16384 canvas and a x4 model makes 16 times more
pixels than it reads, so the input pixel limit alone protects nothing. `plan_upscale`
adds up, phase by phase, what `srgan upscale` will hold:

- decoding: the file's bytes, the decoder's buffers and the decoded array (`ImageHeader`);
- upscaling: the input array, the tiling engine's float32 band (two with alpha), the
  tile's float copies and the network's activations for one tile (the model descriptor's
  ``memory_per_pixel``), the banded `--outscale` resize, and, for formats that are not
  written band by band, the whole output array;
- encoding: for those formats, the encoder's own copy of the output.

The peak of the phases is compared with the memory available (``MemAvailable``, shared
between parallel workers) or with `--max-memory` / ``$SRGAN_MAX_MEMORY``; a job that does
not fit is refused with one line naming the sizes and what to change. PNG and TIFF
outputs are written as the bands finish (`imaging.io.STREAMED_FORMATS`), so for them the
output costs one band, not the image.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from srgan.errors import BadInputError
from srgan.imaging.header import ImageHeader
from srgan.imaging.io import STREAMED_FORMATS
from srgan.imaging.sizes import output_size
from srgan.inference.tiling import available_memory_bytes, band_rows
from srgan.user_files import shown

__all__ = [
    "MEMORY_ENV",
    "MemoryPlan",
    "format_bytes",
    "memory_limit",
    "parse_bytes",
    "plan_resize",
    "plan_upscale",
]

MEMORY_ENV = "SRGAN_MAX_MEMORY"
_FLOAT = 4
_PNG_WRITER = 12 << 20  # the streaming PNG writer's filter temporaries and zlib state
_RESIZE_CHUNK = 24 << 20  # the banded resizer: an output chunk and its temporaries (measured 18 MB)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class MemoryPlan:
    """What a job holds in each phase, in bytes, and the sizes it works on."""

    name: str
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]
    output_format: str
    streamed: bool
    parts: dict[str, int]  # what is held, by name (as the error message lists it)
    phases: dict[str, int]  # the total held in each phase

    @property
    def peak(self) -> int:
        return max(self.phases.values())

    @property
    def output_pixels(self) -> int:
        return self.output_size[0] * self.output_size[1]

    def check(self, limit: int, *, tile_flag: bool = True) -> None:
        """BadInputError (one line, exit 2) when the peak does not fit in `limit` bytes."""
        if self.peak <= limit:
            return
        (width, height), (out_w, out_h) = self.input_size, self.output_size
        held = ", ".join(f"{k} {format_bytes(v)}" for k, v in self.parts.items() if v > 0)
        raise BadInputError(
            f"{shown(self.name)}: {width}x{height} -> {out_w}x{out_h} "
            f"({self.output_pixels / 1e6:,.0f} megapixels) needs about "
            f"{format_bytes(self.peak)} of memory ({held}) but {format_bytes(limit)} may be "
            f"used; {self._remedies(limit, tile_flag)}"
        )

    def _remedies(self, limit: int, tile_flag: bool) -> str:
        if self.phases.get("decode", 0) > limit:
            return (
                "decoding the input alone does not fit (refuse such files early with a lower "
                "--max-pixels, or allow more memory with --max-memory)"
            )
        steps = []
        output = self.parts.get("output", 0) + self.parts.get("encoder", 0)
        if not self.streamed and output > limit // 4:
            steps.append("write PNG or TIFF, which are written band by band (--ext png)")
        if self.output_pixels > self.input_size[0] * self.input_size[1]:
            steps.append("use a smaller --outscale")
        if tile_flag and self.parts.get("band", 0) + self.parts.get("model", 0) > limit // 4:
            steps.append("use a smaller --tile")
        steps.append("allow more memory with --max-memory")
        return "to fit: " + ", or ".join(steps)


def format_bytes(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"


def parse_bytes(text: str) -> int:
    """'4G', '512M', '1.5GiB', '2e9' -> bytes (binary units: G = 2**30)."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    try:
        value = float(match.group(1)) if match else math.nan
    except ValueError:
        value = math.nan
    if not match or not math.isfinite(value) or value <= 0:
        raise BadInputError(f"memory size {text!r}: expected e.g. 8G, 512M or 2e9 (bytes)")
    return int(value * _UNITS[match.group(2).lower()])


def memory_limit(override: str | int | None = None, workers: int = 1) -> int:
    """The memory one job may use: `override` (bytes or '8G'), else $SRGAN_MAX_MEMORY,
    else the memory available now; split between `workers` parallel jobs."""
    if override is None:
        override = os.environ.get(MEMORY_ENV) or None
    if override is None:
        total = available_memory_bytes("cpu")
    elif isinstance(override, str):
        total = parse_bytes(override)
    else:
        total = int(override)
    return max(1, total // max(1, workers))


def plan_upscale(
    header: ImageHeader,
    name: object,
    output_format: str,
    scale: float,
    outscale: float | None,
    tile: int,
    pad: int,
    memory_per_pixel: float,
    half_precision: bool = False,
    activations_on_host: bool = True,
) -> MemoryPlan:
    """The memory `srgan upscale` needs for this image (see the module's docstring).

    `tile` is the tile side the job will use (0: the whole image), `scale` the model's,
    `outscale` the final one (None: the model's)."""
    width, height, channels = header.width, header.height, header.channels
    sample = header.bit_depth // 8
    if scale == int(scale):
        model_h, model_w = height * int(scale), width * int(scale)
    else:
        model_h, model_w = output_size(height, width, scale)
    final = outscale if outscale is not None and outscale != scale else None
    out_h, out_w = output_size(height, width, final) if final else (model_h, model_w)
    streamed = output_format in STREAMED_FORMATS

    parts: dict[str, int] = {"decode": header.decode_peak, "input": header.array_bytes}
    if scale == int(scale):
        side = tile or max(height, width)
        padded = min(height, side + 2 * pad) * min(width, side + 2 * pad)
        rows = band_rows(height, width, tile, pad, int(scale))
        parts["band"] = rows * model_w * channels * (_FLOAT + sample)  # floats + rounded rows
        # the tile in float, its output, the weighted output and the weights (4 values)
        parts["tile"] = padded * _FLOAT * (channels + int(scale) ** 2 * (2 * channels + 1))
        per_pixel = memory_per_pixel / 2 if half_precision else memory_per_pixel
        parts["model"] = int(per_pixel * padded) if activations_on_host else 0
    else:
        parts["band"] = _RESIZE_CHUNK + 32 * width * channels * _FLOAT
    if final:
        parts["resize"] = _RESIZE_CHUNK + 32 * model_w * channels * _FLOAT
    output_bytes = out_h * out_w * channels * sample
    if streamed:
        parts["writer"] = _PNG_WRITER if output_format == "PNG" else 2 * (1 << 18)
    else:
        parts["output"] = output_bytes
        parts["encoder"] = _encoder_bytes(output_format, out_h * out_w, channels, sample)
    work = sum(v for k, v in parts.items() if k not in ("decode", "encoder"))
    phases = {"decode": parts["decode"], "upscale": work}
    if not streamed:
        phases["encode"] = parts["input"] + parts["output"] + parts["encoder"]
    return MemoryPlan(
        str(name), (width, height), (out_w, out_h), output_format, streamed, parts, phases
    )


def plan_resize(
    header: ImageHeader, name: object, output_format: str, size: tuple[int, int]
) -> MemoryPlan:
    """The memory `srgan downscale` needs: decoding, the input, the banded resizer and the
    output (whole, for formats that are not streamed). `size` is (height, width)."""
    out_h, out_w = size
    channels, sample = header.channels, header.bit_depth // 8
    streamed = output_format in STREAMED_FORMATS
    parts = {
        "decode": header.decode_peak,
        "input": header.array_bytes,
        "resize": _RESIZE_CHUNK + 64 * header.width * channels * _FLOAT,
    }
    if streamed:
        parts["writer"] = _PNG_WRITER
    else:
        parts["output"] = out_h * out_w * channels * sample
        parts["encoder"] = _encoder_bytes(output_format, out_h * out_w, channels, sample)
    phases = {
        "decode": parts["decode"],
        "resize": sum(v for k, v in parts.items() if k not in ("decode", "encoder")),
    }
    if not streamed:
        phases["encode"] = parts["input"] + parts["output"] + parts["encoder"]
    size_in = (header.width, header.height)
    return MemoryPlan(str(name), size_in, (out_w, out_h), output_format, streamed, parts, phases)


def _encoder_bytes(fmt: str, pixels: int, channels: int, sample: int) -> int:
    """Pillow's copy of the image (4 bytes a pixel unless gray), the 8-bit copy of 16-bit
    data, and the encoded bytes with their copy (JPEG: at most about half the raw size;
    lossless WebP and BMP: about the raw size)."""
    pillow = pixels * (1 if channels == 1 else 4)
    eight_bit = pixels * channels if sample == 2 else 0
    encoded = pixels * channels // (2 if fmt == "JPEG" else 1)
    return pillow + eight_bit + 2 * encoded
