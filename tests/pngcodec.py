"""A tiny, independent PNG encoder/decoder for checking srgan's 16-bit PNG support.

Written from the PNG specification (chunks, zlib stream, the five row filters), slow
and only meant for small test images.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
CHANNELS = {v: k for k, v in COLOUR_TYPES.items()}


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode(pixels: np.ndarray) -> bytes:
    """(H, W, C) uint8/uint16 -> PNG bytes, filter type 0 on every row."""
    height, width, channels = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    ihdr = struct.pack(">IIBBBBB", width, height, depth, COLOUR_TYPES[channels], 0, 0, 0)
    rows = pixels.astype(">u2" if depth == 16 else "u1").reshape(height, -1).view(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(data: bytes) -> tuple[np.ndarray, dict[bytes, bytes]]:
    """PNG bytes -> ((H, W, C) array, {chunk type: payload of the first such chunk})."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, chunks = 8, b"", {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        payload = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.setdefault(kind, payload)
        if kind == b"IDAT":
            idat += payload
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert interlace == 0, "interlaced PNGs are not supported by this test codec"
    channels = CHANNELS[colour_type]
    bpp = channels * depth // 8
    stride = width * bpp
    raw = zlib.decompress(idat)
    out = bytearray()
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        filter_type, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            a = row[x - bpp] if x >= bpp else 0
            b = previous[x]
            c = previous[x - bpp] if x >= bpp else 0
            predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[filter_type]
            row[x] = (row[x] + predictor) & 0xFF
        out += row
        previous = row
    dtype = ">u2" if depth == 16 else "u1"
    pixels = np.frombuffer(bytes(out), dtype=dtype).reshape(height, width, channels)
    return pixels.astype(np.uint16 if depth == 16 else np.uint8), chunks
