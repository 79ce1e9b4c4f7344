"""A network as plain data: architecture, hyper-parameters and a state dict, the common
form every weight format is read into and written from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from srgan.zoo.descriptor import LoadedModel


@dataclass(frozen=True)
class Network:
    name: str
    architecture: str
    hyperparameters: dict[str, int | str]
    state: dict[str, torch.Tensor]

    @cached_property
    def loaded(self) -> LoadedModel:
        """The eval-mode PyTorch module (checked: the weights load with strict=True), built
        once; callers that change it (half precision) work on a copy."""
        from srgan.zoo.registry import build

        return build(self.name, self.architecture, dict(self.hyperparameters), dict(self.state))
