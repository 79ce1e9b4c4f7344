"""The video recipe (`srgan train-vsr`): a network on windows of consecutive frames with
the hybrid loss (L1 + pyramid L1 + gradient L1) whose weights follow the terms'
magnitudes (`adaptive_weights`). The network comes from `model.arch` like any other:
the recurrent video network by default; an image architecture upscales each frame of a
window alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from srgan.errors import BadInputError
from srgan.imaging.clips import Clip, discover_clips
from srgan.training.data.windows import ClipWindowDataset, WindowSettings
from srgan.training.engine.recipe import Loss, Networks, Phase, Recipe, Validation, Weights
from srgan.training.recipes.adaptive_weights import AdaptiveWeights
from srgan.training.recipes.hybrid_loss import HybridLoss
from srgan.training.recipes.networks import frames_as_images, freeze, plan_network
from srgan.training.recipes.video_config import TERMS, VideoTrainConfig
from srgan.zoo.descriptor import LoadedModel

MAX_VALIDATION_WINDOW = 64


class VideoRecipe(Recipe):
    kind = "video"
    command = "train-vsr"
    config: VideoTrainConfig

    def __init__(self, config: VideoTrainConfig) -> None:
        self.config = config
        if config.data.train is None:
            raise BadInputError("data.train: set the training clips (--train DIR_OR_VIDEO)")
        self.network = plan_network(config.model, config.data.scale)
        self.loss = HybridLoss(config.loss.levels)
        adaptive = config.adaptive
        self.weights = AdaptiveWeights(
            config.loss.weights(),
            adaptive.shares,
            adaptive.interval,
            adaptive.momentum,
            adaptive.min_factor,
            adaptive.max_factor,
            adaptive.max_change,
            adaptive.enabled,
        )
        if config.data.degradation != "bicubic":
            raise BadInputError(
                f"data.degradation {config.data.degradation}: srgan train-vsr makes LR "
                "frames with bicubic (the degradations are for srgan train)"
            )
        if config.data.val_lr is not None:
            raise BadInputError("data.val_lr: paired validation is for images; video uses data.val")
        if config.data.crop % self.crop_multiple():
            raise BadInputError(
                f"data.crop {config.data.crop} must be a multiple of {self.crop_multiple()}"
            )
        self._clips: dict[str, list[Clip]] = {}

    def phases(self) -> list[Phase]:
        config = self.config
        return [Phase("train", config.steps, ("generator",), config.optim.lr, config.schedule)]

    def crop_multiple(self) -> int:
        return self.config.data.scale * self.network.size_multiple

    def build_networks(self, crop: int) -> dict[str, nn.Module]:
        generator = self.network.build()
        freeze(generator, self.config.model.freeze)
        return {"generator": generator}

    def probe_config(self) -> dict[str, Any]:
        return self.network.probe_config(self.config)

    # ------------------------------------------------------------------ data

    def clips(self, key: str) -> list[Clip]:
        """The clips of data.train, data.train_lr or data.val (found once)."""
        if key not in self._clips:
            path = getattr(self.config.data, key)
            self._clips[key] = discover_clips(path) if path is not None else []
        return self._clips[key]

    def prepare(self) -> None:
        for key in ("train", "train_lr", "val"):
            self.clips(key)

    def dataset(self, crop: int) -> ClipWindowDataset:
        data = self.config.data
        settings = WindowSettings(
            data.scale, data.frames, crop, data.augment, data.temporal_reverse, self.config.seed
        )
        return ClipWindowDataset(
            self.clips("train"),
            settings,
            data.samples_per_source,
            self.clips("train_lr") or None,
            data.cache_mb * 2**20,
        )

    def example_batch(self, batch_size: int, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames, side = self.config.data.frames, crop // self.config.data.scale
        lr = torch.rand(batch_size, frames, 3, side, side)
        return lr, torch.rand(batch_size, frames, 3, crop, crop)

    # ------------------------------------------------------------------ one step

    def train_step(self, batch: Any, phase: str, nets: Networks) -> Iterator[Loss]:
        lr, hr = batch
        network = nets.train("generator")
        output = network(lr) if self.network.temporal else frames_as_images(network)(lr)
        result = self.loss(output.float(), hr, self.weights.weights)
        logs = {name: value.item() for name, value in result.terms.items()}
        yield Loss("generator", result.total, {**logs, "total": result.total.item()})

    def after_step(
        self, step: int, logs: dict[str, float]
    ) -> list[tuple[dict[str, Any], dict[str, float]]]:
        self.weights.observe({name: logs[name] for name in TERMS})
        adjustment = self.weights.adjust(step)
        if adjustment is None:
            return []
        record = adjustment.record()
        changes = {
            f"adaptive/{name}_change": record["weights"][name] / record["previous"][name]
            for name in record["weights"]
            if record["previous"][name] > 0
        }
        return [(record, changes)]

    def step_values(self) -> dict[str, float]:
        return {f"w_{name}": self.weights.weights[name] for name in TERMS}

    def scalars(self, record: dict[str, Any]) -> dict[str, float]:
        return {f"weights/{name}": record[f"w_{name}"] for name in TERMS}

    def loss_names(self) -> tuple[str, ...]:
        return (*TERMS, "total")

    def summary(self, record: dict[str, Any]) -> str:
        terms = " + ".join(
            f"{record[f'w_{name}']:.3g} x {name} {record[name]:.4g}" for name in TERMS
        )
        return f"{record['total']:.4g} = {terms}"

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights.load_state_dict(state["weights"])

    # ------------------------------------------------------------------ results

    def inference_model(self, module: nn.Module) -> LoadedModel:
        return LoadedModel(module, self.network.descriptor(self.config.data.scale))

    def validate(self, model: LoadedModel, step: int) -> Validation | None:
        from srgan.evaluation import ClipSelection
        from srgan.inference.vsr import TemporalWindows
        from srgan.training.validation import validate_clips

        clips = self.clips("val")
        if not clips:
            return None
        data = self.config.data
        # A model trained on one-frame windows is validated frame by frame.
        window = 1 if data.frames == 1 else min(data.val_frames, MAX_VALIDATION_WINDOW)
        selection = ClipSelection(data.val_frames, data.val_crop)
        windows = TemporalWindows(window)
        return validate_clips(
            model, clips, data.scale, windows, selection, grid_rows=self.config.val_images
        )

    def export(self, nets: Networks) -> Weights:
        return {"generator": nets.averaged().state_dict()}
