"""A named model run directly from its original ncnn files (no PyTorch needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from srgan.zoo.descriptor import Described, ModelDescriptor


@dataclass
class NcnnModel(Described):
    descriptor: ModelDescriptor
    param: Path
    bin: Path
    precision: str = "fp32"  # "int8": convolutions quantized by ncnn (see zoo.ncnn_int8)
