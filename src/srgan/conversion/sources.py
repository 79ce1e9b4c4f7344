"""What a conversion starts from: a named model or a model file, read into a `Network`,
and how to run it as it is (its own runtime) to validate the result."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from srgan.conversion.formats import files_of, format_of, ncnn_weights
from srgan.conversion.network import Network
from srgan.errors import BadInputError

if TYPE_CHECKING:
    from srgan.zoo.ncnn_families import NcnnVariant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """`format` is the format of the files that define the model; for a named model those
    are its original ncnn files (`files`), which validation runs with the ncnn runtime."""

    name: str
    format: str
    files: tuple[Path, ...]
    named: bool = False
    variant: NcnnVariant | None = None  # a Real-CUGAN / waifu2x / RealSR model

    @property
    def path(self) -> Path:
        return self.files[0]


def resolve(text: str) -> Source:
    """A named model (`anime-video`), a model file, or a training checkpoint/run folder."""
    from srgan.zoo.pretrained import PRETRAINED, ncnn_files

    if text in PRETRAINED:
        param, weights = ncnn_files(PRETRAINED[text])
        return Source(text, "ncnn", (param, weights), named=True)
    if text == "bicubic":
        raise BadInputError("bicubic has no weights to convert")
    from srgan.zoo.ncnn_families import find_variant

    variant = find_variant(text)
    if variant is not None and not Path(text).exists():
        return Source(variant.name, "ncnn", variant.files(), named=True, variant=variant)
    path = Path(text)
    if path.is_dir():
        from srgan.zoo.run_folders import generator_in

        generator = generator_in(path)
        return Source(path.name, "safetensors", (generator,))
    if not path.exists():
        from srgan.zoo.pretrained import PRETRAINED

        raise BadInputError(f"{path}: no such model file (named models: {', '.join(PRETRAINED)})")
    fmt = format_of(path)
    files = tuple(files_of(path, fmt))
    if fmt == "ncnn" and not ncnn_weights(path).is_file():
        raise BadInputError(f"{path}: its weights {ncnn_weights(path).name} are not beside it")
    return Source(path.stem, fmt, files)


def read_network(source: Source) -> Network:
    """The source's architecture, hyper-parameters and float32 weights."""
    if source.variant is not None:  # RealSR: an RRDBNet (other families are no network)
        return _read_ncnn(source.name, source.files[0], source.files[1])
    if source.named:
        from srgan.zoo.pretrained import PRETRAINED, load_pretrained_weights

        weights = load_pretrained_weights(PRETRAINED[source.name])
        return Network(
            source.name, weights.architecture, dict(weights.hyperparameters), weights.state_dict
        )
    path = source.path
    if source.format == "ncnn":
        return _read_ncnn(source.name, path, ncnn_weights(path))
    if source.format == "onnx":
        from srgan.zoo.onnx_weights import onnx_to_state_dict

        architecture, hp, state = onnx_to_state_dict(path)
        return Network(source.name, architecture, hp, state)
    from srgan.zoo.architectures import BY_NAME, detect
    from srgan.zoo.weight_files import read_state_dict

    state = read_state_dict(path)
    found = detect(state)
    if found is None:
        raise BadInputError(
            f"{path}: weights match no supported architecture ({', '.join(BY_NAME)})"
        )
    arch, hp = found
    return Network(source.name, arch.name, hp, {k: v.float() for k, v in state.items()})


def _read_ncnn(name: str, param: Path, weights: Path) -> Network:
    """RRDBNet and SRVGGNetCompact graphs are matched layer by layer; other graphs srgan
    wrote (SRResNet) are read by their layers' names, which are the module names."""
    from srgan.zoo.ncnn_format import ncnn_to_state_dict

    try:
        architecture, hp, state = ncnn_to_state_dict(param, weights)
        return Network(name, architecture, dict(hp), state)
    except BadInputError as structural:
        network = _ncnn_by_names(name, param, weights)
        if network is None:
            raise structural from None
        return network


def _ncnn_by_names(name: str, param: Path, weights: Path) -> Network | None:
    import numpy as np
    import torch

    from srgan.zoo.architectures import detect
    from srgan.zoo.ncnn_format import read_ncnn

    state: dict[str, torch.Tensor] = {}
    for layer in read_ncnn(param, weights).layers:
        if layer.type == "Convolution":
            out_ch, kernel = layer.int_param(0, 0), layer.int_param(1, 0)
            flat = layer.weights["weight"]
            if out_ch <= 0 or kernel <= 0 or flat.size % (out_ch * kernel * kernel):
                return None
            shape = (out_ch, flat.size // (out_ch * kernel * kernel), kernel, kernel)
            state[f"{layer.name}.weight"] = torch.from_numpy(flat.reshape(shape).copy())
            if "bias" in layer.weights:
                state[f"{layer.name}.bias"] = torch.from_numpy(layer.weights["bias"].copy())
        elif layer.type == "PReLU":
            state[f"{layer.name}.weight"] = torch.from_numpy(layer.weights["slope"].copy())
        elif layer.type == "BatchNorm":
            parts = [layer.weights.get(k) for k in ("slope", "mean", "var", "bias")]
            if any(p is None for p in parts):
                return None
            for key, value in zip(("weight", "running_mean", "running_var", "bias"), parts,
                                  strict=True):  # fmt: skip
                state[f"{layer.name}.{key}"] = torch.from_numpy(np.array(value, np.float32))
    found = detect(state)
    if found is None:
        return None
    arch, hp = found
    log.info("%s: read %s by its layer names", param, arch.name)
    return Network(name, arch.name, hp, state)
