"""The ncnn layers the graph interpreter runs: parameter ids, weights and a PyTorch op each.

Semantics follow ncnn's own ``src/layer/*.cpp`` (``load_param``, ``load_model``,
``forward``) and ``docs/developer-guide/operation-param-weight-table.md``:

* A blob is a tensor ``[N, ...]``: a batch axis, then ncnn's axes outermost first, so an
  ncnn ``dims == 3`` Mat ``(c, h, w)`` is ``[N, C, H, W]``, ``dims == 1`` is ``[N, W]``.
  ncnn's axis ``k`` (``Concat`` axis, ``Crop`` axes) is therefore tensor dimension ``k + 1``,
  and the per-channel parameters of ``Scale``, ``PReLU``, ``BatchNorm`` and ``Bias`` apply
  along dimension 1 whatever the rank (ncnn: ``w`` of a vector, rows of a matrix, channels).
* ``BinaryOp`` broadcasts as ncnn does: the operand with fewer dims is reshaped first (a
  vector whose length equals the other's channel count becomes ``[C, 1, 1]``), then sizes of
  1 broadcast.
* Weights loaded with ncnn's "type 0" carry a storage tag (see `ncnn_format.BinReader`);
  biases, slopes and scales are raw float32. Deconvolution weights are stored
  ``[out, in, kh, kw]`` (per group), the transpose of ``torch.nn.ConvTranspose2d``'s.

Every parameter id is checked against the layer's table: an id this module does not know
would be silently ignored by a loose reader and give wrong results, so it is an error. So
are int8 weights, dynamic weights and string (expression) parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srgan.zoo.ncnn_format import BinReader, NcnnLayer

__all__ = ["LAYER_TYPES", "Op", "build_op", "check_layer", "layer_weights", "max_weight_bytes"]

# Plausibility limits: far above real super-resolution models, far below what would
# exhaust memory. The graph's dry run bounds the activations on top of these.
MAX_CHANNELS = 1 << 16
MAX_KERNEL = 64
MAX_STRIDE = 64
MAX_PAD = 4096
MAX_RESIZE = 64.0
SAME_UPPER, SAME_LOWER = -233, -234


class Op(nn.Module):
    """One ncnn layer: ``forward(inputs) -> outputs``, lists of blobs."""

    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__()
        self.layer_name = layer.name
        self.layer_type = layer.type

    def fail(self, reason: str) -> ValueError:
        return ValueError(f"layer {self.layer_name!r} ({self.layer_type}): {reason}")

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        raise NotImplementedError


# --------------------------------------------------------------------------- parameters


class _Params:
    """Typed, range-checked access to a layer's parameters (ncnn ``ParamDict::get``)."""

    def __init__(self, layer: NcnnLayer) -> None:
        self.layer = layer

    def _fail(self, key: int, reason: str) -> ValueError:
        return ValueError(
            f"layer {self.layer.name!r} ({self.layer.type}): parameter {key} {reason}"
        )

    def int(self, key: int, default: int, low: int = -(2**31), high: int = 2**31 - 1) -> int:
        value = self.layer.params.get(key, default)
        if not isinstance(value, int):
            raise self._fail(key, f"should be an integer, not {value!r}")
        if not low <= value <= high:
            raise self._fail(key, f"= {value} is outside [{low}, {high}]")
        return value

    def float(self, key: int, default: float) -> float:
        value = self.layer.params.get(key, default)
        if isinstance(value, list):
            raise self._fail(key, "should be a number, not an array")
        return float(value)

    def floats(self, key: int) -> list[float]:
        value = self.layer.params.get(key, [])
        if not isinstance(value, list):
            raise self._fail(key, "should be an array")
        return [float(v) for v in value]

    def ints(self, key: int) -> list[int]:
        value = self.layer.params.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise self._fail(key, "should be an integer array")
        return [int(v) for v in value]


def _tagged_bytes(count: int) -> int:
    """The most bytes a "type 0" weight of ``count`` values can take (fp32 or a table)."""
    return 4 + max(4 * count, 1024 + (count + 3) // 4 * 4)


# --------------------------------------------------------------------------- activations


def _activation(p: _Params, kind_key: int = 9, params_key: int = 10) -> Callable | None:
    """ncnn's fused activation (``activation_type`` / ``activation_params``)."""
    kind = p.int(kind_key, 0, 0, 6)
    values = p.floats(params_key)
    needed = {2: 1, 3: 2, 6: 2}.get(kind, 0)
    if len(values) < needed:
        raise p._fail(params_key, f"needs {needed} values for activation type {kind}")
    if kind == 0:
        return None
    if kind == 1:
        return F.relu
    if kind == 2:
        slope = values[0]
        return lambda x: F.leaky_relu(x, slope)
    if kind == 3:
        low, high = values[0], values[1]
        return lambda x: x.clamp(low, high)
    if kind == 4:
        return torch.sigmoid
    if kind == 5:
        return F.mish
    alpha, beta = values[0], values[1]
    return lambda x: _hard_swish(x, alpha, beta)


def _hard_swish(x: Tensor, alpha: float, beta: float) -> Tensor:
    lower = -beta / alpha
    upper = 1.0 / alpha + lower
    return torch.where(
        x < lower, torch.zeros_like(x), torch.where(x > upper, x, x * (x * alpha + beta))
    )


class _Elementwise(Op):
    def __init__(self, layer: NcnnLayer, function: Callable[[Tensor], Tensor]) -> None:
        super().__init__(layer)
        self.function = function

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        return [self.function(inputs[0])]


def _along_dim1(values: Tensor, x: Tensor) -> Tensor:
    """A per-channel vector shaped to broadcast along dimension 1 of ``x``."""
    return values.reshape(1, -1, *([1] * (x.dim() - 2)))


def _check_dim1(op: Op, values: Tensor, x: Tensor) -> None:
    if x.dim() < 2 or (values.numel() != 1 and values.numel() != x.shape[1]):
        raise op.fail(f"{values.numel()} values for an input of shape {list(x.shape[1:])}")


class _PReLU(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        self.slope = _parameter(layer.weights["slope"])

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        _check_dim1(self, self.slope, x)
        slope = _along_dim1(self.slope, x) if self.slope.numel() > 1 else self.slope
        return [torch.where(x > 0, x, x * slope)]


class _ChannelAffine(Op):
    """``x * scale + bias`` per channel (Scale, BatchNorm, Bias); either may be None."""

    def __init__(self, layer: NcnnLayer, scale: np.ndarray | None, bias: np.ndarray | None):
        super().__init__(layer)
        self.scale = _parameter(scale) if scale is not None else None
        self.bias = _parameter(bias) if bias is not None else None

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        if self.scale is not None:
            _check_dim1(self, self.scale, x)
            x = x * _along_dim1(self.scale, x)
        if self.bias is not None:
            _check_dim1(self, self.bias, x)
            x = x + _along_dim1(self.bias, x)
        return [x]


class _ScaleByBlob(Op):
    """Scale with ``scale_data_size = -233``: the second input holds one factor per channel."""

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x, factors = inputs
        flat = factors.reshape(factors.shape[0], -1)
        if x.dim() < 2 or flat.shape[1] != x.shape[1]:
            raise self.fail(f"{flat.shape[1]} factors for an input of shape {list(x.shape[1:])}")
        return [x * flat.reshape(flat.shape[0], flat.shape[1], *([1] * (x.dim() - 2)))]


def _parameter(array: np.ndarray) -> nn.Parameter:
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return nn.Parameter(tensor, requires_grad=False)


# --------------------------------------------------------------------------- convolutions


@dataclass(frozen=True)
class _Geometry:
    kernel: tuple[int, int]  # (h, w)
    dilation: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # left, right, top, bottom (or SAME_UPPER / SAME_LOWER)


def _geometry(p: _Params) -> _Geometry:
    kw = p.int(1, 0, 1, MAX_KERNEL)
    kh = p.int(11, kw, 1, MAX_KERNEL)
    dw = p.int(2, 1, 1, MAX_KERNEL)
    dh = p.int(12, dw, 1, MAX_KERNEL)
    sw = p.int(3, 1, 1, MAX_STRIDE)
    sh = p.int(13, sw, 1, MAX_STRIDE)
    left = p.int(4, 0, SAME_LOWER, MAX_PAD)
    right = p.int(15, left, SAME_LOWER, MAX_PAD)
    top = p.int(14, left, SAME_LOWER, MAX_PAD)
    bottom = p.int(16, top, SAME_LOWER, MAX_PAD)
    pads = (left, right, top, bottom)
    if any(v < 0 for v in pads) and not (
        all(v == SAME_UPPER for v in pads) or all(v == SAME_LOWER for v in pads)
    ):
        raise p._fail(4, f"padding {pads}: negative values other than all -233 or all -234")
    return _Geometry((kh, kw), (dh, dw), (sh, sw), pads)


def _conv_weights(layer: NcnnLayer, reader: BinReader) -> dict[str, np.ndarray]:
    p = _Params(layer)
    weights = {"weight": reader.tagged(p.int(6, 0, 1))}
    if p.int(5, 0, 0, 1):
        weights["bias"] = reader.raw_fp32(p.int(0, 0, 1, MAX_CHANNELS))
    return weights


def _conv_bytes(layer: NcnnLayer) -> int:
    p = _Params(layer)
    size = _tagged_bytes(p.int(6, 0, 1))
    return size + (4 * p.int(0, 0, 1, MAX_CHANNELS) if p.int(5, 0, 0, 1) else 0)


def _same_pads(size: int, kernel: int, dilation: int, stride: int, lower: bool) -> tuple[int, int]:
    extent = dilation * (kernel - 1) + 1
    total = max(0, extent + (size - 1) // stride * stride - size)
    small, large = total // 2, total - total // 2
    return (large, small) if lower else (small, large)


class ConvOp(Op):
    """Convolution and ConvolutionDepthWise (``group``), with ncnn's padding modes."""

    def __init__(self, layer: NcnnLayer, groups: int) -> None:
        super().__init__(layer)
        p = _Params(layer)
        if p.int(8, 0):
            raise p._fail(8, "(int8_scale_term): int8 models are not supported")
        if p.int(19, 0):
            raise p._fail(19, "(dynamic_weight): weights from a blob are not supported")
        out_channels = p.int(0, 0, 1, MAX_CHANNELS)
        self.geometry = _geometry(p)
        self.pad_value = p.float(18, 0.0)
        self.activation = _activation(p)
        kh, kw = self.geometry.kernel
        weight = layer.weights["weight"]
        per_input = out_channels * kh * kw
        if groups < 1 or out_channels % groups or weight.size % per_input:
            raise p._fail(6, f"= {weight.size} does not fit {out_channels} outputs, "
                          f"kernel {kw}x{kh}, {groups} group(s)")  # fmt: skip
        in_per_group = weight.size // per_input
        self.groups = groups
        self.in_channels = in_per_group * groups
        self.weight = _parameter(weight.reshape(out_channels, in_per_group, kh, kw))
        self.bias = _parameter(layer.weights["bias"]) if "bias" in layer.weights else None

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise self.fail(f"expects {self.in_channels} channels, got shape {list(x.shape[1:])}")
        g = self.geometry
        left, right, top, bottom = g.pads
        if left < 0:  # SAME: depends on the input size
            lower = left == SAME_LOWER
            top, bottom = _same_pads(x.shape[2], g.kernel[0], g.dilation[0], g.stride[0], lower)
            left, right = _same_pads(x.shape[3], g.kernel[1], g.dilation[1], g.stride[1], lower)
        padding: tuple[int, int] = (0, 0)
        if (left, top) == (right, bottom) and self.pad_value == 0:
            padding = (top, left)
        elif max(left, right, top, bottom) > 0:
            x = F.pad(x, (left, right, top, bottom), value=self.pad_value)
        extent = [d * (k - 1) + 1 for d, k in zip(g.dilation, g.kernel, strict=True)]
        if any(x.shape[2 + i] + 2 * padding[i] < extent[i] for i in (0, 1)):
            raise self.fail(f"input {list(x.shape[2:])} is smaller than the kernel")
        y = F.conv2d(x, self.weight, self.bias, g.stride, padding, g.dilation, self.groups)
        return [self.activation(y) if self.activation else y]


class DeconvOp(Op):
    """Deconvolution and DeconvolutionDepthWise: transposed convolution, then ncnn's cut."""

    def __init__(self, layer: NcnnLayer, groups: int) -> None:
        super().__init__(layer)
        p = _Params(layer)
        if p.int(28, 0):
            raise p._fail(28, "(dynamic_weight): weights from a blob are not supported")
        out_channels = p.int(0, 0, 1, MAX_CHANNELS)
        self.geometry = _geometry(p)
        self.output_pad = (
            p.int(19, p.int(18, 0, 0, MAX_PAD), 0, MAX_PAD),
            p.int(18, 0, 0, MAX_PAD),
        )
        self.output_size = (
            p.int(21, p.int(20, 0, 0, 1 << 20), 0, 1 << 20),
            p.int(20, 0, 0, 1 << 20),
        )
        self.activation = _activation(p)
        kh, kw = self.geometry.kernel
        weight = layer.weights["weight"]
        per_input = out_channels * kh * kw
        if groups < 1 or out_channels % groups or weight.size % per_input:
            raise p._fail(6, f"= {weight.size} does not fit {out_channels} outputs, "
                          f"kernel {kw}x{kh}, {groups} group(s)")  # fmt: skip
        in_per_group = weight.size // per_input
        out_per_group = out_channels // groups
        # ncnn: per group [out_g, in_g, kh, kw]; torch: [in, out_g, kh, kw]
        grouped = weight.reshape(groups, out_per_group, in_per_group, kh, kw)
        torch_layout = grouped.transpose(0, 2, 1, 3, 4).reshape(
            groups * in_per_group, out_per_group, kh, kw
        )
        self.groups = groups
        self.in_channels = groups * in_per_group
        self.weight = _parameter(torch_layout)
        self.bias = _parameter(layer.weights["bias"]) if "bias" in layer.weights else None

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise self.fail(f"expects {self.in_channels} channels, got shape {list(x.shape[1:])}")
        g = self.geometry
        y = F.conv_transpose2d(x, self.weight, None, g.stride, 0, 0, self.groups, g.dilation)
        pad_bottom, pad_right = self.output_pad
        if pad_bottom or pad_right:
            y = F.pad(y, (0, pad_right, 0, pad_bottom))
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, 1, 1)
        if self.activation is not None:
            y = self.activation(y)
        left, right, top, bottom = g.pads
        height, width = y.shape[2], y.shape[3]
        if max(left, right, top, bottom) > 0:
            cut = (max(left, 0), max(right, 0), max(top, 0), max(bottom, 0))
        elif self.output_size[0] > 0 and self.output_size[1] > 0 and left < 0:
            hcut, wcut = height - self.output_size[0], width - self.output_size[1]
            if hcut < 0 or wcut < 0:
                raise self.fail(f"output {list(y.shape[2:])} is smaller than output_w/output_h")
            lower = left == SAME_LOWER
            top, bottom = (hcut - hcut // 2, hcut // 2) if lower else (hcut // 2, hcut - hcut // 2)
            left, right = (wcut - wcut // 2, wcut // 2) if lower else (wcut // 2, wcut - wcut // 2)
            cut = (left, right, top, bottom)
        elif self.output_size[0] > 0 and self.output_size[1] > 0:
            raise self.fail("output_w/output_h without SAME padding (-233 or -234)")
        else:
            return [y]
        left, right, top, bottom = cut
        if left + right >= width or top + bottom >= height:
            raise self.fail(f"padding {cut} removes the whole {height}x{width} output")
        # negative ends: an ONNX export keeps them relative to the size
        return [y[:, :, top : -bottom or None, left : -right or None]]


class _InnerProduct(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        if p.int(8, 0):
            raise p._fail(8, "(int8_scale_term): int8 models are not supported")
        out_features = p.int(0, 0, 1, MAX_CHANNELS)
        weight = layer.weights["weight"]
        if weight.size % out_features:
            raise p._fail(2, f"= {weight.size} is not a multiple of num_output {out_features}")
        self.weight = _parameter(weight.reshape(out_features, weight.size // out_features))
        self.bias = _parameter(layer.weights["bias"]) if "bias" in layer.weights else None
        self.activation = _activation(p)

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        in_features = self.weight.shape[1]
        if x.dim() == 3 and x.shape[2] == in_features:  # ncnn: a matrix, row by row
            flat = x
        else:
            flat = x.reshape(x.shape[0], -1)
            if flat.shape[1] != in_features:
                raise self.fail(f"expects {in_features} values, got shape {list(x.shape[1:])}")
        y = F.linear(flat, self.weight, self.bias)
        return [self.activation(y) if self.activation else y]


def _inner_product_weights(layer: NcnnLayer, reader: BinReader) -> dict[str, np.ndarray]:
    p = _Params(layer)
    weights = {"weight": reader.tagged(p.int(2, 0, 1))}
    if p.int(1, 0, 0, 1):
        weights["bias"] = reader.raw_fp32(p.int(0, 0, 1, MAX_CHANNELS))
    return weights


def _inner_product_bytes(layer: NcnnLayer) -> int:
    p = _Params(layer)
    size = _tagged_bytes(p.int(2, 0, 1))
    return size + (4 * p.int(0, 0, 1, MAX_CHANNELS) if p.int(1, 0, 0, 1) else 0)


# --------------------------------------------------------------------------- pooling


class PoolingOp(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        self.max = p.int(0, 0, 0, 1) == 0
        self.is_global = bool(p.int(4, 0, 0, 1))
        self.adaptive = bool(p.int(7, 0, 0, 1))
        self.out_size = (
            p.int(18, p.int(8, 0, -233, 1 << 16), -233, 1 << 16),
            p.int(8, 0, -233, 1 << 16),
        )
        if self.is_global or self.adaptive:
            return
        kw = p.int(1, 0, 1, 1024)
        self.kernel = (p.int(11, kw, 1, 1024), kw)
        sw = p.int(2, 1, 1, 1024)
        self.stride = (p.int(12, sw, 1, 1024), sw)
        left = p.int(3, 0, 0, MAX_PAD)
        top = p.int(13, left, 0, MAX_PAD)
        self.pads = (left, p.int(14, left, 0, MAX_PAD), top, p.int(15, top, 0, MAX_PAD))
        self.pad_mode = p.int(5, 0, 0, 3)
        self.include_pad = bool(p.int(6, 0, 0, 1))

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        if x.dim() != 4:
            raise self.fail(f"pools a (c, h, w) blob, got shape {list(x.shape[1:])}")
        if self.is_global:
            return [x.amax(dim=(2, 3)) if self.max else x.mean(dim=(2, 3))]
        if self.adaptive:
            out_h = x.shape[2] if self.out_size[0] == -233 else self.out_size[0]
            out_w = x.shape[3] if self.out_size[1] == -233 else self.out_size[1]
            if out_h <= 0 or out_w <= 0:
                raise self.fail(f"adaptive output size {out_h}x{out_w}")
            pool = F.adaptive_max_pool2d if self.max else F.adaptive_avg_pool2d
            return [pool(x, (out_h, out_w))]
        return [self._windowed(x)]

    def _windowed(self, x: Tensor) -> Tensor:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        left, right, top, bottom = self.pads
        h, w = x.shape[2], x.shape[3]
        tail_h = tail_w = 0
        if self.pad_mode == 0:  # "full": extra rows/columns so the last window fits
            tail_h = (sh - (h + top + bottom - kh) % sh) % sh
            tail_w = (sw - (w + left + right - kw) % sw) % sw
            bordered = (left, right + tail_w, top, bottom + tail_h)
        elif self.pad_mode == 1:
            bordered = (left, right, top, bottom)
        else:
            lower = self.pad_mode == 3
            bordered = (
                *_same_pads(w, kw, 1, sw, lower),
                *_same_pads(h, kh, 1, sh, lower),
            )
        value = -math.inf if self.max else 0.0
        padded = F.pad(x, bordered, value=value) if max(bordered) > 0 else x
        if padded.shape[2] < kh or padded.shape[3] < kw:
            raise self.fail(f"input {h}x{w} is smaller than the {kh}x{kw} window")
        if self.max:
            return F.max_pool2d(padded, (kh, kw), (sh, sw))
        total = F.avg_pool2d(padded, (kh, kw), (sh, sw))
        if self.include_pad:
            return total
        # ncnn divides by the count of values inside the declared pads (and tail)
        mask = torch.zeros_like(padded[:1, :1])
        ph, pw = padded.shape[2], padded.shape[3]
        mask[:, :, top : ph - bottom - tail_h, left : pw - right - tail_w] = 1.0
        return total / F.avg_pool2d(mask, (kh, kw), (sh, sw))


# --------------------------------------------------------------------------- shapes


def _dims(x: Tensor) -> tuple[int, ...]:
    """A blob's shape as plain ints, for checks (while an ONNX export traces the graph,
    ``x.shape`` holds tensors, which compare by identity)."""
    return tuple(int(d) for d in x.shape)


def _ncnn_shape(x: Tensor) -> tuple[int, int, int, int]:
    """(w, h, d, c) of a blob as ncnn sees it (missing axes are 1)."""
    dims = list(x.shape[1:])
    if len(dims) == 1:
        return dims[0], 1, 1, 1
    if len(dims) == 2:
        return dims[1], dims[0], 1, 1
    if len(dims) == 3:
        return dims[2], dims[1], 1, dims[0]
    return dims[3], dims[2], dims[1], dims[0]


class CropOp(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        self.offsets = (p.int(0, 0, 0), p.int(1, 0, 0), p.int(13, 0, 0), p.int(2, 0, 0))  # w h d c
        self.sizes = (p.int(3, 0, -233), p.int(4, 0, -233), p.int(14, 0, -233), p.int(5, 0, -233))
        self.offsets2 = (p.int(6, 0, 0), p.int(7, 0, 0), p.int(15, 0, 0), p.int(8, 0, 0))
        self.starts, self.ends, self.axes = p.ints(9), p.ints(10), p.ints(11)
        self.numpy_style = bool(self.starts) and bool(self.ends)
        if self.numpy_style and not (
            len(self.starts) == len(self.ends) and len(self.axes) in (0, len(self.starts))
        ):
            raise p._fail(9, "starts, ends and axes differ in length")
        single = any(self.sizes) or any(self.offsets2) or self.numpy_style
        if len(layer.inputs) != (1 if single else 2):
            raise ValueError(
                f"layer {layer.name!r} (Crop): its parameters need {1 if single else 2} input(s)"
            )

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        dims = x.dim() - 1
        if dims > 3:
            raise self.fail("4-D blobs are not supported")
        # (offset, size) per tensor dimension 1.. (outermost first)
        region = [(0, int(n)) for n in x.shape[1:]]
        if len(inputs) == 2:
            ref = inputs[1]
            ref_w, ref_h, _, ref_c = _ncnn_shape(ref)
            wo, ho, _, co = self.offsets
            if dims == 1:
                region = [(wo, ref_w)]
            elif dims == 2:
                region = [(ho, ref_h), (wo, ref_w)]
            else:
                channels = ref_c if ref.dim() == 4 else int(x.shape[1])
                region = [(co, channels), (ho, ref_h), (wo, ref_w)]
        elif self.numpy_style:
            # Python slices with the file's own negative ends, so that an ONNX export of
            # the graph keeps working for every input size (ends relative to the size)
            slices: list[slice] = [slice(None)] * dims
            axes = self.axes or list(range(dims))
            for axis, start, end in zip(axes, self.starts, self.ends, strict=True):
                axis = axis + dims if axis < 0 else axis
                if not 0 <= axis < dims:
                    raise self.fail(f"axis {axis} of a {dims}-D blob")
                n = int(x.shape[1 + axis])
                start = 0 if start == -233 else start
                begin = start if start >= 0 else n + start
                stop = n if end in (-233, 0) else min(n, end) if end > 0 else n + end
                if begin < 0 or stop <= begin:
                    raise self.fail(f"slice {start}:{end} of {n} values is empty")
                slices[axis] = slice(
                    start,
                    None if end in (-233, 0) or end >= n else end,
                )
            return [x[(slice(None), *slices)]]
        else:
            w, h, _, c = _ncnn_shape(x)
            per_axis = {  # ncnn name -> (offset, size param, offset2, extent)
                "w": (self.offsets[0], self.sizes[0], self.offsets2[0], w),
                "h": (self.offsets[1], self.sizes[1], self.offsets2[1], h),
                "c": (self.offsets[3], self.sizes[3], self.offsets2[3], c),
            }
            names = {1: ["w"], 2: ["h", "w"], 3: ["c", "h", "w"]}[dims]
            region = []
            for name in names:
                offset, size, offset2, extent = per_axis[name]
                out = extent - offset - offset2
                if size != -233:
                    out = min(size, out)
                region.append((offset, out))
        for (begin, size), n in zip(region, x.shape[1:], strict=True):
            if begin < 0 or size <= 0 or begin + size > n:
                raise self.fail(f"region {region} does not fit a blob of shape {list(x.shape[1:])}")
        index = [slice(None)] + [slice(b, b + s) for b, s in region]
        return [x[tuple(index)]]


class _Concat(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        self.axis = _Params(layer).int(0, 0, -4, 3)

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        dims = inputs[0].dim() - 1
        axis = self.axis + dims if self.axis < 0 else self.axis
        shapes = {_dims(t)[: 1 + axis] + _dims(t)[2 + axis :] for t in inputs}
        if not 0 <= axis < dims or len(shapes) != 1 or any(t.dim() != dims + 1 for t in inputs):
            raise self.fail(
                f"cannot join shapes {[list(t.shape[1:]) for t in inputs]} on axis {axis}"
            )
        return [torch.cat(inputs, dim=axis + 1)]


class _Split(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        self.copies = len(layer.outputs)

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        return [inputs[0]] * self.copies


class _Eltwise(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        self.op = p.int(0, 0, 0, 2)
        self.coeffs = p.floats(1)
        if self.coeffs and (self.op != 1 or len(self.coeffs) < len(layer.inputs)):
            raise p._fail(1, f"needs {len(layer.inputs)} coefficients for a sum")

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        if len({_dims(t) for t in inputs}) != 1:
            raise self.fail(f"inputs differ in shape: {[list(t.shape[1:]) for t in inputs]}")
        out = inputs[0] * self.coeffs[0] if self.coeffs else inputs[0]
        for i, t in enumerate(inputs[1:], start=1):
            if self.op == 0:
                out = out * t
            elif self.op == 1:
                out = out + (t * self.coeffs[i] if self.coeffs else t)
            else:
                out = torch.maximum(out, t)
        return [out]


_BINARY: dict[int, Callable[[Tensor, Tensor], Tensor]] = {
    0: torch.add,
    1: torch.sub,
    2: torch.mul,
    3: torch.div,
    4: torch.maximum,
    5: torch.minimum,
    6: torch.pow,
    7: lambda a, b: b - a,
    8: lambda a, b: b / a,
    9: lambda a, b: torch.pow(b, a),
    10: torch.atan2,
    11: lambda a, b: torch.atan2(b, a),
}


def _expand_for_binary(a: Tensor, b: Tensor) -> Tensor:
    """ncnn's reshape of the operand ``a`` with fewer dims than ``b`` (BinaryOp::forward)."""
    da, db = a.dim() - 1, b.dim() - 1
    n = a.shape[0]
    _, bh, _, bc = _ncnn_shape(b)
    if da == 1:
        length = a.shape[1]
        if db == 2:
            return a.reshape(n, length, 1) if length == bh else a.reshape(n, 1, length)
        # a vector matching the channels scales per channel, else it runs along w
        shape = [length] + [1] * (db - 1) if length == bc else [1] * (db - 1) + [length]
        return a.reshape(n, *shape)
    # (h, w) -> (h, w, 1) as ncnn's reshape(1, w, h); (c, h, w) -> (c, h, w, 1) likewise
    return a.reshape(n, *a.shape[1:], *([1] * (db - da)))


class _BinaryOp(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        self.op_type = p.int(0, 0, 0, 18)
        if self.op_type not in _BINARY:
            raise p._fail(0, f"= {self.op_type}: operation not supported")
        self.op = _BINARY[self.op_type]
        self.with_scalar = bool(p.int(1, 0, 0, 1))
        self.scalar = p.float(2, 0.0)
        if len(layer.inputs) != (1 if self.with_scalar else 2):
            raise ValueError(
                f"layer {layer.name!r} (BinaryOp): with_scalar={int(self.with_scalar)} "
                f"needs {1 if self.with_scalar else 2} input(s)"
            )

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        a = inputs[0]
        if self.with_scalar:
            return [self.op(a, torch.tensor(self.scalar, dtype=a.dtype, device=a.device))]
        b = inputs[1]
        if a.dim() < b.dim():
            a = _expand_for_binary(a, b)
        elif b.dim() < a.dim():
            b = _expand_for_binary(b, a)
        try:
            torch.broadcast_shapes(_dims(a), _dims(b))
        except RuntimeError:
            raise self.fail(
                f"shapes {list(a.shape[1:])} and {list(b.shape[1:])} do not broadcast"
            ) from None
        return [self.op(a, b)]


_UNARY: dict[int, Callable[[Tensor], Tensor]] = {
    0: torch.abs, 1: torch.neg, 2: torch.floor, 3: torch.ceil, 4: torch.square,
    5: torch.sqrt, 6: torch.rsqrt, 7: torch.exp, 8: torch.log, 9: torch.sin, 10: torch.cos,
    11: torch.tan, 12: torch.asin, 13: torch.acos, 14: torch.atan, 15: torch.reciprocal,
    16: torch.tanh, 17: torch.log10, 18: torch.round, 19: torch.trunc, 20: torch.sign,
    21: torch.expm1, 22: torch.sinh, 23: torch.asinh, 24: torch.cosh, 25: torch.acosh,
    26: torch.atanh, 27: torch.log1p,
}  # fmt: skip


class InterpOp(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        self.mode = {1: "nearest", 2: "bilinear", 3: "bicubic"}.get(p.int(0, 0, 0, 3), "")
        if not self.mode:
            raise p._fail(0, "= 0: resize type 0 computes nothing in ncnn")
        self.scales = (p.float(1, 1.0), p.float(2, 1.0))
        self.size = (p.int(3, 0, 0, 1 << 16), p.int(4, 0, 0, 1 << 16))
        self.dynamic = bool(p.int(5, 0, 0, 1))
        self.align_corners = bool(p.int(6, 0, 0, 1))
        if not all(0 < s <= MAX_RESIZE for s in self.scales):
            raise p._fail(1, f"scales {self.scales} outside (0, {MAX_RESIZE:g}]")
        if len(layer.inputs) != (2 if self.dynamic else 1):
            raise ValueError(f"layer {layer.name!r} (Interp): dynamic_target_size needs 2 inputs")

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        if x.dim() != 4:
            raise self.fail(f"resizes (c, h, w) blobs, got shape {list(x.shape[1:])}")
        h, w = int(x.shape[2]), int(x.shape[3])
        by_scale = not self.dynamic and (self.size[0] == 0 or self.size[1] == 0)
        if self.dynamic:
            ref_w, ref_h, _, _ = _ncnn_shape(inputs[1])
            out_h, out_w = ref_h, ref_w
        elif by_scale:
            out_h, out_w = int(h * self.scales[0]), int(w * self.scales[1])
        else:
            out_h, out_w = self.size
        if out_h <= 0 or out_w <= 0:
            raise self.fail(f"output size {out_h}x{out_w}")
        if (out_h, out_w) == (h, w):
            return [x]
        integer = by_scale and all(float(s).is_integer() for s in self.scales)
        if self.mode == "nearest":
            if integer:  # the same indices as ncnn, and exportable with free sizes
                return [F.interpolate(x, scale_factor=self.scales, mode="nearest")]
            hs = h / out_h if not by_scale else 1.0 / self.scales[0]
            ws = w / out_w if not by_scale else 1.0 / self.scales[1]
            rows = torch.tensor([min(int(y * hs), h - 1) for y in range(out_h)], device=x.device)
            cols = torch.tensor([min(int(c * ws), w - 1) for c in range(out_w)], device=x.device)
            return [x.index_select(2, rows).index_select(3, cols)]
        if self.mode == "bicubic" and min(h, w) < 4:
            raise self.fail(f"bicubic resize of a {h}x{w} blob (ncnn needs at least 4x4)")
        if by_scale:  # ncnn maps coordinates by 1 / scale here, as torch does
            return [
                F.interpolate(
                    x, scale_factor=self.scales, mode=self.mode, align_corners=self.align_corners
                )
            ]
        return [
            F.interpolate(x, size=(out_h, out_w), mode=self.mode, align_corners=self.align_corners)
        ]


class _PixelShuffle(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        self.factor = p.int(0, 1, 1, 16)
        self.mode = p.int(1, 0, 0, 1)

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x, f = inputs[0], self.factor
        if x.dim() != 4 or x.shape[1] % (f * f):
            raise self.fail(f"{list(x.shape[1:])} does not shuffle by {f}")
        if self.mode == 1:  # ncnn mode 1: channel (sh * f + sw) * outc + p
            n, c, h, w = x.shape
            x = x.reshape(n, f * f, c // (f * f), h, w).transpose(1, 2).reshape(n, c, h, w)
        return [F.pixel_shuffle(x, f)]


class _Reorg(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        self.stride = p.int(0, 1, 1, 16)
        self.mode = p.int(1, 0, 0, 1)

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x, s = inputs[0], self.stride
        if x.dim() != 4:
            raise self.fail(f"reorganises (c, h, w) blobs, got shape {list(x.shape[1:])}")
        h, w = (x.shape[2] // s) * s, (x.shape[3] // s) * s
        if h == 0 or w == 0:
            raise self.fail(f"input {list(x.shape[2:])} is smaller than the stride {s}")
        y = F.pixel_unshuffle(x[:, :, :h, :w], s)
        if self.mode == 1:  # ncnn mode 1: channel (sh * s + sw) * C + q
            n, c, oh, ow = y.shape
            y = y.reshape(n, c // (s * s), s * s, oh, ow).transpose(1, 2).reshape(n, c, oh, ow)
        return [y]


class _Padding(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        self.pads = tuple(p.int(k, 0, 0, MAX_PAD) for k in (2, 3, 0, 1))  # left right top bottom
        self.mode = ("constant", "replicate", "reflect")[p.int(4, 0, 0, 2)]
        self.value = p.float(5, 0.0)
        if p.int(6, 0) or p.int(7, 0) or p.int(8, 0):
            raise p._fail(6, "per-channel values and channel padding are not supported")

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        left, right, top, bottom = self.pads
        if x.dim() == 2:  # a vector: w only
            view, pads = x[:, None, None, :], (left, right, 0, 0)
        elif x.dim() == 3:
            view, pads = x[:, None], (left, right, top, bottom)
        elif x.dim() == 4:
            view, pads = x, (left, right, top, bottom)
        else:
            raise self.fail("4-D blobs are not supported")
        if self.mode == "reflect" and (
            max(pads[:2]) >= view.shape[3] or max(pads[2:]) >= view.shape[2]
        ):
            raise self.fail(f"reflect padding {self.pads} is not smaller than the input")
        if self.mode == "constant":
            out = F.pad(view, pads, value=self.value)
        else:
            out = F.pad(view, pads, mode=self.mode)
        return [out.reshape(x.shape[0], *out.shape[4 - (x.dim() - 1) :])]


class _Reshape(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        p = _Params(layer)
        limit = 1 << 24
        self.w, self.h = p.int(0, -233, -233, limit), p.int(1, -233, -233, limit)
        self.d, self.c = p.int(11, -233, -233, limit), p.int(2, -233, -233, limit)
        self.ndim = 4
        if self.d == -233:
            self.ndim = 3
        if self.c == -233:
            self.ndim = 2
        if self.h == -233:
            self.ndim = 1
        if self.w == -233:
            raise p._fail(0, "(w) is required")

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        total = int(x[0].numel())
        bw, bh, bd, bc = _ncnn_shape(x)
        wanted = {"w": self.w, "h": self.h, "d": self.d, "c": self.c}
        keep = {"w": bw, "h": bh, "d": bd, "c": bc}
        names = ["w", "h", "c", "d"][: self.ndim]
        sizes = {k: keep[k] if wanted[k] == 0 else wanted[k] for k in names}
        unknown = [k for k in names if sizes[k] == -1]
        known = math.prod(v for k, v in sizes.items() if v != -1)
        if len(unknown) > 1 or known <= 0 or any(v < -1 for v in sizes.values()):
            raise self.fail(f"cannot reshape to {sizes}")
        if unknown:
            sizes[unknown[0]] = total // known
        order = {1: ["w"], 2: ["h", "w"], 3: ["c", "h", "w"], 4: ["c", "d", "h", "w"]}[self.ndim]
        shape = [sizes[k] for k in order]
        if math.prod(shape) != total:
            raise self.fail(f"{total} values do not fill shape {shape}")
        return [x.reshape(x.shape[0], *shape)]


_PERMUTE_3D = {0: (1, 2, 3), 1: (1, 3, 2), 2: (2, 1, 3), 3: (2, 3, 1), 4: (3, 1, 2), 5: (3, 2, 1)}


class _Permute(Op):
    def __init__(self, layer: NcnnLayer) -> None:
        super().__init__(layer)
        self.order = _Params(layer).int(0, 0, 0, 5)

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        if x.dim() == 2:
            return [x]
        if x.dim() == 3:
            if self.order > 1:
                raise self.fail(f"order {self.order} of a 2-D blob")
            return [x.transpose(1, 2) if self.order == 1 else x]
        if x.dim() != 4:
            raise self.fail("4-D blobs are not supported")
        # ncnn names the output axes innermost first ("h c w": w' = h, h' = c, c' = w)
        inner_first = ["w h c", "h w c", "w c h", "c w h", "h c w", "c h w"][self.order].split()
        source = {"c": 1, "h": 2, "w": 3}
        dims = [source[name] for name in reversed(inner_first)]
        return [x.permute(0, *dims)]


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class LayerType:
    params: frozenset[int]
    build: Callable[[NcnnLayer], Op]
    inputs: tuple[int, int] = (1, 1)  # allowed count, (min, max)
    outputs: tuple[int, int] = (1, 1)
    weights: Callable[[NcnnLayer, BinReader], dict[str, np.ndarray]] | None = None
    weight_bytes: Callable[[NcnnLayer], int] | None = None


def _ids(*values: int) -> frozenset[int]:
    return frozenset(values)


def _fn(function: Callable[[Tensor], Tensor]) -> Callable[[NcnnLayer], Op]:
    return lambda layer: _Elementwise(layer, function)


def _relu(layer: NcnnLayer) -> Op:
    slope = _Params(layer).float(0, 0.0)
    return _Elementwise(layer, F.relu if slope == 0 else lambda x: F.leaky_relu(x, slope))


def _clip(layer: NcnnLayer) -> Op:
    p = _Params(layer)
    low, high = p.float(0, -3.4028234663852886e38), p.float(1, 3.4028234663852886e38)
    return _Elementwise(layer, lambda x: x.clamp(low, high))


def _hard_sigmoid(layer: NcnnLayer) -> Op:
    p = _Params(layer)
    alpha, beta = p.float(0, 0.2), p.float(1, 0.5)
    return _Elementwise(layer, lambda x: (x * alpha + beta).clamp(0.0, 1.0))


def _hard_swish_layer(layer: NcnnLayer) -> Op:
    p = _Params(layer)
    alpha, beta = p.float(0, 0.2), p.float(1, 0.5)
    return _Elementwise(layer, lambda x: _hard_swish(x, alpha, beta))


def _elu(layer: NcnnLayer) -> Op:
    alpha = _Params(layer).float(0, 0.1)
    return _Elementwise(layer, lambda x: torch.where(x < 0, alpha * (torch.exp(x) - 1), x))


def _dropout(layer: NcnnLayer) -> Op:
    scale = _Params(layer).float(0, 1.0)
    return _Elementwise(layer, (lambda x: x) if scale == 1.0 else lambda x: x * scale)


def _unary(layer: NcnnLayer) -> Op:
    p = _Params(layer)
    kind = p.int(0, 0, 0, 27)
    return _Elementwise(layer, _UNARY[kind])


def _scale(layer: NcnnLayer) -> Op:
    if "scale" not in layer.weights:
        return _ScaleByBlob(layer)
    return _ChannelAffine(layer, layer.weights["scale"], layer.weights.get("bias"))


def _scale_weights(layer: NcnnLayer, reader: BinReader) -> dict[str, np.ndarray]:
    p = _Params(layer)
    size = p.int(0, 0, -233, MAX_CHANNELS)
    bias = p.int(1, 0, 0, 1)
    if size == -233:
        if bias:
            raise p._fail(1, "(bias_term) with scales from a blob has no bias to read")
        return {}
    if size <= 0:
        raise p._fail(0, f"(scale_data_size) = {size}")
    weights = {"scale": reader.raw_fp32(size)}
    if bias:
        weights["bias"] = reader.raw_fp32(size)
    return weights


def _scale_bytes(layer: NcnnLayer) -> int:
    p = _Params(layer)
    size = p.int(0, 0, -233, MAX_CHANNELS)
    return 0 if size <= 0 else 4 * size * (1 + p.int(1, 0, 0, 1))


def _raw(key: int, name: str, copies: Sequence[str] = ()) -> tuple[Callable, Callable]:
    """Weights of ``len(copies) or 1`` raw float32 vectors whose length is parameter ``key``."""
    names = list(copies) or [name]

    def read(layer: NcnnLayer, reader: BinReader) -> dict[str, np.ndarray]:
        count = _Params(layer).int(key, 0, 1, MAX_CHANNELS)
        return {n: reader.raw_fp32(count) for n in names}

    def size(layer: NcnnLayer) -> int:
        return 4 * len(names) * _Params(layer).int(key, 0, 1, MAX_CHANNELS)

    return read, size


def _batch_norm(layer: NcnnLayer) -> Op:
    w = layer.weights
    eps = _Params(layer).float(1, 0.0)
    b = w["slope"] / np.sqrt(w["var"] + eps)
    a = w["bias"] - w["mean"] * b
    return _ChannelAffine(layer, b.astype(np.float32), a.astype(np.float32))


def _group(layer: NcnnLayer) -> int:
    return _Params(layer).int(7, 1, 1, MAX_CHANNELS)


_PRELU_READ, _PRELU_SIZE = _raw(0, "slope")
_BIAS_READ, _BIAS_SIZE = _raw(0, "bias")
_BN_READ, _BN_SIZE = _raw(0, "", ("slope", "mean", "var", "bias"))
_CONV_IDS = _ids(0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)
_DECONV_IDS = _ids(0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 28)
_ANY = (1, MAX_CHANNELS)

LAYER_TYPES: dict[str, LayerType] = {
    "Input": LayerType(_ids(0, 1, 2, 11), lambda layer: Op(layer), (0, 0)),
    "Split": LayerType(frozenset(), _Split, outputs=_ANY),
    "Noop": LayerType(frozenset(), _fn(lambda x: x)),
    "Convolution": LayerType(_CONV_IDS, lambda layer: ConvOp(layer, 1),
                             weights=_conv_weights, weight_bytes=_conv_bytes),
    "ConvolutionDepthWise": LayerType(_CONV_IDS | {7}, lambda layer: ConvOp(layer, _group(layer)),
                                      weights=_conv_weights, weight_bytes=_conv_bytes),
    "Deconvolution": LayerType(_DECONV_IDS, lambda layer: DeconvOp(layer, 1),
                               weights=_conv_weights, weight_bytes=_conv_bytes),
    "DeconvolutionDepthWise": LayerType(_DECONV_IDS | {7},
                                        lambda layer: DeconvOp(layer, _group(layer)),
                                        weights=_conv_weights, weight_bytes=_conv_bytes),
    "InnerProduct": LayerType(_ids(0, 1, 2, 8, 9, 10), _InnerProduct,
                              weights=_inner_product_weights, weight_bytes=_inner_product_bytes),
    "Pooling": LayerType(_ids(0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 18), PoolingOp),
    "Crop": LayerType(_ids(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15), CropOp, (1, 2)),
    "Concat": LayerType(_ids(0), _Concat, _ANY),
    "Eltwise": LayerType(_ids(0, 1), _Eltwise, (2, MAX_CHANNELS)),
    "BinaryOp": LayerType(_ids(0, 1, 2), _BinaryOp, (1, 2)),
    "UnaryOp": LayerType(_ids(0), _unary),
    "Scale": LayerType(_ids(0, 1), _scale, (1, 2),
                       weights=_scale_weights, weight_bytes=_scale_bytes),
    "Bias": LayerType(_ids(0), lambda layer: _ChannelAffine(layer, None, layer.weights["bias"]),
                      weights=_BIAS_READ, weight_bytes=_BIAS_SIZE),
    "BatchNorm": LayerType(_ids(0, 1), _batch_norm, weights=_BN_READ, weight_bytes=_BN_SIZE),
    "ReLU": LayerType(_ids(0), _relu),
    "PReLU": LayerType(_ids(0), _PReLU, weights=_PRELU_READ, weight_bytes=_PRELU_SIZE),
    "Sigmoid": LayerType(frozenset(), _fn(torch.sigmoid)),
    "TanH": LayerType(frozenset(), _fn(torch.tanh)),
    "Swish": LayerType(frozenset(), _fn(lambda x: x * torch.sigmoid(x))),
    "Mish": LayerType(frozenset(), _fn(F.mish)),
    "AbsVal": LayerType(frozenset(), _fn(torch.abs)),
    "Clip": LayerType(_ids(0, 1), _clip),
    "HardSigmoid": LayerType(_ids(0, 1), _hard_sigmoid),
    "HardSwish": LayerType(_ids(0, 1), _hard_swish_layer),
    "ELU": LayerType(_ids(0), _elu),
    "Dropout": LayerType(_ids(0), _dropout),
    "Interp": LayerType(_ids(0, 1, 2, 3, 4, 5, 6), InterpOp, (1, 2)),
    "PixelShuffle": LayerType(_ids(0, 1), _PixelShuffle),
    "Reorg": LayerType(_ids(0, 1), _Reorg),
    "Padding": LayerType(_ids(0, 1, 2, 3, 4, 5, 6, 7, 8), _Padding),
    "Reshape": LayerType(_ids(0, 1, 2, 11), _Reshape),
    "Permute": LayerType(_ids(0), _Permute),
    "Flatten": LayerType(frozenset(), _fn(lambda x: x.reshape(x.shape[0], -1))),
}  # fmt: skip


def check_layer(layer: NcnnLayer) -> None:
    """ValueError unless the layer's type, blob counts and parameter ids are known."""
    kind = LAYER_TYPES.get(layer.type)
    if kind is None:
        raise ValueError(f"unsupported ncnn layer type {layer.type!r} (layer {layer.name!r})")
    unknown = sorted(set(layer.params) - kind.params)
    if unknown:
        raise ValueError(
            f"layer {layer.name!r} ({layer.type}): unknown parameter id(s) "
            f"{', '.join(map(str, unknown))}"
        )
    for what, count, (low, high) in (
        ("inputs", len(layer.inputs), kind.inputs),
        ("outputs", len(layer.outputs), kind.outputs),
    ):
        if not low <= count <= high:
            allowed = str(low) if low == high else f"{low} to {high}"
            raise ValueError(
                f"layer {layer.name!r} ({layer.type}): {count} {what}, expected {allowed}"
            )


def max_weight_bytes(layer: NcnnLayer) -> int:
    """The most ``.bin`` bytes this layer's weights may take (checked before reading)."""
    kind = LAYER_TYPES[layer.type]
    return kind.weight_bytes(layer) if kind.weight_bytes else 0


def layer_weights(layer: NcnnLayer, reader: BinReader) -> dict[str, np.ndarray]:
    kind = LAYER_TYPES[layer.type]
    return kind.weights(layer, reader) if kind.weights else {}


def build_op(layer: NcnnLayer) -> Op:
    """The PyTorch op of a checked layer whose weights are read; ValueError if invalid."""
    op = LAYER_TYPES[layer.type].build(layer)
    for name, values in layer.weights.items():
        if not np.isfinite(values).all():
            raise ValueError(f"layer {layer.name!r} ({layer.type}): {name} holds NaN or infinity")
    return op
