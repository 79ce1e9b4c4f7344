"""The U-Net discriminator with spectral norm (Real-ESRGAN's UNetDiscriminatorSN)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srgan.archs.unet_discriminator import UNetDiscriminatorSN


# Real-ESRGAN's RealESRGAN_x4plus_netD.pth (under "params"): these names and shapes.
def published_layout(c: int = 64, in_ch: int = 3) -> dict[str, tuple[int, ...]]:
    layout: dict[str, tuple[int, ...]] = {"conv0.weight": (c, in_ch, 3, 3), "conv0.bias": (c,)}
    plan = [
        (c, 2 * c, 4),
        (2 * c, 4 * c, 4),
        (4 * c, 8 * c, 4),
        (8 * c, 4 * c, 3),
        (4 * c, 2 * c, 3),
        (2 * c, c, 3),
        (c, c, 3),
        (c, c, 3),
    ]
    for index, (cin, cout, k) in enumerate(plan, start=1):
        layout[f"conv{index}.weight_orig"] = (cout, cin, k, k)
        layout[f"conv{index}.weight_u"] = (cout,)
        layout[f"conv{index}.weight_v"] = (cin * k * k,)
    layout["conv9.weight"] = (1, c, 3, 3)
    layout["conv9.bias"] = (1,)
    return layout


def test_state_dict_has_real_esrgans_key_names_and_shapes():
    model = UNetDiscriminatorSN(3, 64)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == published_layout()


def test_per_pixel_logits_for_any_multiple_of_8():
    model = UNetDiscriminatorSN(3, num_features=8)
    for size in ((32, 32), (24, 40)):
        assert model(torch.rand(2, 3, *size)).shape == (2, 1, *size)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        model(torch.rand(1, 1, 32, 32))


def test_spectral_norm_bounds_the_weights_and_gradients_flow():
    torch.manual_seed(0)
    model = UNetDiscriminatorSN(3, num_features=8).train()
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    with torch.no_grad():
        for _ in range(30):  # power iterations converge during training forwards
            model(x)
    for index in range(1, 9):
        conv = getattr(model, f"conv{index}")
        weight = conv.weight.detach().reshape(conv.weight.shape[0], -1)
        assert float(torch.linalg.matrix_norm(weight, ord=2)) == pytest.approx(1.0, rel=0.02)
        assert conv.bias is None
    model(x).mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and float(parameter.grad.abs().sum()) > 0, name


def reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Real-ESRGAN's forward written out from the published state dict: W / (u^T W v)."""

    def weight(name: str) -> torch.Tensor:
        w = state[f"{name}.weight_orig"]
        sigma = torch.dot(
            state[f"{name}.weight_u"], w.reshape(w.shape[0], -1) @ state[f"{name}.weight_v"]
        )
        return w / sigma

    def act(t):
        return F.leaky_relu(t, 0.2)

    def up(t):
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

    x0 = act(F.conv2d(x, state["conv0.weight"], state["conv0.bias"], padding=1))
    x1 = act(F.conv2d(x0, weight("conv1"), stride=2, padding=1))
    x2 = act(F.conv2d(x1, weight("conv2"), stride=2, padding=1))
    x3 = act(F.conv2d(x2, weight("conv3"), stride=2, padding=1))
    x4 = act(F.conv2d(up(x3), weight("conv4"), padding=1)) + x2
    x5 = act(F.conv2d(up(x4), weight("conv5"), padding=1)) + x1
    x6 = act(F.conv2d(up(x5), weight("conv6"), padding=1)) + x0
    out = act(F.conv2d(x6, weight("conv7"), padding=1))
    out = act(F.conv2d(out, weight("conv8"), padding=1))
    return F.conv2d(out, state["conv9.weight"], state["conv9.bias"], padding=1)


def test_loads_a_state_dict_with_the_published_names_and_computes_their_network():
    gen = torch.Generator().manual_seed(1)
    state = {
        name: torch.randn(shape, generator=gen) * 0.2 for name, shape in published_layout(8).items()
    }
    for index in range(1, 9):
        for vector in ("u", "v"):
            key = f"conv{index}.weight_{vector}"
            state[key] = F.normalize(state[key], dim=0)
    model = UNetDiscriminatorSN(3, num_features=8)
    model.load_state_dict(state, strict=True)
    model.eval()  # no power iteration: the stored u, v define the normalisation
    x = torch.rand(2, 3, 16, 24, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(state, x), rtol=1e-4, atol=1e-5)


def test_without_skip_connections_the_layout_is_the_same():
    a = UNetDiscriminatorSN(3, 8, skip_connection=False)
    assert a.state_dict().keys() == UNetDiscriminatorSN(3, 8).state_dict().keys()
    assert a(torch.rand(1, 3, 16, 16)).shape == (1, 1, 16, 16)
