"""BidirectionalRecurrentVSR: shapes, gradients, hyper-parameter recovery and the
centre-frame initialisation of both propagation directions."""

from __future__ import annotations

import pytest
import torch

from srgan.archs.vsr import BidirectionalRecurrentVSR, vsr_hyperparameters

TINY = {"num_features": 8, "num_blocks": 1}


def _tiny(scale: int = 3, **overrides: int) -> BidirectionalRecurrentVSR:
    torch.manual_seed(0)
    return BidirectionalRecurrentVSR(scale=scale, **{**TINY, **overrides}).eval()


class ZeroInitVSR(BidirectionalRecurrentVSR):
    """The same network with BasicVSR's zero initial hidden states, for comparison."""

    def initial_states(self, centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros_like(centre)
        return zeros, zeros


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("frames", [1, 2, 5, 7])
def test_output_shape(scale: int, frames: int) -> None:
    model = _tiny(scale)
    with torch.no_grad():
        out = model(torch.rand(2, frames, 3, 6, 5))
    assert out.shape == (2, frames, 3, 6 * scale, 5 * scale)


def test_every_clip_length_from_one_to_seven() -> None:
    model = _tiny(2)
    with torch.no_grad():
        for frames in range(1, 8):
            assert model(torch.rand(1, frames, 3, 4, 4)).shape == (1, frames, 3, 8, 8)


def test_an_image_is_a_one_frame_clip() -> None:
    model = _tiny(2)
    image = torch.rand(2, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(model(image), model(image.unsqueeze(1)).squeeze(1))


def test_default_network_runs_on_cpu() -> None:
    model = BidirectionalRecurrentVSR().eval()
    with torch.no_grad():
        assert model(torch.rand(1, 5, 3, 16, 16)).shape == (1, 5, 3, 48, 48)


def test_zero_weights_give_the_bilinear_upsampling() -> None:
    model = _tiny(2)
    torch.nn.init.zeros_(model.output_conv.weight)
    torch.nn.init.zeros_(model.output_conv.bias)
    clip = torch.rand(1, 3, 3, 5, 5)
    with torch.no_grad():
        out = model(clip)
    expected = torch.nn.functional.interpolate(
        clip[0], scale_factor=2, mode="bilinear", align_corners=False
    )
    assert torch.allclose(out[0], expected)


def test_gradients_reach_every_parameter() -> None:
    model = _tiny(3).train()
    clip = torch.rand(1, 5, 3, 6, 6, requires_grad=True)
    model(clip).square().mean().backward()
    assert clip.grad is not None and clip.grad.abs().sum() > 0
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_each_output_frame_sees_the_whole_clip() -> None:
    model = _tiny(2)
    clip = torch.rand(1, 5, 3, 6, 6)
    changed = clip.clone()
    changed[:, 4] = torch.rand(3, 6, 6)
    with torch.no_grad():
        first = model(clip)[:, 0] - model(changed)[:, 0]
    assert first.abs().max() > 1e-5  # the last frame reaches frame 0 (backward pass)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_hyperparameters_round_trip(scale: int) -> None:
    kwargs = {
        "in_channels": 1,
        "out_channels": 1,
        "num_features": 12,
        "num_blocks": 3,
        "scale": scale,
    }
    state = BidirectionalRecurrentVSR(**kwargs).state_dict()
    assert vsr_hyperparameters(state) == kwargs
    rebuilt = BidirectionalRecurrentVSR(**vsr_hyperparameters(state))  # type: ignore[arg-type]
    rebuilt.load_state_dict(state, strict=True)


def test_default_hyperparameters_round_trip() -> None:
    state = BidirectionalRecurrentVSR().state_dict()
    assert vsr_hyperparameters(state) == {
        "in_channels": 3,
        "out_channels": 3,
        "num_features": 32,
        "num_blocks": 4,
        "scale": 3,
    }


def test_hyperparameters_refuse_other_state_dicts() -> None:
    from srgan.archs.srresnet import SRResNet

    state = _tiny(2).state_dict()
    assert vsr_hyperparameters(SRResNet(num_features=8, num_blocks=1).state_dict()) is None
    assert vsr_hyperparameters({k: v for k, v in state.items() if "init_forward" not in k}) is None
    assert vsr_hyperparameters({**state, "extra.weight": torch.zeros(1)}) is None
    wrong = dict(state)
    wrong["fusion.weight"] = torch.zeros(8, 8, 1, 1)
    assert vsr_hyperparameters(wrong) is None


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="scale"):
        BidirectionalRecurrentVSR(scale=8)
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        BidirectionalRecurrentVSR(in_channels=1, out_channels=3)
    with pytest.raises(ValueError, match=r"\[N, T, C, h, w\]"):
        _tiny()(torch.rand(3, 6, 6))


def test_both_directions_start_from_the_centre_frame() -> None:
    """Frame 0 is the last step of the backward pass and the first of the forward pass.

    With zero initial states, the forward pass at frame 0 sees only frame 0; with
    centre-frame states it also sees frame 2 directly. We change only the centre frame and
    cut the backward path from frame 2 to frame 0 (its trunk ignores the hidden state), so
    frame 0 can only notice the change through the initial states."""
    clip = torch.rand(1, 5, 3, 6, 6)
    changed = clip.clone()
    changed[:, 2] = torch.rand(3, 6, 6)

    def frame0_change(model: BidirectionalRecurrentVSR) -> float:
        with torch.no_grad():
            hidden_half = model.backward_trunk.merge.weight[:, model.num_features :]
            hidden_half.zero_()  # the backward trunk no longer carries its hidden state
            return float((model(clip)[:, 0] - model(changed)[:, 0]).abs().max())

    centre = _tiny(2)
    zero = ZeroInitVSR(scale=2, **TINY).eval()
    zero.load_state_dict(centre.state_dict())
    assert frame0_change(centre) > 1e-4
    assert frame0_change(zero) == 0.0


def test_initial_states_are_computed_from_the_centre_frame() -> None:
    model = _tiny(2)
    seen: list[torch.Tensor] = []
    original = model.initial_states

    def spy(centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(centre)
        return original(centre)

    model.initial_states = spy  # type: ignore[method-assign]
    clip = torch.rand(1, 5, 3, 6, 6)
    with torch.no_grad():
        model(clip)
        expected = model.extract_features(clip)[:, 2]
    assert len(seen) == 1 and torch.equal(seen[0], expected)
