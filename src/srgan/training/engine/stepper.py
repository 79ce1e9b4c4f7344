"""One optimizer step of any recipe: gradient accumulation over micro-batches, mixed
precision (autocast, and a gradient scaler for fp16), DistributedDataParallel, gradient
clipping per network and the EMA of the generator. Used by the training loop and by
autotune's memory probe, so that what is measured is the step that runs."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from srgan.training.config import RunConfig
from srgan.training.engine.distributed import Distributed
from srgan.training.engine.recipe import Networks, Phase, Recipe
from srgan.training.engine.stability import ClipResult, GradientClipper, ModelEMA

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Slot:
    """A network with what trains it."""

    name: str
    module: nn.Module
    wrapped: nn.Module
    optimizer: torch.optim.Optimizer
    clipper: GradientClipper
    trainable: list[nn.Parameter]

    @property
    def log_prefix(self) -> str:
        return "" if self.name == "generator" else f"{self.name[0]}_"

    def sync_gradients(self, flag: bool) -> None:
        """Under DDP, average gradients over processes only on the last micro-batch."""
        if hasattr(self.wrapped, "require_backward_grad_sync"):
            setattr(self.wrapped, "require_backward_grad_sync", flag)  # noqa: B010


def uses_channels_last(config: RunConfig, device: torch.device) -> bool:
    if isinstance(config.channels_last, bool):
        return config.channels_last
    return device.type == "cuda"


class Stepper:
    def __init__(
        self, recipe: Recipe, crop: int, device: torch.device, context: Distributed
    ) -> None:
        from srgan.training.recipes.networks import parameter_groups

        config = recipe.config
        self.recipe = recipe
        self.device = device
        self.channels_last = uses_channels_last(config, device)
        modules = recipe.build_networks(crop)
        for module in modules.values():
            module.to(device)
            if self.channels_last:
                module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        wrapped = {name: context.wrap(module, device) for name, module in modules.items()}
        self.nets = Networks(modules, wrapped)
        if config.ema_decay:
            self.nets.ema = ModelEMA(modules["generator"], config.ema_decay)
        optim, clip = config.optim, config.clip
        self.slots: dict[str, Slot] = {}
        for name, module in modules.items():
            factors = optim.lr_factors if name == "generator" else {}
            groups = parameter_groups(module, factors)
            optimizer = torch.optim.Adam(
                groups, optim.lr, (optim.beta1, optim.beta2), weight_decay=optim.weight_decay
            )
            clipper = GradientClipper(
                clip.max_norm, clip.percentile, clip.window, min(clip.min_history, clip.window)
            )
            trainable = [p for p in module.parameters() if p.requires_grad]
            self.slots[name] = Slot(name, module, wrapped[name], optimizer, clipper, trainable)
        self.amp_dtype = AMP_DTYPES[config.amp]
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")

    # ------------------------------------------------------------------ one step

    def set_rate(self, rate: float) -> None:
        for slot in self.slots.values():
            for group in slot.optimizer.param_groups:
                group["lr"] = rate * group.get("lr_factor", 1.0)

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        )

    def to_device(self, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            batch = batch.to(self.device, non_blocking=True)
            if self.channels_last and batch.ndim == 4:
                batch = batch.contiguous(memory_format=torch.channels_last)
            return batch
        if isinstance(batch, list | tuple):
            return type(batch)(self.to_device(item) for item in batch)
        return batch

    def _only_training(self, name: str) -> None:
        for slot in self.slots.values():
            for parameter in slot.trainable:
                parameter.requires_grad_(slot.name == name)

    def step(self, micro_batches: list[Any], phase: Phase) -> dict[str, float]:
        """One optimizer step per network of `phase` over `micro_batches`; returns the
        mean of each logged loss, gradient norms and clip limits."""
        count = len(micro_batches)
        streams = [
            self.recipe.train_step(self.to_device(batch), phase.name, self.nets)
            for batch in micro_batches
        ]
        logs: dict[str, float] = {}
        for name in phase.updates:
            slot = self.slots[name]
            self._only_training(name)
            slot.optimizer.zero_grad(set_to_none=True)
            for index, stream in enumerate(streams):
                slot.sync_gradients(index == count - 1)
                with self._autocast():
                    loss = next(stream)
                if loss.network != name:
                    raise RuntimeError(f"train_step updated {loss.network} where {name} was due")
                self.scaler.scale(loss.value / count).backward()
                for key, value in loss.logs.items():
                    logs[key] = logs.get(key, 0.0) + value / count
            self.scaler.unscale_(slot.optimizer)  # clip the true gradients, not scaled ones
            logs |= clip_record(slot.log_prefix, slot.clipper.clip(slot.trainable))
            self.scaler.step(slot.optimizer)
        for stream in streams:
            if next(stream, None) is not None:
                raise RuntimeError(f"train_step yields more updates than {phase.updates}")
        self._only_training("")  # nothing needs gradients between steps
        self.scaler.update()
        if self.nets.ema is not None:
            self.nets.ema.update(self.nets.plain("generator"))
        return logs

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {name: slot.module.state_dict() for name, slot in self.slots.items()},
            "optimizers": {name: slot.optimizer.state_dict() for name, slot in self.slots.items()},
            "clippers": {name: slot.clipper.state_dict() for name, slot in self.slots.items()},
            "scaler": self.scaler.state_dict(),
            "ema": self.nets.ema.state_dict() if self.nets.ema is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, slot in self.slots.items():
            slot.module.load_state_dict(state["modules"][name])
            slot.optimizer.load_state_dict(state["optimizers"][name])
            slot.clipper.load_state_dict(state["clippers"][name])
        self.scaler.load_state_dict(state["scaler"])
        if self.nets.ema is not None:
            self.nets.ema.load_state_dict(state["ema"] or state["modules"]["generator"])

    def clipper_states(self) -> dict[str, Any]:
        return {name: slot.clipper.state_dict() for name, slot in self.slots.items()}

    def load_clipper_states(self, states: dict[str, Any]) -> None:
        for name, slot in self.slots.items():
            slot.clipper.load_state_dict(states[name])


def clip_record(prefix: str, clip: ClipResult) -> dict[str, float]:
    record = {f"{prefix}grad_norm": clip.norm}
    if math.isfinite(clip.limit):
        record[f"{prefix}clip_limit"] = clip.limit
    return record
