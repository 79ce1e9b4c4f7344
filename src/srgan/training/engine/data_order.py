"""The order in which training items are used, and where a resumed run picks it up.

Each epoch is a permutation of the dataset drawn from `numpy.random.default_rng([seed,
epoch])`, cut into global batches of `world_size x batch_size x accumulation` items (the
items of one optimizer step, over all processes; a short tail is dropped). Process r
takes its share of each global batch, split into `accumulation` micro-batches of
`batch_size`. The items of a step are thus fixed by (seed, epoch, index) whatever the
batch/accumulation split autotune picks and whatever the timing, and `Position` (epoch,
global batches used) is all a checkpoint needs to resume mid-epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from torch.utils.data import DataLoader, Dataset

from srgan.errors import BadInputError


class EpochDataset(Protocol):
    """A map-style dataset whose random augmentation is seeded by the epoch."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...

    def set_epoch(self, epoch: int) -> None: ...


@dataclass
class Position:
    step: int = 0
    epoch: int = 0
    batch: int = 0  # global batches of `epoch` already used

    def as_dict(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch, "batch": self.batch}


@dataclass(frozen=True)
class Split:
    """How one process's share of a global batch is cut: `accumulation` micro-batches of
    `batch_size` items."""

    batch_size: int
    accumulation: int
    world_size: int = 1
    rank: int = 0

    @property
    def per_process(self) -> int:
        return self.batch_size * self.accumulation

    @property
    def global_batch(self) -> int:
        return self.per_process * self.world_size


def epoch_batches(length: int, seed: int, epoch: int, size: int) -> list[np.ndarray]:
    order = np.random.default_rng([seed, epoch]).permutation(length)
    return [order[i : i + size] for i in range(0, length - size + 1, size)]


def micro_batches(batches: list[np.ndarray], split: Split) -> list[list[int]]:
    """This process's micro-batches of `batches`, in order."""
    share = split.per_process
    micro = []
    for batch in batches:
        mine = batch[split.rank * share : (split.rank + 1) * share]
        micro += [
            mine[i : i + split.batch_size].tolist() for i in range(0, share, split.batch_size)
        ]
    return micro


def step_batches(
    dataset: EpochDataset,
    seed: int,
    split: Split,
    position: Position,
    workers: int = 0,
) -> Iterator[list[Any]]:
    """Each step's micro-batches from `position` on; advances `position.batch` (and the
    epoch) as batches are handed out, so a checkpoint taken after a step resumes after
    it."""
    epoch, skip = position.epoch, position.batch
    while True:
        dataset.set_epoch(epoch)
        batches = epoch_batches(len(dataset), seed, epoch, split.global_batch)
        if not batches:
            raise BadInputError(
                f"data.batch_size x data.accumulation x processes ({split.global_batch}) is "
                f"more than the {len(dataset)} samples of an epoch: lower it or raise "
                "data.samples_per_source"
            )
        loader = DataLoader(
            dataset,  # type: ignore[arg-type]  # any map-style dataset with set_epoch
            batch_sampler=micro_batches(batches[skip:], split),
            num_workers=workers,
        )
        group: list[Any] = []
        for micro in loader:
            group.append(micro)
            if len(group) == split.accumulation:
                position.batch += 1
                yield group
                group = []
        epoch, skip = epoch + 1, 0
        position.epoch, position.batch = epoch, 0


__all__ = ["Dataset", "EpochDataset", "Position", "Split", "epoch_batches", "step_batches"]
