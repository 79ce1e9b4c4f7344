"""A named model run directly from its original ncnn files (no PyTorch needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srgan.zoo.descriptor import Described, ModelDescriptor
from srgan.zoo.ncnn_conventions import Conventions


@dataclass
class NcnnModel(Described):
    """``conventions``: what the family's reference program does around the network (see
    `ncnn_conventions`); None for files that take and give the image as is.
    ``statistics``: per thread, whole-image results of the global pools that replace the
    network's own while an image is tiled (see `srgan.zoo.global_stats`)."""

    descriptor: ModelDescriptor
    param: Path
    bin: Path
    precision: str = "fp32"  # "fp16": ncnn stores in fp16; "int8": see zoo.ncnn_int8
    conventions: Conventions | None = None
    statistics: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
