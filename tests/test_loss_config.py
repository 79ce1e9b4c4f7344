"""Losses chosen by name: pixel losses, VGG feature losses (Real-ESRGAN and SRGAN
presets), the discriminators and their weight files, checked against values by hand."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from srgan.archs.discriminator import SRGANDiscriminator
from srgan.archs.unet_discriminator import UNetDiscriminatorSN
from srgan.archs.vgg import IMAGENET_STD, VGG19Features, layer_index, layer_name
from srgan.errors import BadInputError
from srgan.training.loss_config import (
    AdversarialConfig,
    GeneratorLoss,
    LossConfig,
    PerceptualLossConfig,
    load_discriminator_weights,
    make_discriminator,
    make_perceptual_loss,
    make_pixel_loss,
)
from srgan.training.losses import VGGContentLoss

SMALL = (4, 8, 8, 16, 16)


def test_pixel_losses_by_name_against_values_by_hand():
    output = torch.tensor([[0.0, 3.0], [1.0, -2.0]])
    target = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # differences 0, 3, -1, -4
    assert make_pixel_loss("l1")(output, target).item() == pytest.approx((0 + 3 + 1 + 4) / 4)
    assert make_pixel_loss("mse")(output, target).item() == pytest.approx((0 + 9 + 1 + 16) / 4)
    charbonnier = make_pixel_loss("charbonnier", eps=1.0)(output, target).item()
    by_hand = (1 + math.sqrt(10) + math.sqrt(2) + math.sqrt(17)) / 4
    assert charbonnier == pytest.approx(by_hand)
    # With the default eps it is L1 to within 1e-6, and smooth at 0 (finite gradient).
    assert make_pixel_loss("charbonnier")(output, target).item() == pytest.approx(2.0, abs=1e-6)
    x = torch.zeros(3, requires_grad=True)
    make_pixel_loss("charbonnier")(x, torch.zeros(3)).backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="use one of l1, mse, charbonnier"):
        make_pixel_loss("l3")  # type: ignore[arg-type]


def identity_vgg() -> VGG19Features:
    """conv1_1 passes the normalised RGB through (3 channels, centre tap 1, no bias)."""
    features = VGG19Features("conv1_1", (3, 8, 8, 16, 16))
    conv = features.features[0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for c in range(3):
            conv.weight[c, c, 1, 1] = 1.0
    return features


def test_perceptual_loss_by_hand_on_an_identity_layer():
    hr = torch.rand(2, 3, 8, 8)
    sr = hr + 0.1  # the same offset everywhere
    config = PerceptualLossConfig(layer_weights={"conv1_1": 2.0}, criterion="l1")
    loss = make_perceptual_loss(config, features=identity_vgg())
    # |(sr - mean)/std - (hr - mean)/std| = 0.1 / std_c, averaged over channels, times 2.
    by_hand = 2.0 * sum(0.1 / s for s in IMAGENET_STD) / 3
    assert loss(sr, hr).item() == pytest.approx(by_hand, rel=1e-5)
    mse = make_perceptual_loss(
        config.model_copy(update={"criterion": "mse", "feature_scale": 0.5}),
        features=identity_vgg(),
    )
    assert mse(sr, hr).item() == pytest.approx(
        2.0 * sum((0.05 / s) ** 2 for s in IMAGENET_STD) / 3, rel=1e-5
    )
    symmetric = make_perceptual_loss(config, "symmetric", features=identity_vgg())
    assert symmetric(sr * 2 - 1, hr * 2 - 1).item() == pytest.approx(by_hand, rel=1e-4)


def test_the_real_esrgan_preset_weights_five_layers_before_activation():
    torch.manual_seed(0)
    features = VGG19Features("conv5_4", SMALL)
    loss = make_perceptual_loss(PerceptualLossConfig(), features=features)
    assert loss.layer_weights == {
        "conv1_2": 0.1,
        "conv2_2": 0.1,
        "conv3_4": 1.0,
        "conv4_4": 1.0,
        "conv5_4": 1.0,
    }
    hr = torch.rand(1, 3, 32, 32)
    sr = (hr + 0.05 * torch.randn_like(hr)).clamp(0, 1).requires_grad_()
    value = loss(sr, hr)
    expected = 0.0
    with torch.no_grad():
        for name, weight in loss.layer_weights.items():
            head = features.features[: layer_index(name) + 1]
            a = head((sr - features.mean) / features.std)
            b = head((hr - features.mean) / features.std)
            expected += weight * (a - b).abs().mean().item()
    assert value.item() == pytest.approx(expected, rel=1e-5)
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.features.parameters())
    loss.train()
    assert not loss.features.training


def test_the_srgan_preset_is_the_vgg54_content_loss():
    torch.manual_seed(0)
    features = VGG19Features("relu5_4", SMALL)
    preset = make_perceptual_loss(PerceptualLossConfig(preset="srgan"), features=features)
    hr = torch.rand(2, 3, 32, 32)
    sr = (hr + 0.1 * torch.randn_like(hr)).clamp(0, 1)
    with torch.no_grad():
        expected = F.mse_loss(features(sr) / 12.75, features(hr) / 12.75)
    torch.testing.assert_close(preset(sr, hr), expected)
    torch.testing.assert_close(VGGContentLoss(features)(sr, hr), expected)
    assert layer_name(layer_index("pool3")) == "pool3"


def test_perceptual_loss_reads_the_users_vgg_file_up_to_the_deepest_layer(tmp_path, monkeypatch):
    full = VGG19Features("pool5", SMALL)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(full.state_dict(), path)
    loss = make_perceptual_loss(PerceptualLossConfig(vgg_weights=path))
    assert len(loss.features.features) == layer_index("conv5_4") + 1
    shallow_config = PerceptualLossConfig(vgg_weights=path, layer_weights={"relu2_2": 1.0})
    shallow = make_perceptual_loss(shallow_config)
    assert len(shallow.features.features) == layer_index("relu2_2") + 1
    monkeypatch.delenv("SRGAN_VGG19", raising=False)
    with pytest.raises(BadInputError, match=r"vgg19-dcbb9e9d\.pth"):
        make_perceptual_loss(PerceptualLossConfig())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"pixel": {"kind": "l3"}}, "'l1', 'mse' or 'charbonnier'"),
        ({"pixel": {"weight": -1}}, "greater than or equal to 0"),
        ({"perceptual": {"layer_weights": {"relu6_1": 1}}}, "unknown VGG19 layer 'relu6_1'"),
        ({"perceptual": {"layer_weights": {}}}, "at least one VGG19 layer"),
        ({"perceptual": {"preset": "lpips"}}, "'realesrgan' or 'srgan'"),
        ({"adversarial": {"discriminator": "patchgan"}}, "'unet' or 'srgan'"),
        ({"adversarial": {"weight": "nan"}}, "finite number"),
        ({"adversarial": {"wieght": 1}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_loss_settings_name_the_key(data, message):
    with pytest.raises(ValidationError, match=message):
        LossConfig.model_validate(data)


def test_defaults_are_real_esrgans_gan_stage():
    config = LossConfig()
    assert (config.pixel.kind, config.pixel.weight) == ("l1", 1.0)
    assert (config.perceptual.preset, config.perceptual.weight) == ("realesrgan", 1.0)
    recipe = config.perceptual.recipe()
    assert (recipe.criterion, recipe.feature_scale) == ("l1", 1.0)
    assert (config.adversarial.discriminator, config.adversarial.weight) == ("unet", 0.1)
    assert config.adversarial.num_features == 64 and config.adversarial.skip_connection


def test_generator_loss_weights_and_sums_its_terms():
    config = LossConfig.model_validate(
        {
            "pixel": {"kind": "mse", "weight": 2.0},
            "perceptual": {"weight": 0.5, "layer_weights": {"conv1_1": 1.0}},
            "adversarial": {"weight": 0.1},
        }
    )
    perceptual = make_perceptual_loss(config.perceptual, features=identity_vgg())
    loss = GeneratorLoss(config, perceptual)
    hr = torch.rand(1, 3, 8, 8)
    sr = hr + 0.1
    logits = torch.tensor([[0.0]])  # sigmoid 0.5: -log 0.5
    terms = loss(sr, hr, logits)
    assert terms["pixel"].item() == pytest.approx(2.0 * 0.01, rel=1e-4)
    assert terms["perceptual"].item() == pytest.approx(
        0.5 * sum(0.1 / s for s in IMAGENET_STD) / 3, rel=1e-4
    )
    assert terms["adversarial"].item() == pytest.approx(0.1 * math.log(2), rel=1e-6)
    assert terms["total"].item() == pytest.approx(
        sum(terms[k].item() for k in ("pixel", "perceptual", "adversarial"))
    )
    pixel_only = GeneratorLoss(LossConfig.model_validate({"perceptual": {"weight": 0}}))
    assert set(pixel_only(sr, hr)) == {"pixel", "total"}  # no logits: no adversarial term
    with pytest.raises(ValueError, match="make_perceptual_loss"):
        GeneratorLoss(LossConfig())


def test_discriminators_by_name():
    unet = make_discriminator(AdversarialConfig(num_features=8), hr_size=32)
    assert isinstance(unet, UNetDiscriminatorSN)
    assert unet(torch.rand(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    srgan = make_discriminator(AdversarialConfig(discriminator="srgan", num_features=8), 32)
    assert isinstance(srgan, SRGANDiscriminator)
    assert srgan(torch.rand(2, 3, 32, 32)).shape == (2, 1)
    with pytest.raises(BadInputError, match="multiples of 8"):
        make_discriminator(AdversarialConfig(), hr_size=100)
    with pytest.raises(BadInputError, match="multiple of 16"):
        make_discriminator(AdversarialConfig(discriminator="srgan"), hr_size=40)


def test_pretrained_discriminator_weights_load_from_basicsr_files(tmp_path):
    source = UNetDiscriminatorSN(3, 8)
    path = tmp_path / "netD.pth"
    torch.save({"params": source.state_dict()}, path)  # BasicSR's layout
    config = AdversarialConfig(num_features=8, pretrained=path)
    model = make_discriminator(config, hr_size=16)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)
    wrong = AdversarialConfig(num_features=16, pretrained=path)
    with pytest.raises(BadInputError, match="does not fit the UNetDiscriminatorSN"):
        make_discriminator(wrong, hr_size=16)
    with pytest.raises(BadInputError, match="no such discriminator weights file"):
        load_discriminator_weights(model, tmp_path / "absent.pth")


class _Payload:
    """Pickles to a call of os.mkdir: loading it unsafely would create the folder."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __reduce__(self):
        return (os.mkdir, (self.folder,))


def test_a_hostile_discriminator_file_runs_no_code(tmp_path):
    marker = tmp_path / "was-run"
    path = tmp_path / "hostile.pth"
    torch.save({"params": _Payload(str(marker))}, path)
    with pytest.raises(BadInputError, match="not a state dict torch can read safely"):
        load_discriminator_weights(UNetDiscriminatorSN(3, 8), path)
    assert not marker.exists()
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a zip" * 100)
    with pytest.raises(BadInputError, match="not a state dict torch can read safely"):
        load_discriminator_weights(UNetDiscriminatorSN(3, 8), garbage)
    torch.save({"params": [1, 2, 3]}, tmp_path / "list.pth")
    with pytest.raises(BadInputError, match="not a state dict of tensors"):
        load_discriminator_weights(UNetDiscriminatorSN(3, 8), tmp_path / "list.pth")
