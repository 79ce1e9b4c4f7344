"""ONNX files given as `--model FILE.onnx`: only files srgan wrote, checked before use.

An ONNX file is a program for ONNX Runtime. A crafted one could read other files (external
tensor data names a path), allocate without bound (ConstantOfShape, Expand, a Resize by
1000) or loop (Loop, If, Scan). So srgan runs only what its own exports and quantization
produce: one [1, C, h, w] input and output, operators from a short list of per-pixel and
convolution operators, upsampling by small constant factors, all data inside the file,
and srgan's metadata naming the model's scale and channels. A Real-CUGAN / waifu2x /
RealSR model converted by `srgan convert` also records its family's conventions (padding,
crop), which the runner applies around the network as for the named model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from srgan.errors import BadInputError
from srgan.zoo.digests import file_digest
from srgan.zoo.ncnn_conventions import CONVENTIONS_KEY, conventions_from_json
from srgan.zoo.onnx_model import DESCRIPTOR_KEY, PRECISION_KEY
from srgan.zoo.sources import ModelSource, descriptor_from_dict

if TYPE_CHECKING:
    import onnx

MAX_FILE_BYTES = 1 << 30
MAX_NODES = 20000
MAX_UPSAMPLE = 8
ALLOWED_OPS = frozenset(
    {
        "Add",
        "BatchNormalization",
        "Clip",
        "Concat",
        "Constant",
        "Conv",
        "ConvTranspose",
        "DepthToSpace",
        "DequantizeLinear",
        "Div",
        "Gather",
        "Gemm",
        "Identity",
        "LeakyRelu",
        "Mul",
        "PRelu",
        "QuantizeLinear",
        "ReduceMean",
        "Relu",
        "Reshape",
        "Resize",
        "Shape",
        "Sigmoid",
        "Slice",
        "Sub",
        "Tanh",
        "Unsqueeze",
    }
)
PRECISIONS = ("fp32", "int8")


def onnx_file_source(path: Path) -> ModelSource:
    """The source of an ONNX file srgan wrote; BadInputError saying why any other is refused."""
    model = _load_checked(path)
    props = {p.key: p.value for p in model.metadata_props}
    if DESCRIPTOR_KEY not in props:
        raise BadInputError(
            f"{path}: not an ONNX file written by srgan (no {DESCRIPTOR_KEY} metadata); "
            "srgan runs the ONNX files of `srgan quantize` and its own exports"
        )
    try:
        descriptor = descriptor_from_dict(json.loads(props[DESCRIPTOR_KEY]))
    except ValueError:
        descriptor = None
    precision = props.get(PRECISION_KEY, "fp32")
    if descriptor is None or descriptor.in_channels not in (1, 3) or precision not in PRECISIONS:
        raise BadInputError(f"{path}: its srgan metadata is damaged; quantize or export it again")
    if descriptor.scale != int(descriptor.scale) or descriptor.temporal:
        raise BadInputError(f"{path}: its srgan metadata is damaged; quantize or export it again")
    conventions = None
    if CONVENTIONS_KEY in props:
        damaged = BadInputError(f"{path}: its srgan metadata is damaged; convert it again")
        try:
            conventions = conventions_from_json(props[CONVENTIONS_KEY])
        except ValueError:
            raise damaged from None
        if conventions.scale != descriptor.scale:
            raise damaged
    _check_graph(path, model, descriptor.in_channels)
    identity = f"onnx-{path.stem[:40]}-{file_digest(path)[:16]}".replace(" ", "_")
    return ModelSource(
        path.stem,
        identity,
        descriptor,
        onnx_file=path,
        onnx_precision=precision,
        conventions=conventions,
    )


def _load_checked(path: Path) -> onnx.ModelProto:
    import onnx

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror})") from exc
    if size > MAX_FILE_BYTES:
        raise BadInputError(f"{path}: {size / 2**30:.1f} GiB is too large for an ONNX model")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise BadInputError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from exc


def _check_graph(path: Path, model: onnx.ModelProto, channels: int) -> None:
    import onnx

    graph = model.graph
    refuse = lambda why: BadInputError(f"{path}: refused: {why}")  # noqa: E731
    if len(model.functions):
        raise refuse("model-local functions")
    if len(graph.node) > MAX_NODES:
        raise refuse(f"{len(graph.node)} operators (at most {MAX_NODES})")
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise refuse("an image model has one input and one output")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4 or dims[1].dim_value != channels:
        raise refuse(f"the input is not [1, {channels}, height, width]")
    tensors = list(graph.initializer)
    constants: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type not in ALLOWED_OPS or node.domain not in ("", "ai.onnx"):
            raise refuse(f"operator {node.domain + '.' if node.domain else ''}{node.op_type}")
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH or len(attribute.graphs):
                raise refuse("sub-graphs")
            if attribute.HasField("t"):
                tensors.append(attribute.t)
                if node.op_type == "Constant" and node.output:
                    constants[node.output[0]] = attribute.t
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise refuse("tensor data outside the file")
    for node in graph.node:
        _check_growth(node, constants, refuse)


def _check_growth(node, constants, refuse) -> None:
    """Operators that enlarge tensors must do so by small constant factors."""
    import numpy as np
    from onnx import numpy_helper

    if node.op_type == "DepthToSpace":
        block = next((a.i for a in node.attribute if a.name == "blocksize"), 0)
        if not 1 <= block <= MAX_UPSAMPLE:
            raise refuse(f"DepthToSpace by {block}")
    elif node.op_type == "Resize":
        scales = node.input[2] if len(node.input) > 2 else ""
        sizes = node.input[3] if len(node.input) > 3 else ""
        if sizes or scales not in constants:
            raise refuse("Resize without constant scales")
        values = numpy_helper.to_array(constants[scales]).astype(np.float64).ravel()
        if not (len(values) == 4 and np.all(values > 0) and np.all(values <= MAX_UPSAMPLE)):
            raise refuse(f"Resize by {values.tolist()}")
    elif node.op_type == "Conv":
        for attribute in node.attribute:
            if attribute.name in ("pads", "dilations", "strides") and any(
                not 0 <= v <= 64 for v in attribute.ints
            ):
                raise refuse(f"Conv {attribute.name} {list(attribute.ints)}")
    elif node.op_type == "ConvTranspose":  # upsamples by its strides
        for attribute in node.attribute:
            if attribute.name == "output_shape":
                raise refuse("ConvTranspose with an output_shape")
            limit = MAX_UPSAMPLE if attribute.name == "strides" else 64
            if attribute.name in ("pads", "dilations", "strides", "output_padding") and any(
                not 0 <= v <= limit for v in attribute.ints
            ):
                raise refuse(f"ConvTranspose {attribute.name} {list(attribute.ints)}")
