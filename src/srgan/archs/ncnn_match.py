"""Recognise a network in an ncnn graph: the toolkit each architecture's ncnn matcher uses.

An architecture whose ncnn files have a recognisable shape (RRDBNet, SRVGGNetCompact) puts
a matcher in its `ArchSpec` (`ncnn_match`): a function that walks a `NcnnGraph` from its
input blob, consumes every layer it expects (`conv`, `concat`, `scaled_add`,
`upsample_nearest`, ...), and returns the hyper-parameters and the PyTorch state dict, or
raises `Mismatch` saying which layer did not fit. `srgan.zoo.ncnn_format` runs the matchers
of all specs; a graph none of them matches goes to the general interpreter.

Layers are duck-typed (`GraphLayer`: what `srgan.zoo.ncnn_format.NcnnLayer` has), so this
module imports only numpy and torch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

__all__ = [
    "Act",
    "GraphLayer",
    "Mismatch",
    "NcnnGraph",
    "NcnnMatch",
    "close",
    "conv_tensors",
    "depth_order",
    "to_tensor",
]

_FLOAT_TOL = 1e-6


class GraphLayer(Protocol):
    """One ncnn layer with its weights, as `srgan.zoo.ncnn_format.read_ncnn` gives them."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> tuple[str, ...]: ...
    @property
    def outputs(self) -> tuple[str, ...]: ...
    @property
    def index(self) -> int: ...
    @property
    def weights(self) -> Mapping[str, np.ndarray]: ...

    def int_param(self, key: int, default: int) -> int: ...
    def float_param(self, key: int, default: float) -> float: ...
    def array_param(self, key: int) -> list[float]: ...


#: What a matcher returns: the constructor's hyper-parameters and the state dict.
NcnnMatch = tuple[dict[str, int | str], dict[str, torch.Tensor]]


class Mismatch(Exception):
    """The graph does not have the shape of the architecture being matched."""


@dataclass
class Act:
    kind: str  # "none", "relu" (slope 0), "leaky" (slope != 0), "prelu"
    slope: float = 0.0
    layer: GraphLayer | None = None  # a standalone ReLU / PReLU layer, if not fused


def close(a: float, b: float) -> bool:
    return abs(a - b) <= _FLOAT_TOL * max(1.0, abs(b))


class NcnnGraph:
    """Split-free view of an ncnn graph with helpers that match and consume layers."""

    def __init__(self, layers: Sequence[GraphLayer]) -> None:
        self.alias: dict[str, str] = {}
        self.ops: list[GraphLayer] = []
        self.input_blobs: list[str] = []
        for layer in layers:
            if layer.type == "Split":
                if len(layer.inputs) != 1:
                    raise Mismatch(f"Split layer {layer.name!r} must have one input")
                root = self.canon(layer.inputs[0])
                for out in layer.outputs:
                    self.alias[out] = root
            elif layer.type == "Input":
                self.input_blobs.extend(layer.outputs)
            else:
                self.ops.append(layer)
        self.consumers: dict[str, list[GraphLayer]] = defaultdict(list)
        for op in self.ops:
            if len(op.outputs) != 1:
                raise Mismatch(f"layer {op.name!r} ({op.type}) must have exactly one output")
            for blob in op.inputs:
                self.consumers[self.canon(blob)].append(op)
        self.used: set[int] = set()

    def canon(self, blob: str) -> str:
        while blob in self.alias:
            blob = self.alias[blob]
        return blob

    def single_input(self) -> str:
        if len(self.input_blobs) != 1:
            raise Mismatch(f"expected one Input blob, found {len(self.input_blobs)}")
        return self.input_blobs[0]

    def out(self, op: GraphLayer) -> str:
        return op.outputs[0]

    def use(self, op: GraphLayer) -> None:
        self.used.add(op.index)

    def candidates(
        self,
        ltype: str,
        inputs: Sequence[str],
        ordered: bool = True,
        check: Callable[[GraphLayer], bool] | None = None,
    ) -> list[GraphLayer]:
        want = [self.canon(b) for b in inputs]
        found = []
        for op in self.consumers.get(want[0], []):
            if op.type != ltype or op.index in self.used:
                continue
            have = [self.canon(b) for b in op.inputs]
            same = have == want if ordered else sorted(have) == sorted(want)
            if same and (check is None or check(op)):
                found.append(op)
        return found

    def find(
        self,
        ltype: str,
        inputs: Sequence[str],
        ordered: bool = True,
        check: Callable[[GraphLayer], bool] | None = None,
        what: str = "",
    ) -> GraphLayer:
        found = self.candidates(ltype, inputs, ordered, check)
        if len(found) != 1:
            desc = what or ltype
            problem = "no" if not found else "more than one"
            raise Mismatch(f"{problem} {desc} layer reading blob(s) {', '.join(inputs)}")
        self.use(found[0])
        return found[0]

    # -- building blocks ---------------------------------------------------------------

    def act_of(self, conv: GraphLayer) -> Act:
        kind = conv.int_param(9, 0)
        if kind == 1:
            return Act("relu")
        if kind == 2:
            params = conv.array_param(10)
            slope = params[0] if params else 0.0
            return Act("relu" if slope == 0 else "leaky", slope)
        if kind != 0:
            raise Mismatch(f"convolution {conv.name!r} has unsupported activation_type {kind}")
        after = self.consumers.get(self.out(conv), [])
        if len(after) == 1 and after[0].type == "ReLU":
            slope = after[0].float_param(0, 0.0)
            return Act("relu" if slope == 0 else "leaky", slope, after[0])
        if len(after) == 1 and after[0].type == "PReLU":
            return Act("prelu", 0.0, after[0])
        return Act("none")

    def conv(self, blob: str, act: str, slope: float = 0.0) -> tuple[GraphLayer, str, Act]:
        """Consume a 3x3/s1/p1 convolution of ``blob`` whose activation is ``act``.

        ``act`` is "none", "leaky" (with ``slope``) or "any"; returns the layer, the blob
        after its activation, and the activation found.
        """

        def wanted(op: GraphLayer) -> bool:
            found = self.act_of(op)
            if act == "any":
                return True
            if act == "none":
                return found.kind == "none"
            return found.kind == act and close(found.slope, slope)

        desc = {"none": "Convolution (no activation)", "any": "Convolution"}.get(
            act, f"Convolution + LeakyReLU({slope:g})"
        )
        op = self.find("Convolution", [blob], check=wanted, what=desc)
        check_conv_geometry(op)
        found = self.act_of(op)
        out = self.out(op)
        if found.layer is not None:
            self.use(found.layer)
            out = self.out(found.layer)
        return op, out, found

    def has_conv(self, blob: str, act: str, slope: float = 0.0) -> bool:
        def wanted(op: GraphLayer) -> bool:
            found = self.act_of(op)
            return found.kind == act and close(found.slope, slope)

        return bool(self.candidates("Convolution", [blob], check=wanted))

    def concat(self, blobs: Sequence[str]) -> str:
        op = self.find("Concat", blobs, check=lambda op: op.int_param(0, 0) == 0)
        return self.out(op)

    def scaled_add(self, a: str, b: str, scale: float) -> str:
        """Consume the layers computing ``a * scale + b``; return the result blob."""
        ca, cb = self.canon(a), self.canon(b)

        def eltwise_ok(op: GraphLayer) -> bool:
            if op.int_param(0, 0) != 1:
                return False
            coeffs = op.array_param(1) or [1.0, 1.0]
            if len(coeffs) != 2:
                return False
            first = self.canon(op.inputs[0])
            want = (scale, 1.0) if first == ca else (1.0, scale)
            return all(close(c, w) for c, w in zip(coeffs, want, strict=True))

        if ca == cb:
            raise Mismatch(f"residual of blob {a} with itself")
        found = self.candidates("Eltwise", [a, b], ordered=False, check=eltwise_ok)
        if len(found) == 1:
            self.use(found[0])
            return self.out(found[0])

        def is_add(op: GraphLayer) -> bool:
            return op.int_param(0, 0) == 0 and op.int_param(1, 0) == 0

        scaled = a
        if not close(scale, 1.0):

            def is_mul(op: GraphLayer) -> bool:
                return (
                    op.int_param(0, 0) == 2
                    and op.int_param(1, 0) == 1
                    and close(op.float_param(2, 0.0), scale)
                )

            mul = self.candidates("BinaryOp", [a], check=is_mul)
            if len(mul) != 1:
                raise Mismatch(f"no layer computing {a} * {scale:g} + {b}")
            scaled = self.out(mul[0])
            self.use(mul[0])
        op = self.find(
            "BinaryOp", [scaled, b], ordered=False, check=is_add, what="BinaryOp ADD / Eltwise SUM"
        )
        return self.out(op)

    def upsample_nearest(self, blob: str, factor: int) -> str:
        def ok(op: GraphLayer) -> bool:
            return (
                op.int_param(0, 0) == 1
                and close(op.float_param(1, 1.0), factor)
                and close(op.float_param(2, 1.0), factor)
                and op.int_param(3, 0) == 0
                and op.int_param(4, 0) == 0
                and op.int_param(5, 0) == 0
            )

        op = self.find("Interp", [blob], check=ok, what=f"nearest x{factor} Interp")
        return self.out(op)

    def finish(self, final: str, arch: str) -> None:
        for op in self.ops:
            if op.index not in self.used:
                raise Mismatch(f"layer {op.name!r} ({op.type}) is not part of {arch}")
        if self.consumers.get(self.canon(final)):
            raise Mismatch(f"blob {final} should be the network output")


def check_conv_geometry(op: GraphLayer) -> None:
    kw = op.int_param(1, 0)
    kh = op.int_param(11, kw)
    dil = (op.int_param(2, 1), op.int_param(12, op.int_param(2, 1)))
    stride = (op.int_param(3, 1), op.int_param(13, op.int_param(3, 1)))
    left = op.int_param(4, 0)
    top = op.int_param(14, left)
    pads = (left, top, op.int_param(15, left), op.int_param(16, top))
    same_pad = all(p in (-233, -234) for p in pads)  # SAME padding == 1 for 3x3/s1
    if (kw, kh) != (3, 3) or dil != (1, 1) or stride != (1, 1):
        raise Mismatch(f"convolution {op.name!r} is not 3x3, stride 1, dilation 1")
    if not (same_pad or pads == (1, 1, 1, 1)) or op.float_param(18, 0.0) != 0.0:
        raise Mismatch(f"convolution {op.name!r} is not zero-padded by 1")
    if not op.int_param(5, 0):
        raise Mismatch(f"convolution {op.name!r} has no bias")


def conv_tensors(op: GraphLayer) -> tuple[np.ndarray, np.ndarray]:
    out_ch = op.int_param(0, 0)
    w = op.weights["weight"]
    per_out = out_ch * 9
    if w.size % per_out:
        raise Mismatch(f"convolution {op.name!r}: weight_data_size {w.size} is not a multiple")
    return w.reshape(out_ch, w.size // per_out, 3, 3), op.weights["bias"]


def depth_order(channels: int, factor: int) -> np.ndarray:
    """Index map from PyTorch's channel order ``c, dy, dx`` to ncnn mode-1 ``dy, dx, c``.

    ``result[torch_index] == ncnn_index`` for pixel (un)shuffle with ``channels`` image
    channels and block size ``factor``.
    """
    c, dy, dx = np.meshgrid(
        np.arange(channels), np.arange(factor), np.arange(factor), indexing="ij"
    )
    return ((dy * factor + dx) * channels + c).reshape(-1)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
