"""Write PyTorch networks as ncnn models (text ``.param`` + ``.bin``): the inverse of
`srgan.zoo.ncnn_format`'s reader.

The graphs use only layers and parameter ids that ncnn's own converters emit and that the
reader understands: ``Input``, ``Convolution`` (activation fused: 1 ReLU, 2 LeakyReLU),
``PReLU``, ``BatchNorm``, ``Concat``, ``Eltwise`` (SUM with coefficients), ``BinaryOp``
(ADD), ``Interp`` (nearest), ``PixelShuffle`` and ``Reorg`` (mode 0: PyTorch's channel
order), and ``Split`` wherever a blob feeds more than one layer (ncnn keeps one consumer
per blob). Weighted layers are named after the PyTorch modules they come from
(``body.0.rdb1.conv1``), so the file says where every weight belongs.

Storage follows ``ModelBin``: a convolution's weights carry a 4-byte tag (``0`` fp32,
``0x01306B47`` fp16, the data padded to 4 bytes); biases, slopes and batch-norm
statistics are raw fp32. RRDBNet, SRVGGNetCompact and SRResNet are written; the video
network is not (ncnn has no clip input: its recurrence over frames does not fit a graph
of ``[C, H, W]`` blobs).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from srgan.errors import BadInputError
from srgan.zoo.ncnn_format import FP16_TAG, PARAM_MAGIC

__all__ = ["NCNN_ARCHITECTURES", "NcnnFiles", "write_ncnn_bytes"]

NCNN_ARCHITECTURES = ("RRDBNet", "SRVGGNetCompact", "SRResNet")
_ARRAY_KEY_BASE = -23300
StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class NcnnFiles:
    """The two files of an ncnn model, as bytes."""

    param: bytes
    bin: bytes


def _number(value: int | float) -> str:
    """ncnn tells floats from ints by a '.' or an exponent: floats always get one."""
    if isinstance(value, int):  # bool included
        return str(int(value))
    return f"{float(value):e}"


@dataclass
class _Layer:
    type: str
    name: str
    inputs: list[str]
    output: str
    params: dict[int, int | float | list[float]] = field(default_factory=dict)
    weights: list[tuple[str, np.ndarray]] = field(default_factory=list)  # ("tagged"|"raw", x)


class _Graph:
    """Layers in execution order, one output blob each; `save` adds the Split layers."""

    def __init__(self, state: StateDict, fp16: bool) -> None:
        self.state = state
        self.fp16 = fp16
        self.layers: list[_Layer] = []
        self.used: set[str] = set()
        self._names: Counter[str] = Counter()

    def _blob(self, hint: str) -> str:
        self._names[hint] += 1
        return f"{hint}_{self._names[hint]}" if self._names[hint] > 1 else hint

    def add(self, ltype: str, inputs: Sequence[str], name: str = "", **kw) -> str:
        layer_name = name or self._blob(ltype.lower())
        output = self._blob(f"{layer_name}_out")
        self.layers.append(_Layer(ltype, layer_name, list(inputs), output, **kw))
        return output

    def tensor(self, key: str) -> np.ndarray:
        if key not in self.state:
            raise BadInputError(f"the state dict has no {key!r}")
        self.used.add(key)
        return self.state[key].detach().to(torch.float32).cpu().numpy()

    def conv(self, source: str, module: str, activation: str = "none", slope: float = 0.0) -> str:
        """A convolution `module` (stride 1, 'same' zero padding) with a fused activation
        ("none", "relu" or "leaky" with `slope`)."""
        weight = self.tensor(f"{module}.weight")
        out_ch, _, kernel_h, kernel_w = weight.shape
        if kernel_h != kernel_w or kernel_h % 2 == 0:
            raise BadInputError(f"{module}: a {kernel_h}x{kernel_w} kernel is not supported")
        params: dict[int, int | float | list[float]] = {
            0: int(out_ch),
            1: int(kernel_w),
            2: 1,
            3: 1,
            4: int(kernel_w // 2),
            5: int(f"{module}.bias" in self.state),
            6: int(weight.size),
        }
        if activation == "relu":
            params[9] = 1
        elif activation == "leaky":
            params[9] = 2
            params[10] = [slope]
        weights = [("tagged", weight)]
        if params[5]:
            weights.append(("raw", self.tensor(f"{module}.bias")))
        return self.add("Convolution", [source], module, params=params, weights=weights)

    def prelu(self, source: str, module: str) -> str:
        slope = self.tensor(f"{module}.weight").reshape(-1)
        return self.add(
            "PReLU", [source], module, params={0: int(slope.size)}, weights=[("raw", slope)]
        )

    def batch_norm(self, source: str, module: str, eps: float = 1e-5) -> str:
        slope = self.tensor(f"{module}.weight")
        # ncnn's order: slope, mean, variance, bias
        weights = [
            ("raw", slope),
            ("raw", self.tensor(f"{module}.running_mean")),
            ("raw", self.tensor(f"{module}.running_var")),
            ("raw", self.tensor(f"{module}.bias")),
        ]
        self.used.add(f"{module}.num_batches_tracked")
        return self.add(
            "BatchNorm", [source], module, params={0: int(slope.size), 1: eps}, weights=weights
        )

    def scaled_add(self, scaled: str, other: str, scale: float) -> str:
        """``scaled * scale + other`` (Eltwise SUM with coefficients)."""
        if scale == 1.0:
            return self.add("BinaryOp", [scaled, other], params={0: 0})
        return self.add("Eltwise", [scaled, other], params={0: 1, 1: [scale, 1.0]})

    def nearest(self, source: str, factor: int) -> str:
        return self.add("Interp", [source], params={0: 1, 1: float(factor), 2: float(factor)})

    def save(self, final: str) -> NcnnFiles:
        unused = sorted(k for k in self.state if k not in self.used)
        if unused:
            raise BadInputError(f"the graph does not use {unused[0]!r}: not this architecture")
        if not self.layers or self.layers[-1].output != final:
            raise AssertionError("the last layer must give the output")
        uses = Counter(blob for layer in self.layers for blob in layer.inputs)
        lines: list[str] = []
        blobs: set[str] = set()
        taken: Counter[str] = Counter()
        data = bytearray()

        def emit(ltype: str, name: str, ins: list[str], outs: list[str], params: dict) -> None:
            blobs.update(ins)
            blobs.update(outs)
            items = []
            for key, value in params.items():
                if isinstance(value, list):
                    values = ",".join(_number(float(v)) for v in value)
                    items.append(f"{_ARRAY_KEY_BASE - key}={len(value)},{values}")
                else:
                    items.append(f"{key}={_number(value)}")
            fields = [ltype, name, str(len(ins)), str(len(outs)), *ins, *outs, *items]
            lines.append(" ".join(fields))

        def split(blob: str) -> None:
            if uses[blob] > 1:
                outs = [f"{blob}_splitncnn_{i}" for i in range(uses[blob])]
                emit("Split", f"splitncnn_{len(lines)}", [blob], outs, {})

        def reader_of(blob: str) -> str:
            if uses[blob] <= 1:
                return blob
            taken[blob] += 1
            return f"{blob}_splitncnn_{taken[blob] - 1}"

        emit("Input", "input", [], ["in0"], {})
        split("in0")
        for layer in self.layers:
            emit(layer.type, layer.name, [reader_of(b) for b in layer.inputs], [layer.output],
                 layer.params)  # fmt: skip
            split(layer.output)
            for kind, values in layer.weights:
                data += self._weight_bytes(kind, values)
        text = f"{PARAM_MAGIC}\n{len(lines)} {len(blobs)}\n" + "\n".join(lines) + "\n"
        return NcnnFiles(text.encode("ascii"), bytes(data))

    def _weight_bytes(self, kind: str, values: np.ndarray) -> bytes:
        flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
        if not np.isfinite(flat).all():
            raise BadInputError("the weights hold NaN or infinity")
        if kind == "raw":
            return flat.astype("<f4").tobytes()
        if self.fp16:
            if np.abs(flat).max(initial=0.0) > 65504:
                raise BadInputError("weights exceed the fp16 range: write fp32 storage")
            half = flat.astype("<f2").tobytes()
            return struct.pack("<I", FP16_TAG) + half + b"\0" * (-len(half) % 4)
        return struct.pack("<I", 0) + flat.astype("<f4").tobytes()


def _rrdbnet(g: _Graph, hp: Mapping[str, int | str]) -> str:
    x = "in0"
    scale = int(hp["scale"])
    if scale != 4:  # BasicSR's pixel unshuffle; mode 0 keeps PyTorch's channel order
        x = g.add("Reorg", [x], params={0: 4 // scale, 1: 0})
    feat = g.conv(x, "conv_first")
    h = feat
    for block in range(int(hp["num_block"])):
        block_in = h
        for rdb in (1, 2, 3):
            prefix = f"body.{block}.rdb{rdb}"
            xs = [h]
            for i in (1, 2, 3, 4):
                source = h if i == 1 else g.add("Concat", list(xs), params={0: 0})
                xs.append(g.conv(source, f"{prefix}.conv{i}", "leaky", 0.2))
            y = g.conv(g.add("Concat", list(xs), params={0: 0}), f"{prefix}.conv5")
            h = g.scaled_add(y, h, 0.2)
        h = g.scaled_add(h, block_in, 0.2)
    feat = g.scaled_add(g.conv(h, "conv_body"), feat, 1.0)
    feat = g.conv(g.nearest(feat, 2), "conv_up1", "leaky", 0.2)
    feat = g.conv(g.nearest(feat, 2), "conv_up2", "leaky", 0.2)
    feat = g.conv(feat, "conv_hr", "leaky", 0.2)
    return g.conv(feat, "conv_last")


def _srvgg(g: _Graph, hp: Mapping[str, int | str]) -> str:
    act = str(hp["act_type"])
    convs = int(hp["num_conv"]) + 2
    h = "in0"
    for i in range(convs - 1):
        module = f"body.{2 * i}"
        if act == "prelu":
            h = g.prelu(g.conv(h, module), f"body.{2 * i + 1}")
        elif act == "relu":
            h = g.conv(h, module, "relu")
        else:
            h = g.conv(h, module, "leaky", 0.1)
    h = g.conv(h, f"body.{2 * (convs - 1)}")
    factor = int(hp["upscale"])
    h = g.add("PixelShuffle", [h], params={0: factor, 1: 0})
    return g.scaled_add(h, g.nearest("in0", factor), 1.0)


def _srresnet(g: _Graph, hp: Mapping[str, int | str]) -> str:
    from srgan.archs.srresnet import _STAGES

    feat = g.prelu(g.conv("in0", "head.0"), "head.1")
    h = feat
    for block in range(int(hp["num_blocks"])):
        prefix = f"blocks.{block}"
        y = g.prelu(g.batch_norm(g.conv(h, f"{prefix}.conv1"), f"{prefix}.bn1"), f"{prefix}.prelu")
        y = g.batch_norm(g.conv(y, f"{prefix}.conv2"), f"{prefix}.bn2")
        h = g.scaled_add(y, h, 1.0)
    trunk = g.batch_norm(g.conv(h, "trunk_conv"), "trunk_bn")
    h = g.scaled_add(trunk, feat, 1.0)
    for stage, factor in enumerate(_STAGES[int(hp["scale"])]):
        h = g.conv(h, f"upsample.{stage}.conv")
        h = g.add("PixelShuffle", [h], params={0: factor, 1: 0})
        h = g.prelu(h, f"upsample.{stage}.prelu")
    return g.conv(h, "tail")


_BUILDERS = {"RRDBNet": _rrdbnet, "SRVGGNetCompact": _srvgg, "SRResNet": _srresnet}


def write_ncnn_bytes(
    architecture: str, hyperparameters: Mapping[str, int | str], state: StateDict, fp16: bool
) -> NcnnFiles:
    """The ncnn files of a network srgan builds in PyTorch; `fp16`: convolution weights
    stored in half precision (half the size; biases and statistics stay fp32)."""
    builder = _BUILDERS.get(architecture)
    if builder is None:
        raise BadInputError(
            f"ncnn cannot hold a {architecture}: its recurrence over video frames has no ncnn "
            "form; convert it to ONNX, .safetensors or .pth"
            if architecture == "BidirectionalRecurrentVSR"
            else f"no ncnn writer for {architecture} (written: {', '.join(NCNN_ARCHITECTURES)})"
        )
    graph = _Graph(state, fp16)
    final = builder(graph, hyperparameters)
    return graph.save(final)
