"""VGG19 loading from a user file, and the SRGAN losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srgan.archs.vgg import VGG19Features, layer_index
from srgan.errors import BadInputError
from srgan.training.losses import (
    PixelLoss,
    VGGContentLoss,
    discriminator_loss,
    generator_adversarial_loss,
    perceptual_loss,
)
from srgan.training.vgg_weights import load_vgg19_features

SMALL = (4, 8, 8, 16, 16)


def test_layer_indices_match_torchvision():
    expected = {
        "conv1_1": 0,
        "relu1_2": 3,
        "pool1": 4,
        "conv3_4": 16,
        "relu4_4": 26,
        "pool4": 27,
        "conv5_4": 34,
        "relu5_4": 35,
        "pool5": 36,
    }
    assert {name: layer_index(name) for name in expected} == expected
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        layer_index("relu6_1")


@pytest.fixture
def small_vgg_file(tmp_path):
    """A random VGG19 of small widths saved in torchvision's full layout (classifier too)."""
    torch.manual_seed(0)
    full = VGG19Features("pool5", SMALL)
    state = {k: v for k, v in full.state_dict().items() if k.startswith("features.")}
    state["classifier.0.weight"] = torch.randn(32, 16 * 7 * 7)
    state["classifier.0.bias"] = torch.randn(32)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return path, full


def test_vgg_weights_load_from_a_user_file(small_vgg_file):
    path, full = small_vgg_file
    features = load_vgg19_features(path, "relu5_4")
    assert len(features.features) == layer_index("relu5_4") + 1
    assert all(not p.requires_grad for p in features.parameters())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = full.features[:36]((x - full.mean) / full.std)
        torch.testing.assert_close(features(x), expected)


def test_vgg_weights_from_the_environment(small_vgg_file, monkeypatch):
    path, _ = small_vgg_file
    monkeypatch.setenv("SRGAN_VGG19", str(path))
    assert isinstance(load_vgg19_features(None, "relu2_2"), VGG19Features)


def test_missing_or_wrong_vgg_weights_explain_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("SRGAN_VGG19", raising=False)
    for given in (None, tmp_path / "absent.pth"):
        with pytest.raises(BadInputError) as caught:
            load_vgg19_features(given)
        message = str(caught.value)
        assert "vgg19-dcbb9e9d.pth" in message and 'content_loss = "mse"' in message
        assert "--vgg-weights" in message and "SRGAN_VGG19" in message
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(BadInputError, match="not torchvision VGG19 weights"):
        load_vgg19_features(tmp_path / "other.pth")


def test_vgg_content_loss_scale_ranges_and_gradients(small_vgg_file):
    path, _ = small_vgg_file
    features = load_vgg19_features(path)
    loss = VGGContentLoss(features)
    hr = torch.rand(2, 3, 32, 32)
    sr = (hr + 0.1 * torch.randn_like(hr)).clamp(0, 1).requires_grad_()
    value = loss(sr, hr)
    with torch.no_grad():
        expected = F.mse_loss(features(sr) / 12.75, features(hr) / 12.75)
    torch.testing.assert_close(value.detach(), expected)
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert loss(hr, hr).item() == 0
    symmetric = VGGContentLoss(features, value_range="symmetric")
    torch.testing.assert_close(symmetric(sr.detach() * 2 - 1, hr * 2 - 1), value.detach())
    loss.train()
    assert not loss.features.training


def test_pixel_and_adversarial_losses():
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(PixelLoss("mse")(a, b), ((a - b) ** 2).mean())
    torch.testing.assert_close(PixelLoss("l1")(a, b), (a - b).abs().mean())
    with pytest.raises(ValueError):
        PixelLoss("l3")
    logits = torch.tensor([[2.0], [-1.0]])
    sigmoid = torch.sigmoid(logits)
    torch.testing.assert_close(generator_adversarial_loss(logits), -torch.log(sigmoid).mean())
    expected = -torch.log(sigmoid).mean() - torch.log(1 - sigmoid).mean()
    torch.testing.assert_close(discriminator_loss(logits, logits), expected)
    total = perceptual_loss(torch.tensor(0.5), torch.tensor(2.0))
    torch.testing.assert_close(total, torch.tensor(0.5 + 1e-3 * 2.0))
