"""What a recipe gives the engine: its networks, its phases, `train_step` and validation.

`train_step(batch, phase, nets)` is a generator that yields one `Loss` per network update
of the phase, in the phase's order (`Phase.updates`). The engine runs it once per
micro-batch and, between two yields, back-propagates the loss of every micro-batch and
steps that network's optimizer (gradient accumulation, mixed precision, DDP, clipping):

    def train_step(self, batch, phase, nets):
        lr, hr = batch
        fake = nets.train("generator")(lr)
        yield Loss("generator", pixel(fake, hr), {"pixel": ...})
        # the generator has been updated here; fake.detach() is still valid
        yield Loss("discriminator", ..., {...})

While a network is updated only its own trainable parameters require gradients, so a
recipe never freezes or unfreezes anything itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from srgan.training.config import RunConfig, ScheduleConfig
from srgan.training.engine.data_order import EpochDataset
from srgan.training.engine.stability import ModelEMA
from srgan.zoo.descriptor import LoadedModel

Weights = dict[str, dict[str, torch.Tensor]]
Record = dict[str, Any]


@dataclass(frozen=True)
class Loss:
    network: str  # whose optimizer steps on this loss
    value: torch.Tensor  # a scalar to minimise
    logs: dict[str, float] = field(default_factory=dict)  # logged (unweighted) terms


@dataclass(frozen=True)
class Phase:
    name: str
    steps: int
    updates: tuple[str, ...]  # networks updated at each step, in order
    lr: float
    schedule: ScheduleConfig


@dataclass(frozen=True)
class Validation:
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float
    image: np.ndarray | None = None  # bicubic | model | HR rows, HWC uint8

    def record(self, step: int) -> Record:
        return {
            "step": step,
            "val_psnr": self.psnr,
            "val_ssim": self.ssim,
            "val_bicubic_psnr": self.bicubic_psnr,
            "val_bicubic_ssim": self.bicubic_ssim,
        }


class Networks:
    """The networks of a run: `plain(name)` is the module itself (saved, validated,
    called when its gradients are not wanted), `train(name)` the one to train through
    (wrapped by DistributedDataParallel under torchrun)."""

    def __init__(self, plain: dict[str, nn.Module], wrapped: dict[str, nn.Module]) -> None:
        self._plain = plain
        self._wrapped = wrapped
        self.ema: ModelEMA | None = None

    def plain(self, name: str) -> nn.Module:
        return self._plain[name]

    def train(self, name: str) -> nn.Module:
        return self._wrapped[name]

    def names(self) -> list[str]:
        return list(self._plain)

    def averaged(self, name: str = "generator") -> nn.Module:
        """The moving average of the network when EMA is on, else the network."""
        return (
            self.ema.module if self.ema is not None and name == "generator" else self._plain[name]
        )


class Recipe(ABC):
    kind: ClassVar[str]  # "image" or "video": names the recipe in checkpoints
    command: ClassVar[str]  # the command that runs it, for status files
    config: RunConfig

    @abstractmethod
    def phases(self) -> list[Phase]: ...

    def prepare(self) -> None:  # noqa: B027  (optional: most recipes have data to check)
        """Check the data before training starts (find the files; fail fast)."""

    def has_validation(self) -> bool:
        return self.config.data.val is not None

    @abstractmethod
    def build_networks(self, crop: int) -> dict[str, nn.Module]:
        """Fresh networks (CPU, training mode); "generator" is the one to export."""

    @abstractmethod
    def dataset(self, crop: int) -> EpochDataset: ...

    @abstractmethod
    def example_batch(self, batch_size: int, crop: int) -> Any:
        """Random data shaped like one micro-batch (autotune measures a step on it)."""

    @abstractmethod
    def train_step(self, batch: Any, phase: str, nets: Networks) -> Iterator[Loss]: ...

    @abstractmethod
    def inference_model(self, module: nn.Module) -> LoadedModel:
        """The generator (or its average) as a model that upscales [0, 1] images."""

    @abstractmethod
    def validate(self, model: LoadedModel, step: int) -> Validation | None:
        """Score the model on the validation set; None when there is none."""

    @abstractmethod
    def export(self, nets: Networks) -> Weights:
        """The weights files of a checkpoint: `generator` loads with `srgan upscale -m`."""

    def crop_multiple(self) -> int:
        """Autotune's crops are multiples of this."""
        return self.config.data.scale

    def probe_config(self) -> dict[str, Any]:
        """This run's config for an autotune probe: the same networks, no weights to load."""
        return self.config.model_dump(mode="json")

    def after_step(
        self, step: int, logs: dict[str, float]
    ) -> list[tuple[Record, dict[str, float]]]:
        """Events after a step (records and their TensorBoard scalars); `logs` are the
        step's mean losses over micro-batches and processes."""
        return []

    def step_values(self) -> dict[str, float]:
        """Values logged with every step besides the losses (e.g. current loss weights)."""
        return {}

    def scalars(self, record: Record) -> dict[str, float]:
        """Extra TensorBoard scalars of a step record."""
        return {}

    def summary(self, record: Record) -> str:
        """The loss line of training_status.txt."""
        losses = {k: v for k, v in record.items() if k in self.loss_names()}
        return ", ".join(f"{k} {v:.4g}" for k, v in losses.items())

    def loss_names(self) -> tuple[str, ...]:
        return ()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
