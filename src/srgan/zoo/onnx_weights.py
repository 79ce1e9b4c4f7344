"""Read the weights of an ONNX file back into a PyTorch state dict.

PyTorch's exporter keeps parameter names as initializer names (without constant folding:
every name; with it, most), routes shared constants through ``Identity`` nodes, and
writes nodes in execution order. A file is read back when

* srgan wrote it: its metadata names the architecture and hyper-parameters, the weights
  are found by name, and any left unnamed by an exporter are taken in the order the
  network uses them; or
* its initializer names are a state dict srgan recognises (Real-ESRGAN's exports), the
  slopes of PReLU layers that constant folding renamed again taken in node order.

Anything else is an unrecognised graph: a one-line `BadInputError`. Such files still run
with ONNX Runtime as they are (`--model FILE.onnx`); they cannot become PyTorch weights.
The file is hostile input: its size is bounded, tensors stored outside it are refused,
and nothing in it is executed here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from srgan.errors import BadInputError

if TYPE_CHECKING:
    import onnx

__all__ = [
    "ARCHITECTURE_KEY",
    "HYPERPARAMETERS_KEY",
    "MAX_ONNX_BYTES",
    "load_onnx",
    "metadata",
    "onnx_to_state_dict",
]

ARCHITECTURE_KEY = "srgan.architecture"
HYPERPARAMETERS_KEY = "srgan.hyperparameters"
MAX_ONNX_BYTES = 2 << 30  # protobuf's own limit
MAX_NODES = 100_000
_PASS_THROUGH = ("Identity", "Unsqueeze", "Reshape", "Squeeze", "Cast")


def load_onnx(path: Path) -> onnx.ModelProto:
    """The model, read without its external data (refused), or a one-line error."""
    import onnx

    try:
        if not path.is_file():
            raise BadInputError(f"{path}: not a regular file (an .onnx model is expected)")
        size = path.stat().st_size
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror})") from exc
    if size > MAX_ONNX_BYTES:
        raise BadInputError(f"{path}: {size / 2**30:.1f} GiB is too large for an ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise BadInputError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from exc
    if len(model.graph.node) > MAX_NODES:
        raise BadInputError(f"{path}: {len(model.graph.node)} operators is too many")
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise BadInputError(f"{path}: refused: tensor data stored outside the file")
    return model


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {prop.key: prop.value for prop in model.metadata_props}


def _tensors(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and Constant outputs by name, and names that Identity nodes give them."""
    from onnx import numpy_helper

    values: dict[str, np.ndarray] = {}
    for tensor in model.graph.initializer:
        values[tensor.name] = numpy_helper.to_array(tensor)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attribute in node.attribute:
                if attribute.name == "value" and attribute.HasField("t"):
                    values[node.output[0]] = numpy_helper.to_array(attribute.t)
        elif node.op_type == "Identity" and node.input and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


def _source_tensor(name: str, producers: Mapping[str, onnx.NodeProto], named: set[str]) -> str:
    """Follow shape-only operators (Unsqueeze, Reshape...) back to the tensor they read."""
    seen = 0
    while name not in named and name in producers and seen < 8:
        node = producers[name]
        if node.op_type not in _PASS_THROUGH or not node.input:
            break
        name, seen = node.input[0], seen + 1
    return name


def _weights_in_order(model: onnx.ModelProto, values: Mapping[str, np.ndarray]) -> list[str]:
    """The names of the weight tensors of Conv, PRelu and BatchNormalization nodes, in the
    order the graph runs them (weight, bias; slope; scale, B, mean, var)."""
    producers = {out: node for node in model.graph.node for out in node.output}
    named = set(values)
    order: list[str] = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            inputs = list(node.input[1:3])
        elif node.op_type == "PRelu":
            inputs = list(node.input[1:2])
        elif node.op_type == "BatchNormalization":
            inputs = list(node.input[1:5])
        else:
            continue
        for name in inputs:
            if name:
                order.append(_source_tensor(name, producers, named))
    return order


def _execution_order(module: torch.nn.Module, channels: int, temporal: bool) -> list[str]:
    """State-dict keys of the weights of Conv2d, PReLU and BatchNorm2d layers in the order a
    forward pass uses them (run on meta tensors: no memory, no arithmetic)."""
    order: list[str] = []
    names = {id(m): name for name, m in module.named_modules()}

    def hook(layer: torch.nn.Module, _inputs: object) -> None:
        prefix = names[id(layer)]
        if isinstance(layer, torch.nn.Conv2d):
            order.append(f"{prefix}.weight")
            if layer.bias is not None:
                order.append(f"{prefix}.bias")
        elif isinstance(layer, torch.nn.PReLU):
            order.append(f"{prefix}.weight")
        else:
            order.extend(f"{prefix}.{n}" for n in ("weight", "bias", "running_mean", "running_var"))

    handles = [
        m.register_forward_pre_hook(hook)
        for m in module.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.PReLU, torch.nn.BatchNorm2d))
    ]
    try:
        meta = module.to("meta")
        shape = (1, 3, channels, 16, 16) if temporal else (1, channels, 16, 16)
        with torch.no_grad():
            meta(torch.empty(shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return order


def _as_state(values: Mapping[str, np.ndarray], keys: list[str]) -> dict[str, torch.Tensor]:
    return {
        key: torch.from_numpy(np.array(values[key], dtype=np.float32, copy=True)) for key in keys
    }


def _fit(state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> None:
    """Reshape tensors whose size matches (exporters store PReLU slopes as [C, 1, 1])."""
    for key, tensor in state.items():
        want = expected.get(key)
        if want is not None and tuple(tensor.shape) != tuple(want.shape):
            if tensor.numel() != want.numel():
                raise BadInputError(
                    f"{key} has shape {tuple(tensor.shape)}, the network {tuple(want.shape)}"
                )
            state[key] = tensor.reshape(want.shape)


def _from_metadata(
    path: Path, model: onnx.ModelProto, values: Mapping[str, np.ndarray], props: dict[str, str]
) -> tuple[str, dict[str, int | str], dict[str, torch.Tensor]]:
    from srgan.zoo.architectures import BY_NAME

    architecture = props[ARCHITECTURE_KEY]
    try:
        hp = json.loads(props.get(HYPERPARAMETERS_KEY, "{}"))
    except json.JSONDecodeError:
        hp = None
    arch = BY_NAME.get(architecture)
    if arch is None or not isinstance(hp, dict):
        raise BadInputError(f"{path}: its srgan metadata is damaged ({architecture!r})")
    try:
        with torch.device("meta"):
            module = arch.build(**hp)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"{path}: its srgan metadata is damaged ({exc})") from None
    expected = module.state_dict()
    wanted = [k for k in expected if not k.endswith("num_batches_tracked")]
    state = _as_state(values, [k for k in wanted if k in values])
    missing = [k for k in wanted if k not in state]
    if missing:  # renamed by an exporter: take them in the order the network uses them
        order = _execution_order(module, arch.in_channels(hp), arch.temporal)
        found = _weights_in_order(model, values)
        if len(order) != len(found):
            raise BadInputError(
                f"{path}: unrecognised graph: {len(found)} weights where a {architecture} "
                f"has {len(order)}"
            )
        for key, name in zip(order, found, strict=True):
            if key not in state and name in values:
                state[key] = torch.from_numpy(np.array(values[name], dtype=np.float32))
        missing = [k for k in wanted if k not in state]
        if missing:
            raise BadInputError(f"{path}: unrecognised graph: no weights for {missing[0]}")
    _fit(state, expected)
    return architecture, hp, state


def _from_names(
    path: Path, model: onnx.ModelProto, values: Mapping[str, np.ndarray]
) -> tuple[str, dict[str, int | str], dict[str, torch.Tensor]]:
    from srgan.zoo.architectures import detect

    named = {k: v for k, v in values.items() if not k.startswith(("onnx::", "/")) and "." in k}
    state = _as_state(named, list(named))
    found = detect(state)
    if found is None:
        # Constant folding renames PReLU slopes: give them the names of the layers they
        # follow (SRVGGNetCompact: body.{2i+1} after convolution body.{2i}).
        slopes = _prelu_slopes(model, values)
        convs = sorted(
            int(k.split(".")[1]) for k in state if k.startswith("body.") and k.endswith(".weight")
        )
        if slopes and len(slopes) == len(convs) - 1:
            for index, slope in zip(convs, slopes, strict=False):
                state[f"body.{index + 1}.weight"] = torch.from_numpy(
                    np.array(slope, dtype=np.float32).reshape(-1)
                )
            found = detect(state)
    if found is None:
        raise BadInputError(
            f"{path}: unrecognised graph: its weights are neither a state dict srgan knows "
            "nor marked by srgan (run it as it is with --model FILE.onnx)"
        )
    arch, hp = found
    with torch.device("meta"):
        expected = arch.build(**hp).state_dict()
    _fit(state, expected)
    return arch.name, hp, state


def _prelu_slopes(model: onnx.ModelProto, values: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    producers = {out: node for node in model.graph.node for out in node.output}
    slopes = []
    for node in model.graph.node:
        if node.op_type == "PRelu" and len(node.input) > 1:
            name = _source_tensor(node.input[1], producers, set(values))
            if name in values:
                slopes.append(values[name])
    return slopes


def onnx_to_state_dict(path: Path) -> tuple[str, dict[str, int | str], dict[str, torch.Tensor]]:
    """(architecture, hyper-parameters, float32 state dict) of an ONNX file holding a
    network srgan builds, or a one-line BadInputError."""
    model = load_onnx(path)
    values = _tensors(model)
    props = metadata(model)
    if ARCHITECTURE_KEY in props:
        return _from_metadata(path, model, values, props)
    return _from_names(path, model, values)
