"""ncnn models made ready for ncnn's int8 convolutions, without ncnn's C++ tools.

ncnn runs a convolution in int8 when its `.param` line sets `8=` (int8_scale_term) and
its weights in `.bin` are followed by two scale arrays: one per output channel for the
weights, one for the input blob (ncnn `Convolution::load_model`). Given float weights,
ncnn quantizes them itself when the network is loaded (`create_pipeline`), so the
`ncnn2table`/`ncnn2int8` tools (not in the PyPI wheel) are not needed: this module
rewrites the `.param` with the key and the `.bin` with fp32 weights and the scales.

Scales map the largest magnitude to 127: weights per output channel from the weights,
each convolution's input from its largest value over calibration images (MinMax).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan.errors import BadInputError

if TYPE_CHECKING:  # the parser imports PyTorch: only a calibration needs it
    from srgan.zoo.ncnn_format import NcnnParam

INT8_VERSION = 1
_INT8_SCALE_TERM = 8


def convolution_inputs(model: NcnnParam) -> dict[str, str]:
    """Each convolution's name and the blob it reads (what calibration measures)."""
    return {layer.name: layer.inputs[0] for layer in model.layers if layer.type == "Convolution"}


def read_model(param: Path, weights: Path) -> NcnnParam:
    from srgan.zoo.ncnn_format import read_ncnn

    model = read_ncnn(param, weights)
    if not convolution_inputs(model):
        raise BadInputError(f"{param}: no convolutions to quantize")
    return model


def int8_param_text(param: Path) -> str:
    """The `.param` text with int8_scale_term on every convolution."""
    lines = []
    for line in param.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "Convolution":
            if any(field.startswith(f"{_INT8_SCALE_TERM}=") for field in fields):
                raise BadInputError(f"{param}: already quantized")
            line = f"{line} {_INT8_SCALE_TERM}=1"
        lines.append(line)
    return "\n".join(lines) + "\n"


def int8_bin(model: NcnnParam, input_maxima: Mapping[str, float]) -> bytes:
    """The `.bin` for `int8_param_text`: every layer's weights in order, in fp32, each
    convolution's followed by its weight and input scales."""
    out = bytearray()
    for layer in model.layers:
        if layer.type == "Convolution":
            weight = layer.weights["weight"].astype("<f4")
            outputs = layer.int_param(0, 0)
            out += struct.pack("<I", 0) + weight.tobytes()  # tag 0: plain fp32
            if "bias" in layer.weights:
                out += layer.weights["bias"].astype("<f4").tobytes()
            largest = np.abs(weight.reshape(outputs, -1)).max(axis=1)
            weight_scales = np.where(largest > 0, 127.0 / np.maximum(largest, 1e-30), 1.0)
            out += weight_scales.astype("<f4").tobytes()
            out += np.array([127.0 / max(input_maxima[layer.name], 1e-6)], "<f4").tobytes()
        elif layer.type == "PReLU":
            out += layer.weights["slope"].astype("<f4").tobytes()
        elif layer.weights:
            raise BadInputError(f"layer {layer.name} ({layer.type}): weights not understood")
    return bytes(out)
