"""Data-parallel training under `torchrun`: one process per device, gradients averaged
with DDP (gloo on CPU, nccl on GPU). Without torchrun's environment it is one process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str) -> torch.device:
        """The device this process trains on: `cuda` means this rank's own GPU."""
        if requested == "auto":
            requested = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(requested)
        if self.enabled and device.type == "cuda" and device.index is None:
            device = torch.device("cuda", self.local_rank)
        return device

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def mean(self, values: dict[str, float], device: torch.device) -> dict[str, float]:
        """The mean of each value over the processes (the same keys on every process)."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return dict(zip(keys, (tensor / self.world_size).tolist(), strict=True))

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether any process raised `flag` (every process gets the same answer)."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([float(flag)], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def broadcast(self, values: list[float], device: torch.device) -> list[float]:
        """Rank 0's `values` on every process."""
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.broadcast(tensor, src=0)
        return tensor.tolist()


def from_environment() -> Distributed:
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    return Distributed(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", 0)))


def start(context: Distributed, device: torch.device) -> None:
    """Join the process group (once per process)."""
    if not context.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def stop(context: Distributed) -> None:
    if context.enabled and dist.is_initialized():
        dist.barrier()  # every rank is done with the group before it goes
        dist.destroy_process_group()
