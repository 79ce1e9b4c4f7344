"""A TIFF encoder that takes rows as they come: zlib-compressed strips are written as soon
as their rows are complete (tifffile writes the directory and fills in the offsets), so
only one strip is held. BigTIFF is used when the pixels would not fit in 4 GB."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from srgan.imaging.rows import RowStream

__all__ = ["write_tiff_rows"]

_STRIP_BYTES = 1 << 18  # raw bytes per strip
_ZLIB_LEVEL = 6
_CLASSIC_TIFF_LIMIT = 2**32 - 2**25  # tifffile's own threshold for switching to BigTIFF
_TIFF_ICC_PROFILE = 34675


def write_tiff_rows(stream: BinaryIO, rows: RowStream, icc_profile: bytes | None = None) -> None:
    """Encode `rows` (uint8 or uint16, 1-4 channels) as a zlib-compressed, strip-organised
    TIFF into the seekable `stream`."""
    dtype = np.dtype(rows.dtype).newbyteorder("<")
    row_bytes = rows.width * rows.channels * dtype.itemsize
    per_strip = max(1, min(rows.height, _STRIP_BYTES // row_bytes))
    raw_size = rows.height * row_bytes
    gray = rows.channels in (1, 2)
    extratags = []
    if icc_profile:
        extratags.append((_TIFF_ICC_PROFILE, 7, len(icc_profile), icc_profile, True))
    shape = (rows.height, rows.width) if rows.channels == 1 else rows.shape
    import tifffile  # on use: start-up stays short

    with tifffile.TiffWriter(stream, bigtiff=raw_size > _CLASSIC_TIFF_LIMIT, byteorder="<") as tif:
        tif.write(
            _strips(rows, per_strip, dtype),
            shape=shape,
            dtype=dtype,
            photometric="minisblack" if gray else "rgb",
            planarconfig="contig" if rows.channels > 1 else None,
            extrasamples=("unassalpha",) if rows.channels in (2, 4) else None,
            compression="zlib",
            rowsperstrip=per_strip,
            extratags=extratags,
        )


def _strips(rows: RowStream, per_strip: int, dtype: np.dtype) -> Iterator[bytes]:
    """zlib-compressed strips of `per_strip` rows (the last may be shorter)."""
    carry: list[np.ndarray] = []
    carried = 0
    for block in rows:
        start = 0
        while start < block.shape[0]:
            take = min(per_strip - carried, block.shape[0] - start)
            carry.append(block[start : start + take])
            carried += take
            start += take
            if carried == per_strip:
                yield _compress(carry, dtype)
                carry, carried = [], 0
    if carried:
        yield _compress(carry, dtype)


def _compress(parts: list[np.ndarray], dtype: np.dtype) -> bytes:
    strip = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return zlib.compress(np.ascontiguousarray(strip, dtype=dtype).tobytes(), _ZLIB_LEVEL)
