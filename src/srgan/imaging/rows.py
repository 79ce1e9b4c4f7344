"""Images as streams of row blocks, so that a result can be written while it is made.

A `RowStream` announces its shape and dtype, then yields consecutive blocks of rows
``(k, width, channels)`` from the top of the image to the bottom. The tiling engine
produces one block per finished band, the banded resizer turns one stream into another,
and the writers of formats that allow it (PNG, TIFF) encode each block as it comes, so a
result is never held whole in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["RowStream", "collect", "stream_array"]


@dataclass
class RowStream:
    """Blocks of rows of an (height, width, channels) image of `dtype`, top to bottom."""

    height: int
    width: int
    channels: int
    dtype: np.dtype
    blocks: Iterable[np.ndarray]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.height, self.width, self.channels

    def __iter__(self) -> Iterator[np.ndarray]:
        """The blocks, checked: right shape and dtype, exactly `height` rows in all. A
        consumer that stops early closes the source (which may be computing ahead)."""
        done = 0
        blocks = iter(self.blocks)
        try:
            for block in blocks:
                if block.shape[1:] != (self.width, self.channels) or block.dtype != self.dtype:
                    raise ValueError(
                        f"row block {block.shape} {block.dtype} does not fit a "
                        f"{self.shape} {self.dtype} stream"
                    )
                done += block.shape[0]
                if done > self.height:
                    raise ValueError(f"row stream yielded more than {self.height} rows")
                yield block
        finally:
            close = getattr(blocks, "close", None)
            if close is not None:
                close()
        if done != self.height:
            raise ValueError(f"row stream ended after {done} of {self.height} rows")


def collect(stream: RowStream, out: np.ndarray | None = None) -> np.ndarray:
    """The whole image of a stream, in `out` if given (any strides) or a new array."""
    if out is None:
        out = np.empty(stream.shape, dtype=stream.dtype)
    elif out.shape != stream.shape or out.dtype != stream.dtype:
        raise ValueError(f"out must be a {stream.shape} {stream.dtype} array, got {out.shape}")
    row = 0
    for block in stream:
        out[row : row + block.shape[0]] = block
        row += block.shape[0]
    return out


def stream_array(pixels: np.ndarray, rows_per_block: int = 64) -> RowStream:
    """An (H, W, C) array as a stream of views of `rows_per_block` rows."""
    height, width, channels = pixels.shape
    step = max(1, rows_per_block)
    blocks = (pixels[start : start + step] for start in range(0, height, step))
    return RowStream(height, width, channels, pixels.dtype, blocks)
