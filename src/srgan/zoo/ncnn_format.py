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
is written) and the weight sizes against the file before anything is allocated.
`match_architecture` runs the ncnn matcher of every architecture spec that has one
(`ArchSpec.ncnn_match`: RRDBNet and SRVGGNetCompact) to turn a recognised graph into a
PyTorch state dict (a faster module than the interpreter); anything else raises
:class:`srgan.errors.BadInputError` with a one-line message naming the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import numpy as np
import torch
from torch import nn

from srgan.archs.ncnn_match import Mismatch, NcnnGraph
from srgan.errors import BadInputError
from srgan.zoo.architectures import ARCHITECTURES, BY_NAME

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


def build_module(arch: str, hparams: dict[str, int | str]) -> nn.Module:
    """Instantiate the architecture named ``arch`` (e.g. 'RRDBNet') with ``hparams``."""
    if arch not in BY_NAME:
        raise ValueError(f"unknown architecture {arch!r}")
    return BY_NAME[arch].build(**hparams)


Converted = tuple[str, dict[str, int | str], dict[str, torch.Tensor]]


def match_architecture(param: NcnnParam) -> Converted | str:
    """``(arch, hyper-parameters, state dict)`` for the first architecture whose ncnn
    matcher (`ArchSpec.ncnn_match`) recognises the graph, else why none did."""
    failures: list[tuple[int, str, str]] = []
    specs = [spec for spec in ARCHITECTURES if spec.ncnn_match is not None]
    for spec in specs:
        assert spec.ncnn_match is not None
        graph: NcnnGraph | None = None
        try:
            graph = NcnnGraph(param.layers)
            hp, sd = spec.ncnn_match(graph)
            problem = spec.problem(sd, hp)
            if problem:
                raise Mismatch(problem)
        except (Mismatch, ValueError) as exc:
            failures.append((len(graph.used) if graph else 0, spec.name, str(exc)))
            continue
        return spec.name, hp, sd
    if not failures:
        return "no architecture has an ncnn matcher"
    names = " nor ".join(spec.name for spec in specs)
    _, arch, reason = max(failures, key=lambda f: f[0])
    return f"graph is neither {names} (as {arch}: {reason})"


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
