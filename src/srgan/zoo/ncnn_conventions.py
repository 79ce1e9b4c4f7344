"""What a model family's reference program does around the network, for PyTorch and NumPy.

The ncnn programs that ship Real-CUGAN, waifu2x and RealSR (nihui's ``*-ncnn-vulkan``,
``process_cpu``) feed the network RGB in [0, 1] and, around it:

* pad the image by ``prepadding`` pixels on every side (Real-CUGAN and RealSR: reflect,
  ``copy_make_border`` type 2; waifu2x: replicate), plus up to ``multiple - 1`` more at the
  bottom and right so that the padded size suits the network's strides;
* take the output from its top-left corner (networks of unpadded convolutions shrink by
  exactly the padding) or, for networks that keep their size (RealSR), skip
  ``prepadding * scale`` pixels;
* Real-CUGAN x4 only: add the input, upscaled by nearest neighbour, to the output.

`Conventions` holds those facts; `wrap_forward` applies them to any array forward (ONNX
Runtime, the ncnn runtime) and `ncnn_loader.ConventionModule` to a PyTorch network, so
every backend sees the same image-in, image-out model. (NumPy only: the ncnn and ONNX
Runtime backends run without PyTorch.)

Alpha is not part of this: srgan's upscaler handles it for every model (``--alpha-mode``;
the reference programs upscale alpha with bicubic, srgan's ``bicubic`` mode).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

__all__ = [
    "CONVENTIONS_KEY",
    "Conventions",
    "conventions_from_json",
    "conventions_to_json",
    "pad_indices",
    "wrap_forward",
]

CONVENTIONS_KEY = "srgan.conventions"  # in the metadata of a converted family's ONNX file

Border = Literal["reflect", "replicate"]


def pad_indices(size: int, before: int, after: int, border: Border) -> np.ndarray:
    """Source index of every position of an axis of ``size`` grown by ``before``/``after``.

    ``reflect`` mirrors without repeating the edge (numpy's ``reflect``, ncnn's border type
    2), folding again when the padding exceeds the size; ``replicate`` repeats the edge."""
    positions = np.arange(-before, size + after)
    if border == "replicate" or size == 1:
        return np.clip(positions, 0, size - 1)
    period = 2 * (size - 1)
    folded = np.mod(positions, period)
    return np.where(folded < size, folded, period - folded)


@dataclass(frozen=True)
class Conventions:
    scale: int
    pad: int = 0  # the reference program's "prepadding", on every side
    border: Border = "replicate"
    multiple: int = 1  # the padded size is grown at the bottom/right until
    remainder: int = 0  # (size + extra) % multiple == remainder
    crop: int = 0  # output pixels to skip at the top and left
    residual: bool = False  # add the nearest-upscaled input (Real-CUGAN x4)

    def extra(self, size: int) -> int:
        """Pixels added at the bottom/right of an axis of ``size`` for alignment."""
        return (self.remainder - size) % self.multiple

    def axis_indices(self, size: int) -> np.ndarray:
        return pad_indices(size, self.pad, self.pad + self.extra(size), self.border)

    @property
    def is_identity(self) -> bool:
        return self.pad == 0 and self.multiple == 1 and self.crop == 0 and not self.residual

    def pad_array(self, x: np.ndarray) -> np.ndarray:
        """[N, C, h, w] float32 -> the network's input."""
        if self.is_identity:
            return x
        rows, cols = self.axis_indices(x.shape[2]), self.axis_indices(x.shape[3])
        return np.ascontiguousarray(x[:, :, rows][:, :, :, cols])

    def finish_array(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The network's output for padded ``x`` -> the [N, C, h*s, w*s] image."""
        s, (h, w) = self.scale, x.shape[2:]
        out = y[:, :, self.crop : self.crop + h * s, self.crop : self.crop + w * s]
        if self.residual:
            out = out + np.repeat(np.repeat(x, s, axis=2), s, axis=3)
        return np.ascontiguousarray(out, dtype=np.float32)


def wrap_forward(
    conventions: Conventions, forward: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    """An array forward of the bare network -> the forward of the whole model."""
    if conventions.is_identity:
        return forward

    def run(x: np.ndarray) -> np.ndarray:
        return conventions.finish_array(np.asarray(forward(conventions.pad_array(x))), x)

    return run


def conventions_to_json(conventions: Conventions) -> str:
    return json.dumps(asdict(conventions), sort_keys=True)


def conventions_from_json(text: str) -> Conventions:
    """The conventions a converted file records; ValueError when they are not plausible."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    fields = {
        "scale": range(1, 9),
        "pad": range(0, 65),
        "multiple": range(1, 65),
        "remainder": range(0, 64),
        "crop": range(0, 513),
    }
    values: dict[str, object] = {}
    for name, allowed in fields.items():
        value = raw.get(name, 0 if name != "multiple" else 1)
        if type(value) is not int or value not in allowed:
            raise ValueError(f"{name} {value!r}")
        values[name] = value
    border, residual = raw.get("border", "replicate"), raw.get("residual", False)
    if border not in ("reflect", "replicate") or type(residual) is not bool:
        raise ValueError("border or residual")
    if set(raw) - {*fields, "border", "residual"}:
        raise ValueError("unknown keys")
    return Conventions(border=border, residual=residual, **values)  # type: ignore[arg-type]
