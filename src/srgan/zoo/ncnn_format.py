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

Only what RRDBNet and SRVGGNetCompact need is understood; anything else raises
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
    "NcnnLayer",
    "NcnnParam",
    "ParamValue",
    "build_module",
    "ncnn_to_state_dict",
    "parse_param",
    "read_ncnn",
]

PARAM_MAGIC = 7767517
FP16_TAG = 0x01306B47
INT8_TAG = 0x000D4B38
FP32_SCALED_TAG = 0x0002C056

_ARRAY_KEY_BASE = -23300

ParamValue: TypeAlias = int | float | list[int | float]
StrPath: TypeAlias = str | Path

# Layer types whose weights this reader knows how to skip or read. Anything else would
# leave the .bin offset undefined, so it is rejected.
_WEIGHTLESS_TYPES = frozenset(
    {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "Reorg", "ReLU"}
)
_WEIGHTED_TYPES = frozenset({"Convolution", "PReLU", "BatchNorm"})

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


@dataclass
class NcnnParam:
    """A parsed ``.param`` file."""

    layer_count: int
    blob_count: int
    layers: list[NcnnLayer]


# --------------------------------------------------------------------------- .param


def _parse_scalar(token: str) -> int | float:
    try:
        return int(token)
    except ValueError:
        return float(token)


def _parse_layer(tokens: list[str], line: int, index: int) -> NcnnLayer:
    if len(tokens) < 4:
        raise ValueError("a layer line needs: type name input_count output_count")
    ltype, name = tokens[0], tokens[1]
    n_in, n_out = int(tokens[2]), int(tokens[3])
    if n_in < 0 or n_out < 0:
        raise ValueError("negative blob count")
    blobs_end = 4 + n_in + n_out
    if len(tokens) < blobs_end:
        raise ValueError(f"layer {name!r} lists fewer than {n_in + n_out} blob names")
    inputs = tuple(tokens[4 : 4 + n_in])
    outputs = tuple(tokens[4 + n_in : blobs_end])
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
            values = [_parse_scalar(v) for v in parts[1:]]
            if count != len(values):
                raise ValueError(f"layer {name!r}: array parameter {item!r} has a wrong count")
            value: ParamValue = values
        else:
            value = _parse_scalar(value_text)
        if key in params:
            raise ValueError(f"layer {name!r}: parameter {key} given twice")
        params[key] = value
    return NcnnLayer(ltype, name, inputs, outputs, params, line, index)


def parse_param(param_path: StrPath) -> NcnnParam:
    """Parse a text ``.param`` file; raise :class:`BadInputError` if it is not one."""
    path = Path(param_path)
    try:
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
    if len(layers) != layer_count:
        raise BadInputError(
            f"{path}: header declares {layer_count} layers but the file has {len(layers)}"
        )
    if len(blobs) > blob_count:
        raise BadInputError(
            f"{path}: header declares {blob_count} blobs but the layers use {len(blobs)}"
        )
    return NcnnParam(layer_count, blob_count, layers)


# --------------------------------------------------------------------------- .bin


class _BinReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, nbytes: int) -> bytes:
        if self.pos + nbytes > len(self.data):
            raise ValueError(
                f"file ends at byte {len(self.data)}, needed {nbytes} bytes at {self.pos}"
            )
        chunk = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def raw_fp32(self, count: int) -> np.ndarray:
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
        return table[indices].astype(np.float32)


def _read_layer_weights(layer: NcnnLayer, reader: _BinReader) -> dict[str, np.ndarray]:
    if layer.type == "Convolution":
        if layer.int_param(8, 0) != 0:
            raise ValueError("int8 convolution (int8_scale_term) is not supported")
        if layer.int_param(19, 0) != 0:
            raise ValueError("dynamic-weight convolution is not supported")
        num_output = layer.int_param(0, 0)
        size = layer.int_param(6, 0)
        if num_output <= 0 or size <= 0:
            raise ValueError("num_output and weight_data_size must be positive")
        weights = {"weight": reader.tagged(size)}
        if layer.int_param(5, 0):
            weights["bias"] = reader.raw_fp32(num_output)
        return weights
    if layer.type == "PReLU":
        num_slope = layer.int_param(0, 0)
        if num_slope <= 0:
            raise ValueError("num_slope must be positive")
        return {"slope": reader.raw_fp32(num_slope)}
    if layer.type == "BatchNorm":  # ncnn's order: slope, mean, variance, bias (raw fp32)
        channels = layer.int_param(0, 0)
        if channels <= 0:
            raise ValueError("channels must be positive")
        return {key: reader.raw_fp32(channels) for key in ("slope", "mean", "var", "bias")}
    return {}


def read_ncnn(param_path: StrPath, bin_path: StrPath) -> NcnnParam:
    """Parse ``.param`` and attach every layer's weights (as float32 arrays) from ``.bin``."""
    param = parse_param(param_path)
    bpath = Path(bin_path)
    for layer in param.layers:
        if layer.type not in _WEIGHTLESS_TYPES and layer.type not in _WEIGHTED_TYPES:
            raise BadInputError(
                f"{param_path}: line {layer.line}: unsupported ncnn layer type {layer.type!r} "
                f"(layer {layer.name!r})"
            )
    try:
        data = bpath.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{bpath}: cannot read ncnn weight file: {exc.strerror}") from None
    reader = _BinReader(data)
    for layer in param.layers:
        try:
            layer.weights = _read_layer_weights(layer, reader)
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


def ncnn_to_state_dict(
    param_path: StrPath, bin_path: StrPath
) -> tuple[str, dict[str, int | str], dict[str, torch.Tensor]]:
    """Convert an ncnn Real-ESRGAN model to ``(arch, hyper-parameters, state dict)``.

    ``arch`` is ``'RRDBNet'`` or ``'SRVGGNetCompact'``; the hyper-parameters are keyword
    arguments of that class's constructor, recognised from the graph; the state dict holds
    float32 tensors that load into it with ``strict=True``. Raises
    :class:`BadInputError` when the files are unreadable, use an unsupported layer type or
    storage, or describe a graph that is neither architecture.
    """
    layers = read_ncnn(param_path, bin_path).layers
    failures: list[tuple[int, str, str]] = []
    matchers = (("RRDBNet", _match_rrdbnet), ("SRVGGNetCompact", _match_srvgg))
    for arch, matcher in matchers:
        graph: _Graph | None = None
        try:
            graph = _Graph(layers)
            hp, sd = matcher(graph)
            _check_shapes(arch, hp, sd)
        except (_Mismatch, ValueError) as exc:
            failures.append((len(graph.used) if graph else 0, arch, str(exc)))
            continue
        return arch, hp, sd
    _, arch, reason = max(failures, key=lambda f: f[0])
    raise BadInputError(
        f"{param_path}: graph is neither RRDBNet nor SRVGGNetCompact (as {arch}: {reason})"
    )
