"""A named model run directly from its original ncnn files (no PyTorch needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from srgan.zoo.descriptor import Described, ModelDescriptor
from srgan.zoo.ncnn_conventions import Conventions


@dataclass
class NcnnModel(Described):
    """``conventions``: what the family's reference program does around the network (see
    `ncnn_conventions`); None for files that take and give the image as is."""

    descriptor: ModelDescriptor
    param: Path
    bin: Path
    conventions: Conventions | None = None
