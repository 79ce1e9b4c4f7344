"""A PNG encoder that takes rows as they come: IHDR first, then IDAT chunks as bands of
rows are filtered and compressed, then IEND. Nothing but the current rows is held.

Each row gets the filter (None, Sub, Up, Average, Paeth) whose output has the smallest
sum of absolute values taken as signed bytes, libpng's heuristic; the filtered rows go
through one zlib stream. 8 and 16-bit gray, gray + alpha, RGB and RGBA are written; the
ICC profile (iCCP) and EXIF (eXIf) chunks precede the image data, as in `io.encode_image`.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

__all__ = ["PngRowWriter"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_IDAT_BYTES = 1 << 20  # compressed bytes per IDAT chunk
_FILTER_BYTES = 1 << 18  # raw bytes filtered at a time (bounds the temporaries)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _signed_cost(filtered: np.ndarray) -> np.ndarray:
    """Per row, the sum of |byte| with bytes read as signed: libpng's filter heuristic."""
    return np.abs(filtered.view(np.int8), dtype=np.int16).sum(axis=1, dtype=np.int64)


class PngRowWriter:
    """Write a PNG to `stream` row block by row block; `close()` ends it (and checks that
    exactly `height` rows were written)."""

    def __init__(
        self,
        stream: BinaryIO,
        height: int,
        width: int,
        channels: int,
        bit_depth: int,
        *,
        level: int = 6,
        icc_profile: bytes | None = None,
        exif: bytes | None = None,
    ) -> None:
        if channels not in _COLOUR_TYPES or bit_depth not in (8, 16):
            raise ValueError(f"PNG holds 1-4 channels of 8 or 16 bits, not {channels}x{bit_depth}")
        if not (0 < width < 2**31 and 0 < height < 2**31):
            raise ValueError(f"PNG sides must be 1 to 2**31 - 1 pixels, not {width}x{height}")
        self._stream = stream
        self._height, self._width, self._channels = height, width, channels
        self._dtype = np.dtype(">u2" if bit_depth == 16 else "u1")
        self._bpp = channels * self._dtype.itemsize  # bytes per pixel, the filters' offset
        self._stride = width * self._bpp
        self._previous = np.zeros(self._stride, dtype=np.uint8)
        self._rows = 0
        self._compressor = zlib.compressobj(level)
        self._pending = bytearray()
        header = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOUR_TYPES[channels], 0, 0, 0)
        stream.write(SIGNATURE + png_chunk(b"IHDR", header))
        if icc_profile:
            payload = b"ICC profile\x00\x00" + zlib.compress(icc_profile)
            stream.write(png_chunk(b"iCCP", payload))
        if exif:
            stream.write(png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))

    def write(self, rows: np.ndarray) -> None:
        """Append (k, width, channels) rows of uint8 (8-bit) or uint16 (16-bit)."""
        if rows.ndim != 3 or rows.shape[1:] != (self._width, self._channels):
            raise ValueError(f"rows of shape {rows.shape} do not fit this PNG")
        if self._rows + rows.shape[0] > self._height:
            raise ValueError(f"more than {self._height} rows written")
        step = max(1, _FILTER_BYTES // self._stride)
        for start in range(0, rows.shape[0], step):
            part = rows[start : start + step]
            raw = np.ascontiguousarray(part, dtype=self._dtype).view(np.uint8)
            raw = raw.reshape(part.shape[0], self._stride)
            self._pending += self._compressor.compress(self._filter(raw))
            self._previous = raw[-1].copy()
            self._rows += part.shape[0]
            self._flush(final=False)

    def close(self) -> None:
        if self._rows != self._height:
            raise ValueError(f"PNG ended after {self._rows} of {self._height} rows")
        self._pending += self._compressor.flush()
        self._flush(final=True)
        self._stream.write(png_chunk(b"IEND", b""))

    def _flush(self, final: bool) -> None:
        while len(self._pending) >= _IDAT_BYTES or (final and self._pending):
            payload = bytes(self._pending[:_IDAT_BYTES])
            del self._pending[:_IDAT_BYTES]
            self._stream.write(png_chunk(b"IDAT", payload))

    def _filter(self, raw: np.ndarray) -> bytes:
        """Rows (k, stride) of raw bytes -> filter-type byte + filtered bytes, per row."""
        bpp = self._bpp
        up = np.empty_like(raw)  # the row above each row
        up[0] = self._previous
        up[1:] = raw[:-1]
        left = np.zeros_like(raw)
        left[:, bpp:] = raw[:, :-bpp]
        up_left = np.zeros_like(raw)
        up_left[:, bpp:] = up[:, :-bpp]
        a, b, c = (x.astype(np.int16) for x in (left, up, up_left))
        average = ((a + b) >> 1).astype(np.uint8)
        # Paeth: the neighbour closest to a + b - c (ties: left, then above, then upper left)
        pa = np.abs(b - c)
        pb = np.abs(a - c)
        pc = np.abs(a + b - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
        candidates = (raw, raw - left, raw - up, raw - average, raw - paeth)
        costs = np.stack(
            [
                np.abs(x.view(np.int8), dtype=np.int16).sum(axis=1, dtype=np.int64)
                for x in candidates
            ]
        )
        best = costs.argmin(axis=0)
        out = np.empty((raw.shape[0], self._stride + 1), dtype=np.uint8)
        out[:, 0] = best
        for kind, filtered in enumerate(candidates):
            chosen = best == kind
            if chosen.any():
                out[chosen, 1:] = filtered[chosen]
        return out.tobytes()
