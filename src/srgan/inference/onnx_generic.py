"""Run an ONNX super-resolution model of any architecture (`srgan.zoo.onnx_generic`)
with ONNX Runtime: srgan's [1, C, h, w] float32 RGB tiles in [0, 1] converted to what
the model takes (channel order, range, layout, element type), padded with repeated edge
pixels to the fixed size or size multiple it needs, and the padding cropped off."""

from __future__ import annotations

import numpy as np

from srgan.zoo.onnx_generic import GenericOnnx, onnx_session, run_converted

__all__ = ["GenericOnnxRunner"]


class GenericOnnxRunner:
    """A tile forward around one session (safe to call from several threads)."""

    def __init__(
        self, model: GenericOnnx, threads: int | None = None, spinning: bool = True
    ) -> None:
        self.model = model
        self.conventions = model.conventions
        self.session = onnx_session(model.path, threads, spinning)

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        c = self.conventions
        _, _, height, width = tile.shape
        if c.fixed_size is not None:
            target_h, target_w = c.fixed_size
            if height > target_h or width > target_w:
                raise ValueError(
                    f"a {width}x{height} tile is larger than the model's fixed "
                    f"{target_w}x{target_h} input"
                )
        else:
            m = max(1, self.model.size_multiple)
            target_h, target_w = -(-height // m) * m, -(-width // m) * m
        padded = tile
        if (target_h, target_w) != (height, width):
            pad = ((0, 0), (0, 0), (0, target_h - height), (0, target_w - width))
            padded = np.pad(tile, pad, mode="edge")
        output = run_converted(self.session, c, padded)
        s = c.scale
        return np.ascontiguousarray(output[:, :, : height * s, : width * s])
