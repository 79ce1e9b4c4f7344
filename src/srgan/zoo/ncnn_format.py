"""Read ncnn models (text ``.param`` + ``.bin``) and convert Real-ESRGAN ones to PyTorch.

Format facts this module relies on (ncnn docs: "param and model file structure",
"operators", and ``ModelBinFromDataReader::load``):

* ``.param`` text: the magic ``7767517``, then ``<layer count> <blob count>``, then one
  layer per line: ``type name n_in n_out in_blobs... out_blobs... key=value...``.
  A key ``k <= -23300`` marks an array parameter with id ``-k - 23300`` and value
  ``count,v1,v2,...``; a value with ``.``/``e`` is a float, otherwise an int.
* ``.bin``: the weights of every layer that has any, concatenated in ``.param`` order
  with no header. A weight loaded with "type 0" (e.g. ``Convolution.weight_data``) starts
  with a 4-byte little-endian tag: ``0x01306B47`` fp16 (padded to 4 bytes), ``0x000D4B38``
  int8, ``0x0002C056`` fp32, ``0`` fp32, any other non-zero value a 256-entry fp32 table
  followed by uint8 indices (padded to 4 bytes). A weight loaded with "type 1" (biases,
  PReLU slopes) is raw fp32 with no tag.
* ``Convolution`` weights are ``[num_output, num_input, kernel_h, kernel_w]`` in C order,
  the same layout as ``torch.nn.Conv2d.weight``.

`parse_param` and `read_ncnn` accept every layer type of `srgan.zoo.ncnn_layers` (the
interpreter's table), checking parameter ids, blob order (no cycles, no blob read before it
is written) and the weight sizes against the file before anything is allocated. The
converters below turn the RRDBNet and SRVGGNetCompact graph shapes into PyTorch state dicts
(a faster module than the interpreter); anything else raises
:class:`srgan.errors.BadInputError` with a one-line message naming the file.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import numpy as np
import torch
from torch import nn

from srgan.errors import BadInputError
from srgan.zoo.architectures import BY_NAME

__all__ = [
    "FP16_TAG",
    "FP32_SCALED_TAG",
    "INT8_TAG",
    "PARAM_MAGIC",
    "BinReader",
    "NcnnLayer",
    "NcnnParam",
    "ParamValue",
    "build_module",
    "match_architecture",
    "ncnn_to_state_dict",
    "parse_param",
    "read_ncnn",
]

PARAM_MAGIC = 7767517
FP16_TAG = 0x01306B47
INT8_TAG = 0x000D4B38
FP32_SCALED_TAG = 0x0002C056

_ARRAY_KEY_BASE = -23300
# Limits far above any real model (RealSR: 117 KB, 999 layers, 1782 blobs), so that a
# crafted header cannot make the reader allocate or loop without bound.
MAX_PARAM_BYTES = 16 << 20
MAX_LAYERS = 100_000
MAX_BLOBS_PER_LAYER = 4096
MAX_ARRAY_VALUES = 65536
MAX_BIN_BYTES = 2 << 30

ParamValue: TypeAlias = int | float | list[int | float]
StrPath: TypeAlias = str | Path


_FLOAT_TOL = 1e-6


@dataclass
class NcnnLayer:
    """One layer line of a ``.param`` file, plus its weights once :func:`read_ncnn` ran."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, ParamValue]
    line: int
    index: int
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    def int_param(self, key: int, default: int) -> int:
        value = self.params.get(key, default)
        if not isinstance(value, int):
            raise ValueError(f"param {key} of layer {self.name!r} should be an int, not {value!r}")
        return value

    def float_param(self, key: int, default: float) -> float:
        value = self.params.get(key, default)
        if isinstance(value, list):
            raise ValueError(f"param {key} of layer {self.name!r} should be a number")
        return float(value)

    def array_param(self, key: int) -> list[float]:
        value = self.params.get(key, [])
        if not isinstance(value, list):
            raise ValueError(f"param {key} of layer {self.name!r} should be an array")
        return [float(v) for v in value]

    def int_array_param(self, key: int) -> list[int]:
        value = self.params.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise ValueError(f"param {key} of layer {self.name!r} should be an int array")
        return [int(v) for v in value]


@dataclass
class NcnnParam:
    """A parsed ``.param`` file."""

    layer_count: int
    blob_count: int
    layers: list[NcnnLayer]


# --------------------------------------------------------------------------- .param


def _parse_scalar(token: str) -> int | float:
    # ncnn's rule: a value with a '.', 'e' or 'E' is a float, anything else an int.
    if any(c in token for c in ".eE") or token.lower() in ("inf", "-inf", "nan"):
        value = float(token)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"value {token!r} is not a finite number")
        return value
    value = int(token)
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"value {token} does not fit ncnn's 32-bit int")
    return value


def _parse_layer(tokens: list[str], line: int, index: int) -> NcnnLayer:
    if len(tokens) < 4:
        raise ValueError("a layer line needs: type name input_count output_count")
    ltype, name = tokens[0], tokens[1]
    n_in, n_out = int(tokens[2]), int(tokens[3])
    if n_in < 0 or n_out < 0:
        raise ValueError("negative blob count")
    if n_in > MAX_BLOBS_PER_LAYER or n_out > MAX_BLOBS_PER_LAYER:
        raise ValueError(f"layer {name!r} declares {max(n_in, n_out)} blobs (at most 4096)")
    blobs_end = 4 + n_in + n_out
    if len(tokens) < blobs_end:
        raise ValueError(f"layer {name!r} lists fewer than {n_in + n_out} blob names")
    inputs = tuple(tokens[4 : 4 + n_in])
    outputs = tuple(tokens[4 + n_in : blobs_end])
    if len(set(outputs)) != len(outputs):
        raise ValueError(f"layer {name!r} writes the same blob twice")
    params: dict[int, ParamValue] = {}
    for item in tokens[blobs_end:]:
        key_text, sep, value_text = item.partition("=")
        if not sep:
            raise ValueError(f"layer {name!r}: parameter {item!r} is not key=value")
        key = int(key_text)
        if key <= _ARRAY_KEY_BASE:
            key = _ARRAY_KEY_BASE - key
            parts = value_text.split(",")
            count = int(parts[0])
            if not 0 <= count <= MAX_ARRAY_VALUES:
                raise ValueError(f"layer {name!r}: array parameter {key} declares {count} values")
            values = [_parse_scalar(v) for v in parts[1:]]
            if count != len(values):
                raise ValueError(f"layer {name!r}: array parameter {item!r} has a wrong count")
            value: ParamValue = values
        elif key < 0:
            raise ValueError(f"layer {name!r}: parameter id {key} is negative")
        else:
            try:
                value = _parse_scalar(value_text)
            except ValueError:
                raise ValueError(
                    f"layer {name!r}: parameter {key}={value_text!r} is not a number "
                    "(string parameters are not supported)"
                ) from None
        if key in params:
            raise ValueError(f"layer {name!r}: parameter {key} given twice")
        params[key] = value
    return NcnnLayer(ltype, name, inputs, outputs, params, line, index)


def _check_blob_order(path: Path, layers: list[NcnnLayer]) -> None:
    """Every blob is written by one layer and read only by later ones: the graph is acyclic
    and in execution order (ncnn converters write it so)."""
    producer: dict[str, NcnnLayer] = {}
    for layer in layers:
        for blob in layer.outputs:
            if blob in producer:
                first = producer[blob]
                raise BadInputError(
                    f"{path}: line {layer.line}: blob {blob!r} is written by layer "
                    f"{first.name!r} and again by layer {layer.name!r}"
                )
            producer[blob] = layer
    for layer in layers:
        for blob in layer.inputs:
            source = producer.get(blob)
            if source is None:
                raise BadInputError(
                    f"{path}: line {layer.line}: layer {layer.name!r} ({layer.type}) reads "
                    f"blob {blob!r}, which no layer writes"
                )
            if source is layer:
                raise BadInputError(
                    f"{path}: line {layer.line}: layer {layer.name!r} ({layer.type}) reads its "
                    f"own output blob {blob!r} (a cycle)"
                )
            if source.index > layer.index:
                raise BadInputError(
                    f"{path}: line {layer.line}: layer {layer.name!r} ({layer.type}) reads "
                    f"blob {blob!r} before layer {source.name!r} (line {source.line}) writes "
                    "it (a cycle, or layers out of order)"
                )


def parse_param(param_path: StrPath) -> NcnnParam:
    """Parse a text ``.param`` file; raise :class:`BadInputError` if it is not one.

    Checks the structure only (blob order, counts); `read_ncnn` also checks each layer's
    type and parameters."""
    path = Path(param_path)
    try:
        if not path.is_file():
            raise BadInputError(f"{path}: not a regular file (an ncnn .param file is expected)")
        if path.stat().st_size > MAX_PARAM_BYTES:
            raise BadInputError(f"{path}: {path.stat().st_size} bytes is too large for a .param")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ncnn param file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInputError(
            f"{path}: not a text ncnn .param file (binary .param.bin is not supported)"
        ) from None
    lines = [(no, ln.split()) for no, ln in enumerate(text.splitlines(), start=1)]
    lines = [(no, toks) for no, toks in lines if toks]
    if not lines or lines[0][1] != [str(PARAM_MAGIC)]:
        raise BadInputError(f"{path}: not an ncnn .param file (magic {PARAM_MAGIC} missing)")
    if len(lines) < 2 or len(lines[1][1]) != 2:
        raise BadInputError(f"{path}: line 2 should be '<layer count> <blob count>'")
    try:
        layer_count, blob_count = (int(t) for t in lines[1][1])
    except ValueError:
        raise BadInputError(f"{path}: line 2 should be '<layer count> <blob count>'") from None
    if not 0 < layer_count <= MAX_LAYERS or not 0 < blob_count <= MAX_LAYERS * 4:
        raise BadInputError(
            f"{path}: header declares {layer_count} layers and {blob_count} blobs "
            f"(at most {MAX_LAYERS} layers)"
        )
    if len(lines) - 2 != layer_count:
        raise BadInputError(
            f"{path}: header declares {layer_count} layers but the file has {len(lines) - 2}"
        )
    layers: list[NcnnLayer] = []
    names: set[str] = set()
    blobs: set[str] = set()
    for no, tokens in lines[2:]:
        try:
            layer = _parse_layer(tokens, no, len(layers))
        except ValueError as exc:
            raise BadInputError(f"{path}: line {no}: {exc}") from None
        if layer.name in names:
            raise BadInputError(f"{path}: line {no}: duplicate layer name {layer.name!r}")
        names.add(layer.name)
        blobs.update(layer.inputs)
        blobs.update(layer.outputs)
        layers.append(layer)
    if len(blobs) > blob_count:
        raise BadInputError(
            f"{path}: header declares {blob_count} blobs but the layers use {len(blobs)}"
        )
    _check_blob_order(path, layers)
    return NcnnParam(layer_count, blob_count, layers)


# --------------------------------------------------------------------------- .bin


class BinReader:
    """Reads ncnn weights from ``data`` in order; every read is bounds-checked first, so a
    declared size larger than the file fails before any allocation."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, nbytes: int) -> memoryview:
        if nbytes < 0 or self.pos + nbytes > len(self.data):
            raise ValueError(
                f"file ends at byte {len(self.data)}, needed {nbytes} bytes at {self.pos} "
                "(the .bin is shorter than the weights the .param declares)"
            )
        chunk = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def raw_fp32(self, count: int) -> np.ndarray:
        """Raw float32 values (ncnn ``ModelBin::load(w, 1)``: biases, slopes, scales)."""
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)

    def tagged(self, count: int) -> np.ndarray:
        """A weight stored with a storage tag (ncnn ``ModelBin::load(w, 0)``)."""
        raw_tag = self._take(4)
        (tag,) = struct.unpack("<I", raw_tag)
        if tag == FP16_TAG:
            padded = (2 * count + 3) // 4 * 4
            half = np.frombuffer(self._take(padded), dtype="<f2")[:count]
            return half.astype(np.float32)
        if tag == INT8_TAG:
            raise ValueError("int8-quantised weights are not supported")
        if tag in (0, FP32_SCALED_TAG):
            return self.raw_fp32(count)
        # Any other non-zero tag: a 256-entry lookup table, then one uint8 index per value.
        table = np.frombuffer(self._take(256 * 4), dtype="<f4")
        padded = (count + 3) // 4 * 4
        indices = np.frombuffer(self._take(padded), dtype=np.uint8)[:count]
        values = table[indices].astype(np.float32)
        if not np.isfinite(table).all():
            raise ValueError("the lookup table holds NaN or infinity")
        return values


_BinReader = BinReader  # the name the matchers below used


def read_ncnn(param_path: StrPath, bin_path: StrPath) -> NcnnParam:
    """Parse ``.param`` and attach every layer's weights (as float32 arrays) from ``.bin``.

    Every layer type, parameter id and weight size is checked against
    `srgan.zoo.ncnn_layers`; the ``.bin`` must hold exactly the declared weights."""
    from srgan.zoo.ncnn_layers import check_layer, layer_weights, max_weight_bytes

    param = parse_param(param_path)
    bpath = Path(bin_path)
    declared = 0
    for layer in param.layers:
        try:
            check_layer(layer)
            declared += max_weight_bytes(layer)
        except ValueError as exc:
            raise BadInputError(f"{param_path}: line {layer.line}: {exc}") from None
    try:
        if not bpath.is_file():
            raise BadInputError(f"{bpath}: not a regular file (an ncnn .bin file is expected)")
        size = bpath.stat().st_size
        if size > min(declared, MAX_BIN_BYTES):
            raise BadInputError(
                f"{bpath}: {size} bytes, more than the at most {declared} bytes of weights "
                f"that {Path(param_path).name} declares; the .bin does not belong to it"
            )
        data = bpath.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{bpath}: cannot read ncnn weight file: {exc.strerror}") from None
    reader = BinReader(data)
    for layer in param.layers:
        try:
            layer.weights = layer_weights(layer, reader)
        except ValueError as exc:
            raise BadInputError(
                f"{bpath}: weights of layer {layer.name!r} ({layer.type}): {exc}"
            ) from None
    if reader.pos != len(data):
        raise BadInputError(
            f"{bpath}: {len(data) - reader.pos} bytes left over after the last layer's weights;"
            f" the .bin does not belong to {Path(param_path).name}"
        )
    return param


# --------------------------------------------------------------------------- graph matching


class _Mismatch(Exception):
    """The graph does not have the shape of the architecture being matched."""


@dataclass
class _Act:
    kind: str  # "none", "relu" (slope 0), "leaky" (slope != 0), "prelu"
    slope: float = 0.0
    layer: NcnnLayer | None = None  # a standalone ReLU / PReLU layer, if not fused


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _FLOAT_TOL * max(1.0, abs(b))


class _Graph:
    """Split-free view of an ncnn graph with helpers that match and consume layers."""

    def __init__(self, layers: Sequence[NcnnLayer]) -> None:
        self.alias: dict[str, str] = {}
        self.ops: list[NcnnLayer] = []
        self.input_blobs: list[str] = []
        for layer in layers:
            if layer.type == "Split":
                if len(layer.inputs) != 1:
                    raise _Mismatch(f"Split layer {layer.name!r} must have one input")
                root = self.canon(layer.inputs[0])
                for out in layer.outputs:
                    self.alias[out] = root
            elif layer.type == "Input":
                self.input_blobs.extend(layer.outputs)
            else:
                self.ops.append(layer)
        self.consumers: dict[str, list[NcnnLayer]] = defaultdict(list)
        for op in self.ops:
            if len(op.outputs) != 1:
                raise _Mismatch(f"layer {op.name!r} ({op.type}) must have exactly one output")
            for blob in op.inputs:
                self.consumers[self.canon(blob)].append(op)
        self.used: set[int] = set()

    def canon(self, blob: str) -> str:
        while blob in self.alias:
            blob = self.alias[blob]
        return blob

    def single_input(self) -> str:
        if len(self.input_blobs) != 1:
            raise _Mismatch(f"expected one Input blob, found {len(self.input_blobs)}")
        return self.input_blobs[0]

    def out(self, op: NcnnLayer) -> str:
        return op.outputs[0]

    def use(self, op: NcnnLayer) -> None:
        self.used.add(op.index)

    def candidates(
        self,
        ltype: str,
        inputs: Sequence[str],
        ordered: bool = True,
        check: Callable[[NcnnLayer], bool] | None = None,
    ) -> list[NcnnLayer]:
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
        check: Callable[[NcnnLayer], bool] | None = None,
        what: str = "",
    ) -> NcnnLayer:
        found = self.candidates(ltype, inputs, ordered, check)
        if len(found) != 1:
            desc = what or ltype
            problem = "no" if not found else "more than one"
            raise _Mismatch(f"{problem} {desc} layer reading blob(s) {', '.join(inputs)}")
        self.use(found[0])
        return found[0]

    # -- building blocks ---------------------------------------------------------------

    def act_of(self, conv: NcnnLayer) -> _Act:
        kind = conv.int_param(9, 0)
        if kind == 1:
            return _Act("relu")
        if kind == 2:
            params = conv.array_param(10)
            slope = params[0] if params else 0.0
            return _Act("relu" if slope == 0 else "leaky", slope)
        if kind != 0:
            raise _Mismatch(f"convolution {conv.name!r} has unsupported activation_type {kind}")
        after = self.consumers.get(self.out(conv), [])
        if len(after) == 1 and after[0].type == "ReLU":
            slope = after[0].float_param(0, 0.0)
            return _Act("relu" if slope == 0 else "leaky", slope, after[0])
        if len(after) == 1 and after[0].type == "PReLU":
            return _Act("prelu", 0.0, after[0])
        return _Act("none")

    def conv(self, blob: str, act: str, slope: float = 0.0) -> tuple[NcnnLayer, str, _Act]:
        """Consume a 3x3/s1/p1 convolution of ``blob`` whose activation is ``act``.

        ``act`` is "none", "leaky" (with ``slope``) or "any"; returns the layer, the blob
        after its activation, and the activation found.
        """

        def wanted(op: NcnnLayer) -> bool:
            found = self.act_of(op)
            if act == "any":
                return True
            if act == "none":
                return found.kind == "none"
            return found.kind == act and _close(found.slope, slope)

        desc = {"none": "Convolution (no activation)", "any": "Convolution"}.get(
            act, f"Convolution + LeakyReLU({slope:g})"
        )
        op = self.find("Convolution", [blob], check=wanted, what=desc)
        _check_conv_geometry(op)
        found = self.act_of(op)
        out = self.out(op)
        if found.layer is not None:
            self.use(found.layer)
            out = self.out(found.layer)
        return op, out, found

    def has_conv(self, blob: str, act: str, slope: float = 0.0) -> bool:
        def wanted(op: NcnnLayer) -> bool:
            found = self.act_of(op)
            return found.kind == act and _close(found.slope, slope)

        return bool(self.candidates("Convolution", [blob], check=wanted))

    def concat(self, blobs: Sequence[str]) -> str:
        op = self.find("Concat", blobs, check=lambda op: op.int_param(0, 0) == 0)
        return self.out(op)

    def scaled_add(self, a: str, b: str, scale: float) -> str:
        """Consume the layers computing ``a * scale + b``; return the result blob."""
        ca, cb = self.canon(a), self.canon(b)

        def eltwise_ok(op: NcnnLayer) -> bool:
            if op.int_param(0, 0) != 1:
                return False
            coeffs = op.array_param(1) or [1.0, 1.0]
            if len(coeffs) != 2:
                return False
            first = self.canon(op.inputs[0])
            want = (scale, 1.0) if first == ca else (1.0, scale)
            return all(_close(c, w) for c, w in zip(coeffs, want, strict=True))

        if ca == cb:
            raise _Mismatch(f"residual of blob {a} with itself")
        found = self.candidates("Eltwise", [a, b], ordered=False, check=eltwise_ok)
        if len(found) == 1:
            self.use(found[0])
            return self.out(found[0])

        def is_add(op: NcnnLayer) -> bool:
            return op.int_param(0, 0) == 0 and op.int_param(1, 0) == 0

        scaled = a
        if not _close(scale, 1.0):

            def is_mul(op: NcnnLayer) -> bool:
                return (
                    op.int_param(0, 0) == 2
                    and op.int_param(1, 0) == 1
                    and _close(op.float_param(2, 0.0), scale)
                )

            mul = self.candidates("BinaryOp", [a], check=is_mul)
            if len(mul) != 1:
                raise _Mismatch(f"no layer computing {a} * {scale:g} + {b}")
            scaled = self.out(mul[0])
            self.use(mul[0])
        op = self.find(
            "BinaryOp", [scaled, b], ordered=False, check=is_add, what="BinaryOp ADD / Eltwise SUM"
        )
        return self.out(op)

    def upsample_nearest(self, blob: str, factor: int) -> str:
        def ok(op: NcnnLayer) -> bool:
            return (
                op.int_param(0, 0) == 1
                and _close(op.float_param(1, 1.0), factor)
                and _close(op.float_param(2, 1.0), factor)
                and op.int_param(3, 0) == 0
                and op.int_param(4, 0) == 0
                and op.int_param(5, 0) == 0
            )

        op = self.find("Interp", [blob], check=ok, what=f"nearest x{factor} Interp")
        return self.out(op)

    def finish(self, final: str, arch: str) -> None:
        for op in self.ops:
            if op.index not in self.used:
                raise _Mismatch(f"layer {op.name!r} ({op.type}) is not part of {arch}")
        if self.consumers.get(self.canon(final)):
            raise _Mismatch(f"blob {final} should be the network output")


def _check_conv_geometry(op: NcnnLayer) -> None:
    kw = op.int_param(1, 0)
    kh = op.int_param(11, kw)
    dil = (op.int_param(2, 1), op.int_param(12, op.int_param(2, 1)))
    stride = (op.int_param(3, 1), op.int_param(13, op.int_param(3, 1)))
    left = op.int_param(4, 0)
    top = op.int_param(14, left)
    pads = (left, top, op.int_param(15, left), op.int_param(16, top))
    same_pad = all(p in (-233, -234) for p in pads)  # SAME padding == 1 for 3x3/s1
    if (kw, kh) != (3, 3) or dil != (1, 1) or stride != (1, 1):
        raise _Mismatch(f"convolution {op.name!r} is not 3x3, stride 1, dilation 1")
    if not (same_pad or pads == (1, 1, 1, 1)) or op.float_param(18, 0.0) != 0.0:
        raise _Mismatch(f"convolution {op.name!r} is not zero-padded by 1")
    if not op.int_param(5, 0):
        raise _Mismatch(f"convolution {op.name!r} has no bias")


def _conv_tensors(op: NcnnLayer) -> tuple[np.ndarray, np.ndarray]:
    out_ch = op.int_param(0, 0)
    w = op.weights["weight"]
    per_out = out_ch * 9
    if w.size % per_out:
        raise _Mismatch(f"convolution {op.name!r}: weight_data_size {w.size} is not a multiple")
    return w.reshape(out_ch, w.size // per_out, 3, 3), op.weights["bias"]


def _depth_order(channels: int, factor: int) -> np.ndarray:
    """Index map from PyTorch's channel order ``c, dy, dx`` to ncnn mode-1 ``dy, dx, c``.

    ``result[torch_index] == ncnn_index`` for pixel (un)shuffle with ``channels`` image
    channels and block size ``factor``.
    """
    c, dy, dx = np.meshgrid(
        np.arange(channels), np.arange(factor), np.arange(factor), indexing="ij"
    )
    return ((dy * factor + dx) * channels + c).reshape(-1)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _match_rrdbnet(g: _Graph) -> tuple[dict[str, int | str], dict[str, torch.Tensor]]:
    sd: dict[str, torch.Tensor] = {}

    def put(key: str, op: NcnnLayer) -> None:
        w, b = _conv_tensors(op)
        sd[f"{key}.weight"], sd[f"{key}.bias"] = _tensor(w), _tensor(b)

    x = g.single_input()
    scale = 4
    unshuffle_mode = 0
    unshuffle = 1
    reorgs = g.candidates("Reorg", [x])
    if reorgs:
        reorg = reorgs[0]
        g.use(reorg)
        unshuffle = reorg.int_param(0, 1)
        unshuffle_mode = reorg.int_param(1, 0)
        if unshuffle not in (2, 4) or unshuffle_mode not in (0, 1):
            raise _Mismatch(f"Reorg {reorg.name!r} must have stride 2 or 4, mode 0 or 1")
        scale = 4 // unshuffle
        x = g.out(reorg)

    first, feat, _ = g.conv(x, "none")
    w, b = _conv_tensors(first)
    if w.shape[1] % (unshuffle * unshuffle):
        raise _Mismatch("conv_first input channels do not fit the pixel unshuffle")
    num_in_ch = w.shape[1] // (unshuffle * unshuffle)
    if unshuffle_mode == 1:
        w = w[:, _depth_order(num_in_ch, unshuffle)]
    sd["conv_first.weight"], sd["conv_first.bias"] = _tensor(w), _tensor(b)

    h = feat
    num_block = 0
    num_grow_ch = 32
    while g.has_conv(h, "leaky", 0.2):
        block_in = h
        for r in (1, 2, 3):
            prefix = f"body.{num_block}.rdb{r}"
            rdb_in = h
            xs = [h]
            for i in (1, 2, 3, 4):
                src = h if i == 1 else g.concat(xs)
                op, y, _ = g.conv(src, "leaky", 0.2)
                put(f"{prefix}.conv{i}", op)
                xs.append(y)
            op, y, _ = g.conv(g.concat(xs), "none")
            put(f"{prefix}.conv5", op)
            h = g.scaled_add(y, rdb_in, 0.2)
        num_grow_ch = int(sd[f"body.{num_block}.rdb1.conv1.weight"].shape[0])
        h = g.scaled_add(h, block_in, 0.2)
        num_block += 1

    op, trunk, _ = g.conv(h, "none")
    put("conv_body", op)
    feat = g.scaled_add(trunk, feat, 1.0)
    op, feat, _ = g.conv(g.upsample_nearest(feat, 2), "leaky", 0.2)
    put("conv_up1", op)
    op, feat, _ = g.conv(g.upsample_nearest(feat, 2), "leaky", 0.2)
    put("conv_up2", op)
    op, feat, _ = g.conv(feat, "leaky", 0.2)
    put("conv_hr", op)
    last, out, _ = g.conv(feat, "none")
    put("conv_last", last)
    g.finish(out, "RRDBNet")
    hp: dict[str, int | str] = {
        "num_in_ch": num_in_ch,
        "num_out_ch": int(sd["conv_last.weight"].shape[0]),
        "scale": scale,
        "num_feat": int(sd["conv_first.weight"].shape[0]),
        "num_block": num_block,
        "num_grow_ch": num_grow_ch,
    }
    return hp, sd


def _act_type(act: _Act, name: str) -> str:
    if act.kind == "prelu":
        return "prelu"
    if act.kind == "relu":
        return "relu"
    if act.kind == "leaky" and _close(act.slope, 0.1):
        return "leakyrelu"
    raise _Mismatch(f"activation after {name!r} is not ReLU, LeakyReLU(0.1) or PReLU")


def _match_srvgg(g: _Graph) -> tuple[dict[str, int | str], dict[str, torch.Tensor]]:
    sd: dict[str, torch.Tensor] = {}
    x = g.single_input()
    op, h, act = g.conv(x, "any")
    if act.kind == "none":
        raise _Mismatch(f"no activation after the first convolution {op.name!r}")
    act_type = _act_type(act, op.name)
    convs: list[tuple[NcnnLayer, _Act]] = [(op, act)]
    while True:
        op, h, act = g.conv(h, "any")
        convs.append((op, act))
        if act.kind == "none":
            break
        if _act_type(act, op.name) != act_type:
            raise _Mismatch(f"activation after {op.name!r} differs from the first one")
    shuffle = g.find("PixelShuffle", [h])
    factor = shuffle.int_param(0, 1)
    mode = shuffle.int_param(1, 0)
    if factor < 1 or mode not in (0, 1):
        raise _Mismatch(f"PixelShuffle {shuffle.name!r} has unsupported parameters")
    base = g.upsample_nearest(x, factor)
    out = g.scaled_add(g.out(shuffle), base, 1.0)
    g.finish(out, "SRVGGNetCompact")

    num_feat = 0
    for i, (op, act) in enumerate(convs):
        w, b = _conv_tensors(op)
        if i == 0:
            num_feat = w.shape[0]
        if i == len(convs) - 1:
            if w.shape[0] % (factor * factor):
                raise _Mismatch(f"last convolution {op.name!r} does not fit the PixelShuffle")
            if mode == 1:
                order = _depth_order(w.shape[0] // (factor * factor), factor)
                w, b = w[order], b[order]
        sd[f"body.{2 * i}.weight"], sd[f"body.{2 * i}.bias"] = _tensor(w), _tensor(b)
        if act.kind == "prelu" and act.layer is not None:
            slope = act.layer.weights["slope"]
            if slope.size == 1:
                slope = np.repeat(slope, num_feat)
            sd[f"body.{2 * i + 1}.weight"] = _tensor(slope)
    last_out = int(sd[f"body.{2 * (len(convs) - 1)}.weight"].shape[0])
    hp: dict[str, int | str] = {
        "num_in_ch": int(sd["body.0.weight"].shape[1]),
        "num_out_ch": last_out // (factor * factor),
        "num_feat": num_feat,
        "num_conv": len(convs) - 2,
        "upscale": factor,
        "act_type": act_type,
    }
    return hp, sd


def build_module(arch: str, hparams: dict[str, int | str]) -> nn.Module:
    """Instantiate ``arch`` ('RRDBNet' or 'SRVGGNetCompact') with ``hparams``."""
    if arch not in BY_NAME:
        raise ValueError(f"unknown architecture {arch!r}")
    return BY_NAME[arch].build(**hparams)


def _check_shapes(arch: str, hp: dict[str, int | str], sd: dict[str, torch.Tensor]) -> None:
    try:
        with torch.device("meta"):
            expected = build_module(arch, hp).state_dict()
    except ValueError as exc:
        raise _Mismatch(str(exc)) from None
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected))
    if missing or extra:
        raise _Mismatch(f"state dict keys differ (missing {missing[:3]}, unexpected {extra[:3]})")
    for key, tensor in sd.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise _Mismatch(
                f"{key} has shape {tuple(tensor.shape)}, expected {tuple(expected[key].shape)}"
            )


Converted = tuple[str, dict[str, int | str], dict[str, torch.Tensor]]


def match_architecture(param: NcnnParam) -> Converted | str:
    """``(arch, hyper-parameters, state dict)`` if the graph is an RRDBNet or an
    SRVGGNetCompact, else why it is neither."""
    failures: list[tuple[int, str, str]] = []
    matchers = (("RRDBNet", _match_rrdbnet), ("SRVGGNetCompact", _match_srvgg))
    for arch, matcher in matchers:
        graph: _Graph | None = None
        try:
            graph = _Graph(param.layers)
            hp, sd = matcher(graph)
            _check_shapes(arch, hp, sd)
        except (_Mismatch, ValueError) as exc:
            failures.append((len(graph.used) if graph else 0, arch, str(exc)))
            continue
        return arch, hp, sd
    _, arch, reason = max(failures, key=lambda f: f[0])
    return f"graph is neither RRDBNet nor SRVGGNetCompact (as {arch}: {reason})"


def ncnn_to_state_dict(param_path: StrPath, bin_path: StrPath) -> Converted:
    """Convert an ncnn Real-ESRGAN model to ``(arch, hyper-parameters, state dict)``.

    ``arch`` is ``'RRDBNet'`` or ``'SRVGGNetCompact'``; the hyper-parameters are keyword
    arguments of that class's constructor, recognised from the graph; the state dict holds
    float32 tensors that load into it with ``strict=True``. Raises
    :class:`BadInputError` when the files are unreadable, use an unsupported layer type or
    storage, or describe a graph that is neither architecture.
    """
    found = match_architecture(read_ncnn(param_path, bin_path))
    if isinstance(found, str):
        raise BadInputError(f"{param_path}: {found}")
    return found
