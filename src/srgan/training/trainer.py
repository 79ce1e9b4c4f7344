"""The SRGAN trainer: SRResNet pre-training with a pixel loss, then adversarial training.

Steps are counted globally: `pretrain.steps` MSE steps, then `gan.steps` GAN steps. Each
batch is fixed by (seed, epoch, batch index), and checkpoints store the weights,
optimizer states and data position, so a run stopped at step k and resumed logs the same
losses as an uninterrupted one. The trainer never prints: it reports each logged step
to a callback and writes `training.log` and `status.json` in the run folder.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from srgan.archs.discriminator import SRGANDiscriminator
from srgan.archs.srresnet import SRResNet
from srgan.errors import BadInputError
from srgan.training import checkpoints, distributed
from srgan.training.config import GanConfig, PretrainConfig, TrainConfig
from srgan.training.data import HRFolderDataset, PairedFolderDataset, PatchSettings
from srgan.training.losses import (
    PixelLoss,
    VGGContentLoss,
    discriminator_loss,
    generator_adversarial_loss,
    perceptual_loss,
)
from srgan.training.run_log import RunLog, memory_megabytes
from srgan.training.schedules import PlateauHalving, Schedule, build_schedule
from srgan.training.stability import ClipResult, GradientClipper, ModelEMA

LogCallback = Callable[[dict[str, Any]], None]


class UnitRangeGenerator(nn.Module):
    """Maps a generator trained for [-1, 1] targets back to [0, 1] images."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.generator(x) + 1) / 2


def fold_to_unit_range(generator: SRResNet) -> dict[str, torch.Tensor]:
    """SRResNet weights whose output is (output + 1) / 2: a plain SRResNet checkpoint that
    `srgan upscale --model` runs on [0, 1] images, with no wrapper."""
    state = {k: v.detach().clone() for k, v in generator.state_dict().items()}
    state["tail.weight"] /= 2
    state["tail.bias"] = (state["tail.bias"] + 1) / 2
    return state


@dataclass
class Position:
    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches of `epoch` already used (by all processes together)


_AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        on_log: LogCallback | None = None,
        context: distributed.Distributed | None = None,
    ) -> None:
        self.config = config
        self.on_log = on_log
        if config.data.train_hr is None:
            raise BadInputError("data.train_hr: set the folder of training images")
        self.context = context or distributed.from_environment()
        self.device = self.context.device(config.device)
        distributed.start(self.context, self.device)
        torch.manual_seed(config.seed)
        self.generator = SRResNet(
            num_features=config.model.num_features,
            num_blocks=config.model.num_blocks,
            scale=config.data.scale,
        ).to(self.device)
        self.discriminator: SRGANDiscriminator | None = None
        self.content_loss: nn.Module | None = None
        if config.gan.steps:
            self.discriminator = SRGANDiscriminator(
                num_features=config.model.discriminator_features,
                input_size=config.data.hr_size,
            ).to(self.device)
            self.content_loss = self._content_loss().to(self.device)
        self.channels_last = (
            config.channels_last
            if isinstance(config.channels_last, bool)
            else self.device.type == "cuda"
        )
        if self.channels_last:
            for module in (self.generator, self.discriminator):
                if module is not None:
                    module.to(memory_format=torch.channels_last)
        self.ema = ModelEMA(self.generator, config.ema_decay) if config.ema_decay else None
        # The wrapped modules run the training forward passes (DDP averages their gradients
        # across processes); the plain ones are what is saved and validated.
        self.g_model = self.context.wrap(self.generator, self.device)
        self.d_model = (
            self.context.wrap(self.discriminator, self.device) if self.discriminator else None
        )
        betas = (config.adam_beta1, 0.999)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), config.pretrain.lr, betas)
        self.d_optimizer = (
            torch.optim.Adam(self.discriminator.parameters(), config.gan.lr, betas)
            if self.discriminator is not None
            else None
        )
        self.amp_dtype = _AMP_DTYPES[config.amp]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp == "fp16")
        self.g_clipper = self._clipper()
        self.d_clipper = self._clipper()
        self.schedules = {
            "pretrain": _schedule(config.pretrain.lr, config.pretrain.steps, config.pretrain),
            "gan": _schedule(config.gan.lr, config.gan.steps, config.gan),
        }
        self.plateaus = {
            stage: PlateauHalving(section.plateau_patience, section.plateau_factor)
            for stage, section in (
                ("pretrain", config.pretrain.schedule),
                ("gan", config.gan.schedule),
            )
        }
        self.pixel_loss = PixelLoss(config.pretrain.loss)
        self.dataset = self._dataset()
        self.position = Position()
        self.run_dir = config.output_dir
        self.best_psnr = -math.inf
        self.log: RunLog | None = None
        self._saved_step: int | None = None

    # ------------------------------------------------------------------ setup

    def _content_loss(self) -> nn.Module:
        gan = self.config.gan
        if gan.content_loss == "mse":
            return PixelLoss("mse")
        from srgan.training.vgg_weights import load_vgg19_features

        features = load_vgg19_features(gan.vgg_weights, gan.vgg_layer)
        return VGGContentLoss(features, value_range=self.config.hr_range)

    def _clipper(self) -> GradientClipper:
        config = self.config
        window = config.adaptive_clip_window
        return GradientClipper(
            config.grad_clip, config.adaptive_clip_percentile, window, min(20, window)
        )

    def _dataset(self) -> HRFolderDataset | PairedFolderDataset:
        data = self.config.data
        settings = PatchSettings(data.scale, data.hr_size, data.augment, self.config.seed)
        if data.train_lr is not None:
            return PairedFolderDataset(
                data.train_lr, data.train_hr, settings, data.samples_per_image
            )
        return HRFolderDataset(data.train_hr, settings, data.samples_per_image)

    @property
    def total_steps(self) -> int:
        return self.config.pretrain.steps + self.config.gan.steps

    def _stage(self, step: int) -> str:
        return "pretrain" if step < self.config.pretrain.steps else "gan"

    # ------------------------------------------------------------------ data

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        size = self.config.data.batch_size
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.dataset))
        batches = [order[i : i + size].tolist() for i in range(0, len(order) - size + 1, size)]
        usable = len(batches) - len(batches) % self.context.world_size
        return batches[:usable]

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches from the saved position on; epochs after that start from their first.
        Each process takes every world_size-th batch, so a step uses world_size batches."""
        epoch, skip = self.position.epoch, self.position.batch
        world, rank = self.context.world_size, self.context.rank
        while True:
            self.dataset.set_epoch(epoch)
            batches = self._epoch_batches(epoch)
            if not batches:
                raise BadInputError(
                    "data.batch_size is too large for the training set "
                    f"({len(self.dataset)} patches per epoch, {world} process(es))"
                )
            loader = DataLoader(
                self.dataset,
                batch_sampler=batches[skip:][rank::world],
                num_workers=self.config.data.workers,
            )
            for lr, hr in loader:
                self.position.batch += world  # counted before use: a checkpoint resumes after it
                yield lr, hr
            epoch, skip = epoch + 1, 0
            self.position.epoch, self.position.batch = epoch, 0

    # ------------------------------------------------------------------ steps

    def _target(self, hr: torch.Tensor) -> torch.Tensor:
        return hr * 2 - 1 if self.config.hr_range == "symmetric" else hr

    def learning_rate(self, step: int) -> float:
        """The learning rate of both networks at a global step."""
        stage = self._stage(step)
        stage_step = step if stage == "pretrain" else step - self.config.pretrain.steps
        return self.schedules[stage](stage_step) * self.plateaus[stage].scale

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        )

    def _update(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        clipper: GradientClipper,
        module: nn.Module,
    ) -> ClipResult:
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        clip = clipper.clip(module.parameters())
        self.scaler.step(optimizer)
        return clip

    def _pretrain_step(self, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        self.g_optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            output = self.g_model(lr)
        loss = self.pixel_loss(output.float(), self._target(hr))
        clip = self._update(loss, self.g_optimizer, self.g_clipper, self.generator)
        self.scaler.update()
        return {"pixel": loss.item(), **_clip_record("grad_norm", clip)}

    def _gan_step(self, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        assert self.discriminator is not None and self.d_model is not None
        assert self.d_optimizer is not None and self.content_loss is not None
        target = self._target(hr)
        with self._autocast():
            fake = self.g_model(lr)
        self.d_optimizer.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(True)
        with self._autocast():
            real_logits, fake_logits = self.d_model(target), self.d_model(fake.detach())
        d_loss = discriminator_loss(real_logits.float(), fake_logits.float())
        d_clip = self._update(d_loss, self.d_optimizer, self.d_clipper, self.discriminator)
        # The generator's step sees D as a fixed function: frozen, and called unwrapped so
        # that DDP does not wait for discriminator gradients that never come.
        self.discriminator.requires_grad_(False)
        self.g_optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            fake_logits = self.discriminator(fake)
        content = self.content_loss(fake.float(), target)
        adversarial = generator_adversarial_loss(fake_logits.float())
        g_loss = perceptual_loss(content, adversarial, self.config.gan.adversarial_weight)
        g_clip = self._update(g_loss, self.g_optimizer, self.g_clipper, self.generator)
        self.scaler.update()
        return {
            "content": content.item(),
            "adversarial": adversarial.item(),
            "generator": g_loss.item(),
            "discriminator": d_loss.item(),
            **_clip_record("grad_norm", g_clip),
            **_clip_record("d_grad_norm", d_clip),
        }

    # ------------------------------------------------------------------ run

    def run(self, resume: bool = False, stop_at_step: int | None = None) -> Path:
        """Train to the end (or to `stop_at_step`), checkpointing on schedule and on any
        interruption; returns the last checkpoint folder."""
        ckpt_dir = self.run_dir / "checkpoints"
        if resume:
            self._resume(ckpt_dir)
        elif checkpoints.resolve(ckpt_dir) is not None:
            raise BadInputError(
                f"{self.run_dir} already holds a run: add --resume to continue it, or choose "
                "another output folder (nothing is deleted)"
            )
        self.context.barrier()  # every process has read the checkpoint before any writes
        if self.context.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.log = RunLog(self.run_dir, self.config.tensorboard)
        end = min(self.total_steps, stop_at_step or self.total_steps)
        self.generator.train()
        try:
            with terminate_as_interrupt():
                return self._loop(self._batches(), end, ckpt_dir)
        finally:
            if self.log is not None:
                self.log.close()

    def _loop(self, batches: Iterator, end: int, ckpt_dir: Path) -> Path:
        last: Path | None = None
        first_step, started = self.position.step, time.perf_counter()
        try:
            while self.position.step < end:
                rate = self.learning_rate(self.position.step)
                _set_rate(self.g_optimizer, rate)
                if self.d_optimizer is not None:
                    _set_rate(self.d_optimizer, rate)
                lr, hr = next(batches)
                lr, hr = lr.to(self.device), hr.to(self.device)
                if self.channels_last:
                    lr = lr.contiguous(memory_format=torch.channels_last)
                    hr = hr.contiguous(memory_format=torch.channels_last)
                stage = self._stage(self.position.step)
                step_function = self._pretrain_step if stage == "pretrain" else self._gan_step
                losses = step_function(lr, hr)
                if self.ema is not None:
                    self.ema.update(self.generator)
                self.position.step += 1
                step = self.position.step
                if step % self.config.log_interval == 0 or step == end:
                    speed = (step - first_step) / (time.perf_counter() - started)
                    self._log(losses, stage, rate, speed, end)
                if self.config.data.val_hr and (
                    step % self.config.val_interval == 0 or step == end
                ):
                    self._validate(stage)
                if step % self.config.checkpoint_interval == 0 or step == end:
                    last = self._save(ckpt_dir)
        except BaseException:
            if self.position.step > 0:
                self._save(ckpt_dir, emergency=True)
            raise
        return last or self._save(ckpt_dir)

    def _log(
        self, losses: dict[str, float], stage: str, rate: float, speed: float, end: int
    ) -> None:
        if self.log is None:
            return
        step = self.position.step
        record: dict[str, Any] = {"step": step, "stage": stage, "lr": rate, **losses}
        record["steps_per_s"] = speed
        record["eta_s"] = (end - step) / speed if speed > 0 else None
        record.update(memory_megabytes(self.device))
        self.log.record(record)
        self.log.status(
            {**record, "total_steps": self.total_steps, "best_psnr": _finite(self.best_psnr)}
        )
        scalars = {f"loss/{k}": v for k, v in losses.items() if "grad_norm" not in k}
        scalars |= {f"train/{k}": v for k, v in losses.items() if "grad_norm" in k}
        scalars |= {"train/lr": rate, "train/steps_per_s": speed}
        scalars |= {f"memory/{k}": v for k, v in record.items() if k.endswith("_mb")}
        self.log.scalars(step, scalars)
        if self.on_log:
            self.on_log(record)

    def inference_model(self) -> nn.Module:
        """The generator (its moving average when EMA is on) as it runs on [0, 1] images."""
        generator = self.ema.module if self.ema is not None else self.generator
        if self.config.hr_range == "symmetric":
            return UnitRangeGenerator(generator)
        return generator

    def _validate(self, stage: str) -> None:
        score = torch.zeros(1, dtype=torch.float64)
        if self.context.is_main:
            score[0] = self._validate_here()
        if self.context.enabled:
            torch.distributed.broadcast(score, src=0)  # every process adjusts its rate alike
        if self.plateaus[stage].observe(float(score[0])) and self.log is not None:
            cut = {"step": self.position.step, "event": "plateau", "stage": stage}
            cut["lr_scale"] = self.plateaus[stage].scale
            self.log.record(cut)
            if self.on_log:
                self.on_log(cut)

    def _validate_here(self) -> float:
        from srgan.inference.evaluate import dataset_images
        from srgan.training.validation import as_loaded_model, comparison_grid, validate

        assert self.config.data.val_hr is not None and self.log is not None
        step = self.position.step
        self.generator.eval()
        model = as_loaded_model(self.inference_model(), self.config.data.scale)
        paths = dataset_images(self.config.data.val_hr)
        try:
            table = validate(model, paths)
            if self.config.val_images:
                grid = comparison_grid(model, paths[: self.config.val_images])
                self.log.image(step, "val/comparison", grid)
        finally:
            self.generator.train()
        record = {"step": step, "val_psnr": table.mean_psnr, "val_ssim": table.mean_ssim}
        self.log.record(record)
        self.log.scalars(step, {"val/psnr": table.mean_psnr, "val/ssim": table.mean_ssim})
        if self.on_log:
            self.on_log(record)
        if table.mean_psnr > self.best_psnr:
            self.best_psnr = table.mean_psnr
            saved = self._save(self.run_dir / "checkpoints")
            checkpoints.point(self.run_dir / "checkpoints", "best", saved)
        return table.mean_psnr

    def _save(self, folder: Path, emergency: bool = False) -> Path:
        target = checkpoints.step_folder(folder, self.position.step)
        if not self.context.is_main or self._saved_step == self.position.step:
            return target  # a new best and a scheduled checkpoint often fall on one step
        generator = self.ema.module if self.ema is not None else self.generator
        weights = {
            "generator": fold_to_unit_range(generator)
            if self.config.hr_range == "symmetric"
            else generator.state_dict()
        }
        if self.discriminator is not None:
            weights["discriminator"] = self.discriminator.state_dict()
        state = {
            "position": vars(self.position).copy(),
            "generator_raw": self.generator.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict() if self.d_optimizer else None,
            "scaler": self.scaler.state_dict(),
            "clippers": [self.g_clipper.state_dict(), self.d_clipper.state_dict()],
            "plateaus": {k: v.state_dict() for k, v in self.plateaus.items()},
            "rng": checkpoints.rng_state(),
            "best_psnr": self.best_psnr,
            "emergency": emergency,
            "world_size": self.context.world_size,
            "config": self.config.model_dump(mode="json"),
        }
        saved = checkpoints.save_checkpoint(folder, self.position.step, weights, state)
        self._saved_step = self.position.step
        if self.log is not None:
            event = "emergency_checkpoint" if emergency else "checkpoint"
            self.log.record({"step": self.position.step, "event": event, "path": saved.name})
        return saved

    def _resume(self, folder: Path) -> None:
        checkpoint = checkpoints.resolve(folder)
        if checkpoint is None:
            raise BadInputError(f"{folder}: no checkpoint to resume from")
        modules = {"discriminator": self.discriminator} if self.discriminator else {}
        state = checkpoints.load_checkpoint(checkpoint, modules)
        with checkpoints.restoring(checkpoint):
            self.generator.load_state_dict(state["generator_raw"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"] or state["generator_raw"])
            self.g_optimizer.load_state_dict(state["g_optimizer"])
            if self.d_optimizer is not None and state["d_optimizer"] is not None:
                self.d_optimizer.load_state_dict(state["d_optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            self.g_clipper.load_state_dict(state["clippers"][0])
            self.d_clipper.load_state_dict(state["clippers"][1])
            for stage, plateau_state in state["plateaus"].items():
                self.plateaus[stage].load_state_dict(plateau_state)
            checkpoints.restore_rng_state(state["rng"])
            self.position = Position(**state["position"])
            self.best_psnr = float(state["best_psnr"])


def _schedule(rate: float, steps: int, section: PretrainConfig | GanConfig) -> Schedule:
    schedule = section.schedule
    return build_schedule(
        rate,
        steps,
        decay=schedule.decay,
        warmup_steps=schedule.warmup_steps,
        milestones=schedule.milestones,
        gamma=schedule.gamma,
        floor=schedule.floor,
    )


def _clip_record(name: str, clip: ClipResult) -> dict[str, float]:
    record = {name: clip.norm}
    if math.isfinite(clip.limit):
        record[name.replace("grad_norm", "clip_limit")] = clip.limit
    return record


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the training loop so that it saves a checkpoint first."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _set_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate
