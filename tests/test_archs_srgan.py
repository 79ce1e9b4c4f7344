"""SRResNet generator and SRGAN discriminator: shapes, sizes, key names, trainability."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from srgan.archs.discriminator import SRGANDiscriminator
from srgan.archs.srresnet import SRResNet, srresnet_hyperparameters


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_srresnet_output_shape(scale: int) -> None:
    model = SRResNet(num_features=8, num_blocks=2, scale=scale).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 7, 5))
    assert out.shape == (2, 3, 7 * scale, 5 * scale)


def test_srresnet_channels() -> None:
    model = SRResNet(in_channels=1, out_channels=2, num_features=8, num_blocks=1, scale=2).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 6, 6)).shape == (1, 2, 12, 12)


@pytest.mark.parametrize("scale", [0, 1, 5, 6, 16])
def test_srresnet_rejects_scale(scale: int) -> None:
    with pytest.raises(ValueError, match="scale"):
        SRResNet(scale=scale)


def test_srresnet_output_not_clamped() -> None:
    model = SRResNet(num_features=8, num_blocks=1, scale=2).eval()
    with torch.no_grad():
        model.tail.bias.fill_(5.0)
        assert model(torch.zeros(1, 3, 4, 4)).min() > 1.0


def test_srresnet_default_parameter_count() -> None:
    model = SRResNet()
    count = _num_params(model)
    print(f"SRResNet (64 features, 16 blocks, x4) parameters: {count:,}")
    assert 1_300_000 <= count <= 1_700_000
    assert len(model.blocks) == 16
    assert len(model.upsample) == 2


def test_srresnet_structure() -> None:
    model = SRResNet(num_features=8, num_blocks=3, scale=2)
    assert len(model.blocks) == 3
    x = torch.randn(1, 8, 5, 5)
    block = model.blocks[0]
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    # With the block's last BN zeroed, the block is exactly its identity skip.
    assert torch.equal(block.eval()(x), x)


def test_srresnet_state_dict_keys() -> None:
    keys = set(SRResNet(num_features=8, num_blocks=2, scale=4).state_dict())
    for key in (
        "head.0.weight",
        "head.0.bias",
        "head.1.weight",
        "blocks.0.conv1.weight",
        "blocks.0.bn1.running_mean",
        "blocks.1.conv2.weight",
        "blocks.1.bn2.running_var",
        "blocks.1.prelu.weight",
        "trunk_conv.weight",
        "trunk_bn.weight",
        "upsample.0.conv.weight",
        "upsample.1.conv.bias",
        "upsample.1.prelu.weight",
        "tail.weight",
        "tail.bias",
    ):
        assert key in keys
    assert "blocks.2.conv1.weight" not in keys
    assert "upsample.2.conv.weight" not in keys


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"scale": 2},
        {"scale": 3, "num_blocks": 5, "num_features": 32},
        {"scale": 8, "num_blocks": 1, "num_features": 16},
        {"in_channels": 1, "out_channels": 1, "num_blocks": 0, "num_features": 8, "scale": 4},
        {"in_channels": 4, "out_channels": 3, "num_blocks": 2, "num_features": 12, "scale": 2},
    ],
)
def test_srresnet_hyperparameters_round_trip(kwargs: dict[str, int]) -> None:
    model = SRResNet(**kwargs)
    expected = {
        "in_channels": model.in_channels,
        "out_channels": model.out_channels,
        "num_features": model.num_features,
        "num_blocks": model.num_blocks,
        "scale": model.scale,
    }
    state = model.state_dict()
    assert srresnet_hyperparameters(state) == expected
    without_counters = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert srresnet_hyperparameters(without_counters) == expected
    rebuilt = SRResNet(**srresnet_hyperparameters(state))  # type: ignore[arg-type]
    rebuilt.load_state_dict(state)


def test_srresnet_hyperparameters_rejects_foreign() -> None:
    state = SRResNet(num_features=8, num_blocks=2, scale=4).state_dict()
    assert srresnet_hyperparameters({}) is None
    assert srresnet_hyperparameters(SRGANDiscriminator(num_features=4).state_dict()) is None
    assert srresnet_hyperparameters({f"module.{k}": v for k, v in state.items()}) is None
    assert srresnet_hyperparameters({**state, "extra.weight": torch.zeros(1)}) is None
    missing = dict(state)
    del missing["trunk_bn.running_var"]
    assert srresnet_hyperparameters(missing) is None
    # A single x4 shuffle stage (16C channels) is not something SRResNet builds.
    odd = {k: v for k, v in state.items() if not k.startswith("upsample.1.")}
    odd["upsample.0.conv.weight"] = torch.zeros(16 * 8, 8, 3, 3)
    odd["upsample.0.conv.bias"] = torch.zeros(16 * 8)
    assert srresnet_hyperparameters(odd) is None
    wrong_shape = dict(state)
    wrong_shape["blocks.1.conv2.weight"] = torch.zeros(8, 8, 5, 5)
    assert srresnet_hyperparameters(wrong_shape) is None


def test_discriminator_shapes() -> None:
    disc = SRGANDiscriminator()
    print(f"SRGANDiscriminator (64 features, 96x96) parameters: {_num_params(disc):,}")
    assert disc(torch.rand(2, 3, 96, 96)).shape == (2, 1)
    big = SRGANDiscriminator(num_features=8, input_size=128)
    assert big(torch.rand(3, 3, 128, 128)).shape == (3, 1)
    assert big.classifier[0].in_features == 8 * 8 * 8 * 8
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in disc.modules()) == 7
    assert disc.classifier[0].in_features == 512 * 6 * 6


@pytest.mark.parametrize("size", [0, 8, 100, 97])
def test_discriminator_rejects_input_size(size: int) -> None:
    with pytest.raises(ValueError, match="input_size"):
        SRGANDiscriminator(input_size=size)


def test_discriminator_forward_checks_size() -> None:
    disc = SRGANDiscriminator(num_features=4, input_size=32)
    with pytest.raises(ValueError, match=r"32, 32.*got \[1, 3, 48, 48\]"):
        disc(torch.rand(1, 3, 48, 48))
    with pytest.raises(ValueError, match="got"):
        disc(torch.rand(1, 1, 32, 32))


def test_gradients_flow() -> None:
    gen = SRResNet(num_features=8, num_blocks=2, scale=2)
    disc = SRGANDiscriminator(num_features=4, input_size=32)
    lr = torch.rand(2, 3, 16, 16)
    logits = disc(gen(lr))
    logits.sum().backward()
    for name, module in (("generator", gen), ("discriminator", disc)):
        for pname, param in module.named_parameters():
            assert param.grad is not None, f"{name}.{pname} has no gradient"
            assert torch.isfinite(param.grad).all(), f"{name}.{pname}"
            assert param.grad.abs().sum() > 0, f"{name}.{pname} has zero gradient"


@pytest.fixture
def single_thread() -> Iterator[None]:
    """Tiny convs run fastest on one thread and stay steady on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.usefixtures("single_thread")
def test_srresnet_overfits_one_pair() -> None:
    torch.manual_seed(0)
    model = SRResNet(num_features=16, num_blocks=2, scale=2)
    lr_img = torch.rand(1, 3, 16, 16)
    hr_img = torch.rand(1, 3, 32, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        start = nn.functional.mse_loss(model(lr_img), hr_img).item()
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(lr_img), hr_img)
        loss.backward()
        opt.step()
    with torch.no_grad():
        end = nn.functional.mse_loss(model(lr_img), hr_img).item()
    print(f"overfit MSE {start:.4f} -> {end:.4f}")
    assert end < start / 5
