"""A named model run directly from its original ncnn files (no PyTorch needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from srgan.zoo.descriptor import ModelDescriptor


@dataclass
class NcnnModel:
    descriptor: ModelDescriptor
    param: Path
    bin: Path

    @property
    def scale(self) -> float:
        return self.descriptor.scale

    @property
    def name(self) -> str:
        return self.descriptor.name
