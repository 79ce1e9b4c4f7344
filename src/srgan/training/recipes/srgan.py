"""The SRGAN recipe (`srgan train`): the generator pre-trained with a pixel loss, then
generator and discriminator alternating with a content loss (VGG54 features or MSE) plus
the adversarial loss (Ledig et al. 2017). The generator is any image architecture
(SRResNet, RRDBNet, SRVGG), from scratch or fine-tuned from pretrained weights.

Each GAN step updates the generator first (the discriminator fixed), then the
discriminator on the same batch, the generator's output detached (BasicSR's order).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srgan.archs.discriminator import SRGANDiscriminator
from srgan.errors import BadInputError
from srgan.training.data.patches import HRFolderDataset, PairedFolderDataset, PatchSettings
from srgan.training.engine.recipe import Loss, Networks, Phase, Recipe, Validation, Weights
from srgan.training.losses import (
    PixelLoss,
    VGGContentLoss,
    discriminator_loss,
    generator_adversarial_loss,
    perceptual_loss,
)
from srgan.training.recipes.networks import ARCHS, freeze, plan_network
from srgan.training.recipes.srgan_config import ImageTrainConfig
from srgan.zoo.descriptor import LoadedModel, ModelDescriptor

DISCRIMINATOR_MULTIPLE = 16  # the SRGAN discriminator halves its input four times


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


def size_multiple(arch: str, kwargs: dict[str, Any]) -> int:
    from srgan.zoo.architectures import BY_NAME

    return BY_NAME[ARCHS[arch].zoo_name].size_multiple(kwargs)


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
        self.pixel_loss = PixelLoss(config.pretrain.loss)
        self.content_loss: nn.Module | None = None
        if config.gan.steps:
            self.content_loss = self._content_loss()
        if config.data.crop % self.crop_multiple():
            raise BadInputError(
                f"data.crop {config.data.crop} must be a multiple of {self.crop_multiple()} "
                f"for this network{' and discriminator' if config.gan.steps else ''}"
            )
        self._val_paths: list[Path] | None = None
        self._val_pairs: list[tuple[str, Path, Path]] | None = None

    def _content_loss(self) -> nn.Module:
        gan = self.config.gan
        if gan.content_loss == "mse":
            return PixelLoss("mse")
        from srgan.training.vgg_weights import load_vgg19_features

        features = load_vgg19_features(gan.vgg_weights, gan.vgg_layer)
        return VGGContentLoss(features, value_range="symmetric" if self.symmetric else "unit")

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
        multiple = scale * size_multiple(self.network.arch, self.network.kwargs)
        if self.config.gan.steps:
            multiple = math.lcm(multiple, DISCRIMINATOR_MULTIPLE)
        return multiple

    def build_networks(self, crop: int) -> dict[str, nn.Module]:
        generator = self.network.build()
        freeze(generator, self.config.model.freeze)
        networks: dict[str, nn.Module] = {"generator": generator}
        if self.config.gan.steps:
            networks["discriminator"] = SRGANDiscriminator(
                num_features=self.config.gan.discriminator_features, input_size=crop
            )
        return networks

    def probe_config(self) -> dict[str, Any]:
        data = self.config.model_dump(mode="json")
        data["model"] = {**data["model"], "init": None, **self.network.hyperparameters()}
        data["hr_range"] = "symmetric" if self.symmetric else "unit"
        return data

    # ------------------------------------------------------------------ data

    def dataset(self, crop: int) -> HRFolderDataset | PairedFolderDataset:
        data = self.config.data
        assert data.train is not None
        settings = PatchSettings(data.scale, crop, data.augment, self.config.seed)
        if data.train_lr is not None:
            return PairedFolderDataset(data.train_lr, data.train, settings, data.samples_per_source)
        return HRFolderDataset(data.train, settings, data.samples_per_source)

    def prepare(self) -> None:
        self.dataset(self.config.data.crop)  # lists the images: refuses an empty folder
        self.validation_set()

    def validation_set(self) -> list[Path] | list[tuple[str, Path, Path]]:
        """The HR images of data.val, or (name, LR, HR) pairs with data.val_lr."""
        from srgan.evaluation import dataset_images, pair_paths

        data = self.config.data
        if data.val is None:
            if data.val_lr is not None:
                raise BadInputError("data.val_lr: set data.val to the matching HR images")
            return []
        if data.val_lr is not None:
            if self._val_pairs is None:
                self._val_pairs = pair_paths(data.val_lr, data.val)
            return self._val_pairs
        if self._val_paths is None:
            self._val_paths = dataset_images(data.val)
        return self._val_paths

    def example_batch(self, batch_size: int, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
        side = crop // self.config.data.scale
        return torch.rand(batch_size, 3, side, side), torch.rand(batch_size, 3, crop, crop)

    # ------------------------------------------------------------------ one step

    def train_step(self, batch: Any, phase: str, nets: Networks) -> Iterator[Loss]:
        lr, hr = batch
        target = hr * 2 - 1 if self.symmetric else hr
        fake = nets.train("generator")(lr)
        if phase == "pretrain":
            pixel = self.pixel_loss(fake.float(), target)
            yield Loss("generator", pixel, {"pixel": pixel.item()})
            return
        assert self.content_loss is not None
        self.content_loss.to(target.device)
        content = self.content_loss(fake.float(), target)
        adversarial = generator_adversarial_loss(nets.plain("discriminator")(fake).float())
        g_loss = perceptual_loss(content, adversarial, self.config.gan.adversarial_weight)
        logs = {"content": content.item(), "adversarial": adversarial.item()}
        yield Loss("generator", g_loss, {**logs, "generator": g_loss.item()})
        discriminator = nets.train("discriminator")
        real_logits, fake_logits = discriminator(target), discriminator(fake.detach())
        d_loss = discriminator_loss(real_logits.float(), fake_logits.float())
        yield Loss("discriminator", d_loss, {"discriminator": d_loss.item()})

    def loss_names(self) -> tuple[str, ...]:
        return ("pixel", "content", "adversarial", "generator", "discriminator")

    # ------------------------------------------------------------------ results

    def inference_model(self, module: nn.Module) -> LoadedModel:
        network = self.network
        descriptor = ModelDescriptor(
            "training",
            ARCHS[network.arch].zoo_name,
            self.config.data.scale,
            size_multiple=size_multiple(network.arch, network.kwargs),
        )
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
