"""The SRGAN trainer: SRResNet pre-training with a pixel loss, then adversarial training.

Steps are counted globally: `pretrain.steps` MSE steps, then `gan.steps` GAN steps. Each
batch is fixed by (seed, epoch, batch index), and checkpoints store the weights,
optimizer states and data position, so a run stopped at step k and resumed logs the same
losses as an uninterrupted one. The trainer never prints: it reports each logged step
to a callback and writes `training.log` and `status.json` in the run folder.
"""

from __future__ import annotations

import contextlib
import json
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
from srgan.imaging.io import write_bytes_atomically
from srgan.training import checkpoints
from srgan.training.config import TrainConfig
from srgan.training.data import HRFolderDataset, PairedFolderDataset, PatchSettings
from srgan.training.losses import (
    PixelLoss,
    VGGContentLoss,
    discriminator_loss,
    generator_adversarial_loss,
    perceptual_loss,
)

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
    batch: int = 0  # batches of `epoch` already used


class Trainer:
    def __init__(self, config: TrainConfig, on_log: LogCallback | None = None) -> None:
        self.config = config
        self.on_log = on_log
        unsupported = {
            "ema_decay": config.ema_decay,
            "adaptive_clip_percentile": config.adaptive_clip_percentile,
            "amp": None if config.amp == "none" else config.amp,
        }
        for key, value in unsupported.items():
            if value is not None:
                raise BadInputError(f"{key}: not supported by this version of the trainer yet")
        if config.data.train_hr is None:
            raise BadInputError("data.train_hr: set the folder of training images")
        self.device = torch.device(_device(config.device))
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
        if config.channels_last:
            for module in (self.generator, self.discriminator):
                if module is not None:
                    module.to(memory_format=torch.channels_last)
        betas = (config.adam_beta1, 0.999)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), config.pretrain.lr, betas)
        self.d_optimizer = (
            torch.optim.Adam(self.discriminator.parameters(), config.gan.lr, betas)
            if self.discriminator is not None
            else None
        )
        self.pixel_loss = PixelLoss(config.pretrain.loss)
        self.dataset = self._dataset()
        self.position = Position()
        self.run_dir = config.output_dir
        self.best_psnr = -math.inf

    # ------------------------------------------------------------------ setup

    def _content_loss(self) -> nn.Module:
        gan = self.config.gan
        if gan.content_loss == "mse":
            return PixelLoss("mse")
        from srgan.training.vgg_weights import load_vgg19_features

        features = load_vgg19_features(gan.vgg_weights, gan.vgg_layer)
        return VGGContentLoss(features, value_range=self.config.hr_range)

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

    # ------------------------------------------------------------------ data

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        size = self.config.data.batch_size
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.dataset))
        return [order[i : i + size].tolist() for i in range(0, len(order) - size + 1, size)]

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches from the saved position on; epochs after that start from their first."""
        epoch, skip = self.position.epoch, self.position.batch
        while True:
            self.dataset.set_epoch(epoch)
            batches = self._epoch_batches(epoch)
            if not batches:
                raise BadInputError("data.batch_size is larger than the training set")
            loader = DataLoader(
                self.dataset,
                batch_sampler=batches[skip:],
                num_workers=self.config.data.workers,
            )
            for lr, hr in loader:
                self.position.batch += 1  # counted before use: a checkpoint resumes after it
                yield lr, hr
            epoch, skip = epoch + 1, 0
            self.position.epoch, self.position.batch = epoch, 0

    # ------------------------------------------------------------------ steps

    def _target(self, hr: torch.Tensor) -> torch.Tensor:
        return hr * 2 - 1 if self.config.hr_range == "symmetric" else hr

    def _learning_rates(self, step: int) -> tuple[float, float]:
        pre, gan = self.config.pretrain, self.config.gan
        if step < pre.steps:
            return pre.lr, gan.lr
        gan_step = step - pre.steps
        rate = gan.lr if gan_step < gan.lr_drop_fraction * gan.steps else gan.lr_after
        return rate, rate

    def _clip(self, module: nn.Module) -> float:
        limit = self.config.grad_clip if self.config.grad_clip else math.inf
        return float(torch.nn.utils.clip_grad_norm_(module.parameters(), limit))

    def _pretrain_step(self, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        self.g_optimizer.zero_grad(set_to_none=True)
        loss = self.pixel_loss(self.generator(lr), self._target(hr))
        loss.backward()
        grad_norm = self._clip(self.generator)
        self.g_optimizer.step()
        return {"pixel": loss.item(), "grad_norm": grad_norm}

    def _gan_step(self, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        assert self.discriminator is not None and self.d_optimizer is not None
        assert self.content_loss is not None
        target = self._target(hr)
        fake = self.generator(lr)
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(self.discriminator(target), self.discriminator(fake.detach()))
        d_loss.backward()
        self._clip(self.discriminator)
        self.d_optimizer.step()
        self.g_optimizer.zero_grad(set_to_none=True)
        content = self.content_loss(fake, target)
        adversarial = generator_adversarial_loss(self.discriminator(fake))
        g_loss = perceptual_loss(content, adversarial, self.config.gan.adversarial_weight)
        g_loss.backward()
        grad_norm = self._clip(self.generator)
        self.g_optimizer.step()
        return {
            "content": content.item(),
            "adversarial": adversarial.item(),
            "generator": g_loss.item(),
            "discriminator": d_loss.item(),
            "grad_norm": grad_norm,
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
        self.run_dir.mkdir(parents=True, exist_ok=True)
        end = min(self.total_steps, stop_at_step or self.total_steps)
        batches = self._batches()
        started, last = time.perf_counter(), None
        self.generator.train()
        with _terminate_as_interrupt():
            return self._loop(batches, end, started, last, ckpt_dir)

    def _loop(self, batches, end: int, started: float, last: Path | None, ckpt_dir: Path) -> Path:
        try:
            while self.position.step < end:
                g_rate, d_rate = self._learning_rates(self.position.step)
                _set_rate(self.g_optimizer, g_rate)
                if self.d_optimizer is not None:
                    _set_rate(self.d_optimizer, d_rate)
                lr, hr = next(batches)
                lr, hr = lr.to(self.device), hr.to(self.device)
                if self.config.channels_last:
                    lr = lr.contiguous(memory_format=torch.channels_last)
                    hr = hr.contiguous(memory_format=torch.channels_last)
                pretraining = self.position.step < self.config.pretrain.steps
                losses = self._pretrain_step(lr, hr) if pretraining else self._gan_step(lr, hr)
                self.position.step += 1
                step = self.position.step
                if step % self.config.log_interval == 0 or step == end:
                    elapsed = time.perf_counter() - started
                    self._log(losses, "pretrain" if pretraining else "gan", g_rate, elapsed)
                if self.config.data.val_hr and (
                    step % self.config.val_interval == 0 or step == end
                ):
                    self._validate()
                if step % self.config.checkpoint_interval == 0 or step == end:
                    last = self._save(ckpt_dir)
        except BaseException:
            if self.position.step > 0:
                self._save(ckpt_dir, emergency=True)
            raise
        return last or self._save(ckpt_dir)

    def _log(self, losses: dict[str, float], stage: str, rate: float, elapsed: float) -> None:
        record = {"step": self.position.step, "stage": stage, "lr": rate, **losses}
        record["steps_per_s"] = self.position.step / elapsed if elapsed > 0 else 0.0
        with (self.run_dir / "training.log").open("a") as stream:
            stream.write(json.dumps(record) + "\n")
        status = {**record, "total_steps": self.total_steps, "best_psnr": self.best_psnr}
        write_bytes_atomically(self.run_dir / "status.json", json.dumps(status).encode())
        if self.on_log:
            self.on_log(record)

    def inference_model(self) -> nn.Module:
        """The generator as it runs on [0, 1] images."""
        if self.config.hr_range == "symmetric":
            return UnitRangeGenerator(self.generator)
        return self.generator

    def _validate(self) -> None:
        from srgan.inference.evaluate import dataset_images, evaluate_models
        from srgan.zoo.descriptor import LoadedModel, ModelDescriptor

        assert self.config.data.val_hr is not None
        self.generator.eval()
        descriptor = ModelDescriptor("training", "SRResNet", self.config.data.scale)
        model = LoadedModel(self.inference_model(), descriptor)
        paths = dataset_images(self.config.data.val_hr)
        (table,) = evaluate_models([model], paths, self.config.data.scale)
        self.generator.train()
        record = {
            "step": self.position.step,
            "val_psnr": table.mean_psnr,
            "val_ssim": table.mean_ssim,
        }
        with (self.run_dir / "training.log").open("a") as stream:
            stream.write(json.dumps(record) + "\n")
        if self.on_log:
            self.on_log(record)
        if table.mean_psnr > self.best_psnr:
            self.best_psnr = table.mean_psnr
            saved = self._save(self.run_dir / "checkpoints")
            checkpoints.point(self.run_dir / "checkpoints", "best", saved)

    def _save(self, folder: Path, emergency: bool = False) -> Path:
        generator = (
            fold_to_unit_range(self.generator)
            if self.config.hr_range == "symmetric"
            else self.generator.state_dict()
        )
        weights = {"generator": generator}
        if self.discriminator is not None:
            weights["discriminator"] = self.discriminator.state_dict()
        state = {
            "position": vars(self.position).copy(),
            "generator_raw": self.generator.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict() if self.d_optimizer else None,
            "rng": checkpoints.rng_state(),
            "best_psnr": self.best_psnr,
            "emergency": emergency,
            "config": self.config.model_dump(mode="json"),
        }
        return checkpoints.save_checkpoint(folder, self.position.step, weights, state)

    def _resume(self, folder: Path) -> None:
        checkpoint = checkpoints.resolve(folder)
        if checkpoint is None:
            raise BadInputError(f"{folder}: no checkpoint to resume from")
        modules = {"discriminator": self.discriminator} if self.discriminator else {}
        state = checkpoints.load_checkpoint(checkpoint, modules)
        self.generator.load_state_dict(state["generator_raw"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        if self.d_optimizer is not None and state["d_optimizer"] is not None:
            self.d_optimizer.load_state_dict(state["d_optimizer"])
        checkpoints.restore_rng_state(state["rng"])
        self.position = Position(**state["position"])
        self.best_psnr = state["best_psnr"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the training loop so that it saves a checkpoint first."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
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


def _device(name: str) -> str:
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"
