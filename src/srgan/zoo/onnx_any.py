"""ONNX super-resolution models of any architecture: what the file says about its input,
and the checks a file from elsewhere must pass before ONNX Runtime may run it.

Community models come as ONNX with different conventions: NCHW or NHWC, values in 0-1 or
0-255, RGB or BGR, float32, float16 or uint8, and sometimes a fixed input size. What the
graph fixes is read from it (`inspect_onnx`): the layout from where the 1 or 3 channels
sit, the element type, a fixed height and width, and the value range and channel order
where the metadata names them (srgan's own `srgan.range`/`srgan.color_order`, or keys
such as `color_order`, `channel_order`, `input_range`). The rest is measured by running
the model (`srgan.inference.onnx_generic`) or given by the user, and `OnnxConventions`
holds the result; `to_model_input` / `from_model_output` apply it around a session.

The file is hostile input (`check_graph`): control flow and sub-graphs (Loop, If, Scan),
operators outside the standard domains (custom code), tensors stored outside the file,
random generators and operators that allocate from a constant shape larger than any
image are refused, with the operator named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from srgan.errors import BadInputError

if TYPE_CHECKING:
    import onnx

__all__ = [
    "GraphInput",
    "OnnxConventions",
    "check_graph",
    "from_model_output",
    "inspect_onnx",
    "to_model_input",
]

Layout = Literal["NCHW", "NHWC"]
ChannelOrder = Literal["RGB", "BGR"]
_ELEMENT_TYPES = {1: "float32", 10: "float16", 2: "uint8"}
_REFUSED_OPS = frozenset(
    {
        "Loop", "If", "Scan", "SequenceMap", "Bernoulli", "RandomNormal", "RandomNormalLike",
        "RandomUniform", "RandomUniformLike", "Multinomial", "StringNormalizer",
        "TfIdfVectorizer", "RegexFullMatch", "StringConcat", "StringSplit",
    }
)  # fmt: skip
_STANDARD_DOMAINS = ("", "ai.onnx", "com.microsoft")  # com.microsoft: ORT's own fusions
_ALLOCATING_OPS = frozenset({"ConstantOfShape", "Expand", "Tile", "Resize", "Upsample"})
MAX_CONSTANT_ELEMENTS = 1 << 28  # elements a constant shape may ask for (1 GiB of fp32)
MAX_RESIZE_FACTOR = 16
MAX_NODES = 100_000


@dataclass(frozen=True)
class GraphInput:
    """The image input and output of the graph, as declared."""

    input_name: str
    output_name: str
    element_type: str  # float32, float16, uint8
    layout: Layout | None  # None: the declared shape does not tell
    channels: int | None
    fixed_size: tuple[int, int] | None  # (height, width) when the graph fixes both


@dataclass(frozen=True)
class OnnxConventions:
    """How to feed the model: srgan's tiles are [1, C, h, w] float32 RGB in [0, 1]."""

    input_name: str
    output_name: str
    layout: Layout = "NCHW"
    value_range: float = 1.0  # 1.0 or 255.0
    channel_order: ChannelOrder = "RGB"
    element_type: str = "float32"
    channels: int = 3
    fixed_size: tuple[int, int] | None = None
    scale: int = 0  # measured by running the model; 0 until then

    def describe(self) -> str:
        size = f", fixed {self.fixed_size[1]}x{self.fixed_size[0]}" if self.fixed_size else ""
        span = "0-255" if self.value_range == 255 else "0-1"
        return (
            f"{self.layout} {self.element_type} {self.channel_order} {span}, "
            f"{self.channels} channels{size}, x{self.scale}"
        )

    def with_(self, **changes: object) -> OnnxConventions:
        return replace(self, **changes)  # type: ignore[arg-type]


def _dims(value_info: onnx.ValueInfoProto) -> list[int | None]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim]


def graph_input(path: Path, model: onnx.ModelProto) -> GraphInput:
    """The single image input and output; a one-line BadInputError for other graphs."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) < 1:
        raise BadInputError(
            f"{path}: not an image-to-image model: {len(inputs)} inputs (one image is needed)"
        )
    first, output = inputs[0], graph.output[0]
    element = _ELEMENT_TYPES.get(first.type.tensor_type.elem_type)
    if element is None:
        raise BadInputError(
            f"{path}: input {first.name!r} has element type "
            f"{first.type.tensor_type.elem_type}; srgan feeds float32, float16 or uint8 images"
        )
    dims = _dims(first)
    if len(dims) != 4:
        raise BadInputError(
            f"{path}: input {first.name!r} has {len(dims)} dimensions; an image model takes 4 "
            "(batch, channels, height, width, in either order)"
        )
    layout: Layout | None = None
    channels: int | None = None
    if dims[1] in (1, 3) and dims[3] not in (1, 3):
        layout, channels = "NCHW", dims[1]
    elif dims[3] in (1, 3) and dims[1] not in (1, 3):
        layout, channels = "NHWC", dims[3]
    elif dims[1] in (1, 3) and dims[3] in (1, 3):
        layout, channels = "NCHW", dims[1]  # a 1- or 3-pixel-wide fixed input is no image
    size_dims = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
    fixed = None
    if layout is not None and size_dims[0] and size_dims[1]:
        fixed = (int(size_dims[0]), int(size_dims[1]))
    return GraphInput(first.name, output.name, element, layout, channels, fixed)


def _metadata_hint(model: onnx.ModelProto, keys: tuple[str, ...]) -> str | None:
    for prop in model.metadata_props:
        if prop.key.lower().split(".")[-1] in keys:
            return prop.value.strip().lower()
    return None


def metadata_conventions(model: onnx.ModelProto) -> tuple[float | None, ChannelOrder | None]:
    """The value range and channel order the metadata names, where it does."""
    span = _metadata_hint(model, ("range", "input_range", "value_range", "pixel_range"))
    value_range = None
    if span is not None:
        if re.search(r"255", span):
            value_range = 255.0
        elif re.search(r"(^|[^0-9])1(\.0*)?$", span):
            value_range = 1.0
    order = _metadata_hint(model, ("color_order", "channel_order", "colour_order", "color_format"))
    channel_order: ChannelOrder | None = None
    if order is not None:
        channel_order = "BGR" if "bgr" in order else "RGB" if "rgb" in order else None
    return value_range, channel_order


def check_graph(path: Path, model: onnx.ModelProto) -> None:
    """Refuse what an image model never needs and a crafted file could abuse."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    refuse = lambda why: BadInputError(f"{path}: refused: {why}")  # noqa: E731
    if len(graph.node) > MAX_NODES:
        raise refuse(f"{len(graph.node)} operators (at most {MAX_NODES})")
    if len(model.functions):
        raise refuse("model-local functions")
    constants: dict[str, np.ndarray] = {}
    tensors = list(graph.initializer)
    for node in graph.node:
        if node.domain not in _STANDARD_DOMAINS:
            raise refuse(f"operator {node.domain}.{node.op_type} (a custom domain)")
        if node.op_type in _REFUSED_OPS:
            raise refuse(f"operator {node.op_type}")
        for attribute in node.attribute:
            if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise refuse(f"a sub-graph in {node.op_type}")
            if attribute.HasField("t"):
                tensors.append(attribute.t)
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise refuse("tensor data stored outside the file")
    for tensor in graph.initializer:
        if tensor.data_type == onnx.TensorProto.INT64 and int(np.prod(tensor.dims)) <= 8:
            constants[tensor.name] = numpy_helper.to_array(tensor)
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attribute in node.attribute:
                if attribute.HasField("t") and int(np.prod(attribute.t.dims)) <= 8:
                    constants[node.output[0]] = numpy_helper.to_array(attribute.t)
    for node in graph.node:
        if node.op_type in ("ConstantOfShape", "Expand", "Tile") and len(node.input) >= 1:
            shape_input = node.input[0] if node.op_type == "ConstantOfShape" else node.input[-1]
            shape = constants.get(shape_input)
            if shape is not None and _too_large(shape):
                raise refuse(f"{node.op_type} to a shape of {shape.tolist()}")
        elif node.op_type in ("Resize", "Upsample") and len(node.input) >= 2:
            name = (
                node.input[2] if node.op_type == "Resize" and len(node.input) > 2 else node.input[1]
            )
            factors = _float_constant(graph, name)
            if factors is not None and (np.any(factors > MAX_RESIZE_FACTOR) or np.any(factors < 0)):
                raise refuse(f"{node.op_type} by {factors.tolist()}")


def _too_large(shape: np.ndarray) -> bool:
    if not shape.size or not np.issubdtype(shape.dtype, np.integer):
        return False
    return (
        bool(np.any(shape < 0)) or float(np.prod(shape.astype(np.float64))) > MAX_CONSTANT_ELEMENTS
    )


def _float_constant(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    for tensor in graph.initializer:
        if tensor.name == name and int(np.prod(tensor.dims)) <= 8:
            return numpy_helper.to_array(tensor).astype(np.float64)
    for node in graph.node:
        if node.op_type == "Constant" and node.output and node.output[0] == name:
            for attribute in node.attribute:
                if attribute.HasField("t") and int(np.prod(attribute.t.dims)) <= 8:
                    return numpy_helper.to_array(attribute.t).astype(np.float64)
    return None


def inspect_onnx(
    path: Path,
    layout: Layout | None = None,
    value_range: float | None = None,
    channel_order: ChannelOrder | None = None,
) -> tuple[OnnxConventions, bool]:
    """The conventions the file fixes, with the given ones overriding it; and whether the
    value range is still unknown (to be measured)."""
    from srgan.zoo.onnx_weights import load_onnx

    model = load_onnx(path)
    check_graph(path, model)
    declared = graph_input(path, model)
    chosen_layout = layout or declared.layout
    if chosen_layout is None:
        raise BadInputError(
            f"{path}: the input's shape does not say where the channels are: give "
            "--onnx-layout nchw or nhwc"
        )
    channels = declared.channels if layout is None or layout == declared.layout else None
    if channels is None:
        dims = _dims(next(i for i in model.graph.input if i.name == declared.input_name))
        channels = dims[1] if chosen_layout == "NCHW" else dims[3]
    if channels not in (1, 3):
        raise BadInputError(
            f"{path}: the input has {channels or 'a free number of'} channels in "
            f"{chosen_layout}; srgan runs gray (1) and colour (3) models"
        )
    fixed = declared.fixed_size
    if layout is not None and layout != declared.layout:
        dims = _dims(next(i for i in model.graph.input if i.name == declared.input_name))
        size = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
        fixed = (int(size[0]), int(size[1])) if size[0] and size[1] else None
    meta_range, meta_order = metadata_conventions(model)
    if declared.element_type == "uint8":
        meta_range = 255.0
    chosen_range = value_range or meta_range
    conventions = OnnxConventions(
        declared.input_name,
        declared.output_name,
        chosen_layout,
        chosen_range or 1.0,
        channel_order or meta_order or "RGB",
        declared.element_type,
        int(channels),
        fixed,
    )
    return conventions, chosen_range is None


_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}


def to_model_input(tile: np.ndarray, c: OnnxConventions) -> np.ndarray:
    """srgan's [1, C, h, w] float32 RGB tile in [0, 1] -> what the model takes."""
    x = tile
    if c.channel_order == "BGR" and x.shape[1] == 3:
        x = x[:, ::-1]
    if c.value_range != 1.0:
        x = x * np.float32(c.value_range)
    if c.layout == "NHWC":
        x = x.transpose(0, 2, 3, 1)
    if c.element_type == "uint8":
        x = np.clip(np.rint(x), 0, 255)
    return np.ascontiguousarray(x, dtype=_DTYPES[c.element_type])


def from_model_output(output: np.ndarray, c: OnnxConventions) -> np.ndarray:
    """The model's output -> [1, C, H, W] float32 RGB in [0, 1] (not clamped)."""
    y = np.asarray(output)
    if y.ndim != 4:
        raise BadInputError(f"the model gave a {y.ndim}-dimensional output, not an image")
    if c.layout == "NHWC":
        y = y.transpose(0, 3, 1, 2)
    y = y.astype(np.float32)
    if c.value_range != 1.0:
        y = y / np.float32(c.value_range)
    if c.channel_order == "BGR" and y.shape[1] == 3:
        y = y[:, ::-1]
    return np.ascontiguousarray(y)
