"""The SRGAN recipe (`srgan train`): the generator pre-trained with a pixel loss, then
generator and discriminator alternating with the losses of `[loss]`: SRGAN's (VGG54
content + 1e-3 x adversarial, Ledig et al. 2017) by default, Real-ESRGAN's (pixel +
five-layer perceptual + U-Net discriminator) or any mix. The generator is any image
architecture (SRResNet, RRDBNet, SRVGG), from scratch or fine-tuned from pretrained
weights. LR inputs are MATLAB bicubic (made per patch by the dataset) or Real-ESRGAN's
degradations (made per micro-batch on the training device, seeded by the batch's items).

Each GAN step updates the generator first (the discriminator fixed), then the
discriminator on the same batch, the generator's output detached (BasicSR's order).
With `gt_usm`, the pixel and perceptual losses compare with the sharpened HR, the
discriminator sees the plain one (as Real-ESRGAN does).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srgan.errors import BadInputError
from srgan.training.data.degradations import Degradation, DegradationRng, make_degradation
from srgan.training.data.patches import HRFolderDataset, PairedFolderDataset, PatchSettings
from srgan.training.engine.recipe import Loss, Networks, Phase, Recipe, Validation, Weights
from srgan.training.loss_config import (
    GeneratorLoss,
    discriminator_loss,
    make_discriminator,
    make_perceptual_loss,
)
from srgan.training.losses import PixelLoss, generator_adversarial_loss
from srgan.training.recipes.networks import freeze, plan_network
from srgan.training.recipes.srgan_config import DISCRIMINATOR_MULTIPLES, ImageTrainConfig
from srgan.zoo.descriptor import LoadedModel


class UnitRangeGenerator(nn.Module):
    """Maps a generator trained for [-1, 1] targets back to [0, 1] images."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.generator(x) + 1) / 2


def fold_to_unit_range(generator: nn.Module) -> dict[str, torch.Tensor]:
    """SRResNet weights whose output is (output + 1) / 2: a plain SRResNet checkpoint that
    `srgan upscale --model` runs on [0, 1] images, with no wrapper."""
    state = {k: v.detach().clone() for k, v in generator.state_dict().items()}
    state["tail.weight"] /= 2
    state["tail.bias"] = (state["tail.bias"] + 1) / 2
    return state


class SRGANRecipe(Recipe):
    kind = "image"
    command = "train"
    config: ImageTrainConfig

    def __init__(self, config: ImageTrainConfig) -> None:
        self.config = config
        if config.data.train is None:
            raise BadInputError("data.train: set the folder of training images (--train DIR)")
        self.network = plan_network(config.model, config.data.scale)
        self.symmetric = config.symmetric
        self.pixel_loss = PixelLoss(config.pretrain.loss, config.loss.pixel.charbonnier_eps)
        self.generator_loss: GeneratorLoss | None = None
        if config.gan.steps:
            self.generator_loss = self._generator_loss()
        data = config.data
        self.degradation: Degradation | None = None
        if data.degradation != "bicubic":
            self.degradation = make_degradation(data.degradation, data.realesrgan, data.scale)
        if config.data.crop % self.crop_multiple():
            raise BadInputError(
                f"data.crop {config.data.crop} must be a multiple of {self.crop_multiple()} "
                f"for this network{' and discriminator' if config.gan.steps else ''}"
            )
        self._val_paths: list[Path] | None = None
        self._val_pairs: list[tuple[str, Path, Path]] | None = None

    def _generator_loss(self) -> GeneratorLoss:
        loss = self.config.loss
        perceptual = None
        if loss.perceptual.weight > 0:
            value_range = "symmetric" if self.symmetric else "unit"
            perceptual = make_perceptual_loss(loss.perceptual, value_range)
        return GeneratorLoss(loss, perceptual)

    # ------------------------------------------------------------------ what is trained

    def phases(self) -> list[Phase]:
        config = self.config
        pre, gan = config.pretrain, config.gan
        return [
            Phase(
                "pretrain",
                pre.steps,
                ("generator",),
                pre.lr or config.optim.lr,
                pre.schedule or config.schedule,
            ),
            Phase(
                "gan",
                gan.steps,
                ("generator", "discriminator"),
                gan.lr or config.optim.lr,
                gan.schedule or config.schedule,
            ),
        ]

    def crop_multiple(self) -> int:
        scale = self.config.data.scale
        multiple = scale * self.network.size_multiple
        if self.config.gan.steps:
            multiple = math.lcm(multiple, DISCRIMINATOR_MULTIPLES[self.config.discriminator])
        return multiple

    def build_networks(self, crop: int) -> dict[str, nn.Module]:
        generator = self.network.build()
        freeze(generator, self.config.model.freeze)
        networks: dict[str, nn.Module] = {"generator": generator}
        if self.config.gan.steps:
            networks["discriminator"] = make_discriminator(self.config.loss.adversarial, crop)
        return networks

    def probe_config(self) -> dict[str, Any]:
        data = self.network.probe_config(self.config)
        data["hr_range"] = "symmetric" if self.symmetric else "unit"
        return data

    # ------------------------------------------------------------------ data

    def dataset(self, crop: int) -> HRFolderDataset | PairedFolderDataset:
        data = self.config.data
        assert data.train is not None
        settings = PatchSettings(
            data.scale, crop, data.augment, self.config.seed, lr=self.degradation is None
        )
        if data.train_lr is not None:
            return PairedFolderDataset(data.train_lr, data.train, settings, data.samples_per_source)
        return HRFolderDataset(data.train, settings, data.samples_per_source)

    def prepare(self) -> None:
        self.dataset(self.config.data.crop)  # lists the images: refuses an empty folder
        self.validation_set()

    def validation_set(self) -> list[Path] | list[tuple[str, Path, Path]]:
        """The HR images of data.val, or (name, LR, HR) pairs with data.val_lr."""
        from srgan.evaluation import dataset_images, lr_pairs

        data = self.config.data
        if data.val is None:
            if data.val_lr is not None:
                raise BadInputError("data.val_lr: set data.val to the matching HR images")
            return []
        if data.val_lr is not None:
            if self._val_pairs is None:
                self._val_pairs = lr_pairs(data.val_lr, data.val)
            return self._val_pairs
        if self._val_paths is None:
            self._val_paths = dataset_images(data.val)
        return self._val_paths

    def example_batch(self, batch_size: int, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
        hr = torch.rand(batch_size, 3, crop, crop)
        if self.degradation is not None:  # the HR patches and their (epoch, index) keys
            return hr, torch.zeros(batch_size, 2, dtype=torch.int64)
        side = crop // self.config.data.scale
        return torch.rand(batch_size, 3, side, side), hr

    def _pair(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(LR, HR, the HR that pixel and perceptual losses compare with)."""
        if self.degradation is None:
            lr, hr = batch
            return lr, hr, hr
        hr, keys = batch
        seed = [self.config.seed, *(int(k) for k in keys[0].tolist())]  # its first item
        rng = DegradationRng.from_seed(seed, device=hr.device)
        with torch.no_grad(), torch.autocast(hr.device.type, enabled=False):
            lr = self.degradation(hr, rng)
            sharpen = getattr(self.degradation, "sharpen_target", None)
            sharp = sharpen(hr) if sharpen is not None else hr
        return lr, hr, sharp

    # ------------------------------------------------------------------ one step

    def train_step(self, batch: Any, phase: str, nets: Networks) -> Iterator[Loss]:
        lr, hr, sharp = self._pair(batch)
        if self.symmetric:
            hr, sharp = hr * 2 - 1, sharp * 2 - 1
        fake = nets.train("generator")(lr)
        if phase == "pretrain":
            pixel = self.pixel_loss(fake.float(), sharp)
            yield Loss("generator", pixel, {"pixel": pixel.item()})
            return
        assert self.generator_loss is not None
        self.generator_loss.to(hr.device)
        fake_logits = nets.plain("discriminator")(fake).float()
        terms = self.generator_loss(fake.float(), sharp, fake_logits)
        total = terms["total"]
        adversarial = terms.get("adversarial", total.new_zeros(()))
        logs = {"content": (total - adversarial).item()}
        if "perceptual" in terms and "pixel" in terms:
            logs["perceptual"] = terms["perceptual"].item()
        logs["adversarial"] = generator_adversarial_loss(fake_logits).item()
        yield Loss("generator", total, {**logs, "generator": total.item()})
        discriminator = nets.train("discriminator")
        real_logits, fake_logits = discriminator(hr), discriminator(fake.detach())
        d_loss = discriminator_loss(real_logits.float(), fake_logits.float())
        yield Loss("discriminator", d_loss, {"discriminator": d_loss.item()})

    def loss_names(self) -> tuple[str, ...]:
        return ("pixel", "content", "perceptual", "adversarial", "generator", "discriminator")

    # ------------------------------------------------------------------ results

    def inference_model(self, module: nn.Module) -> LoadedModel:
        descriptor = self.network.descriptor(self.config.data.scale)
        return LoadedModel(UnitRangeGenerator(module) if self.symmetric else module, descriptor)

    def validate(self, model: LoadedModel, step: int) -> Validation | None:
        from srgan.training.validation import validate_images, validate_pairs

        data, rows = self.config.data, self.config.val_images
        self.validation_set()
        if self._val_pairs is not None:
            return validate_pairs(model, self._val_pairs, data.scale, rows)
        if self._val_paths is not None:
            return validate_images(model, self._val_paths, data.scale, data.val_crop, rows)
        return None

    def export(self, nets: Networks) -> Weights:
        generator = nets.averaged()
        weights = {
            "generator": fold_to_unit_range(generator) if self.symmetric else generator.state_dict()
        }
        if "discriminator" in nets.names():
            weights["discriminator"] = nets.plain("discriminator").state_dict()
        return weights
