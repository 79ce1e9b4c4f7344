"""Flow alignment of the video network: warping, the learned flow pyramid, OpenCV DIS,
the checkpoint spec (old unaligned checkpoints still load) and hostile state dicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from srgan.archs.flow import PyramidFlow, flow_warp
from srgan.archs.vsr import BidirectionalRecurrentVSR, vsr_hyperparameters
from srgan.imaging.optical_flow import dis_flow
from srgan.training.recipes.hybrid_loss import flow_loss
from srgan.zoo.architectures import detect
from srgan.zoo.registry import load_model

TINY = {"num_features": 6, "num_blocks": 1, "scale": 2}

#: The keys of the first (unaligned) version of the network with TINY's settings.
OLD_KEYS = {
    f"{name}.{kind}"
    for name in (
        "extract_conv",
        "extract_blocks.0.conv1",
        "extract_blocks.0.conv2",
        "extract_blocks.1.conv1",
        "extract_blocks.1.conv2",
        "init_backward",
        "init_forward",
        "backward_trunk.merge",
        "backward_trunk.blocks.0.conv1",
        "backward_trunk.blocks.0.conv2",
        "forward_trunk.merge",
        "forward_trunk.blocks.0.conv1",
        "forward_trunk.blocks.0.conv2",
        "fusion",
        "upsample.0.conv",
        "output_conv",
    )
    for kind in ("weight", "bias")
}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _picture(size: int = 40) -> torch.Tensor:
    from skimage import data

    crop = data.astronaut()[140 : 140 + size, 200 : 200 + size]
    return torch.from_numpy(crop.astype(np.float32) / 255).permute(2, 0, 1)


def test_warping_by_zero_flow_is_the_identity_and_by_one_pixel_a_shift():
    x = torch.rand(2, 4, 9, 11)
    flow = torch.zeros(2, 2, 9, 11)
    assert torch.allclose(flow_warp(x, flow), x, atol=1e-5)
    flow[:, 0] = 1.0  # sample one pixel to the right
    shifted = flow_warp(x, flow)
    assert torch.allclose(shifted[..., :-1], x[..., 1:], atol=1e-5)
    assert torch.allclose(shifted[..., -1], x[..., -1], atol=1e-5)  # border padding
    flow[:, 0], flow[:, 1] = 0.0, -2.0  # two pixels up
    assert torch.allclose(flow_warp(x, flow)[..., 2:, :], x[..., :-2, :], atol=1e-5)
    with pytest.raises(ValueError, match="does not match"):
        flow_warp(x, torch.zeros(2, 2, 9, 10))


def test_a_fresh_flow_pyramid_predicts_no_motion_on_any_size():
    pyramid = PyramidFlow(levels=3, features=8)
    for height, width in ((16, 16), (13, 17), (5, 3), (1, 1)):
        flow = pyramid(torch.rand(2, 3, height, width), torch.rand(2, 3, height, width))
        assert flow.shape == (2, 2, height, width) and not flow.any()


def test_the_flow_pyramid_learns_motion_from_the_photometric_loss():
    """A few Adam steps on a pair shifted by 1.5 px: the pyramid finds the shift, sign
    included (the neighbour sampled at p + flow matches the reference)."""
    torch.manual_seed(0)
    picture = _picture(48)
    reference = picture[:, 4:-4, 4:-4].unsqueeze(0)
    shift = torch.zeros(1, 2, 48, 48)
    shift[:, 0] = -1.5  # the neighbour is the picture moved 1.5 px to the right
    neighbour = flow_warp(picture.unsqueeze(0), shift)[..., 4:-4, 4:-4]
    pyramid = PyramidFlow(levels=2, features=12)
    optimiser = torch.optim.Adam(pyramid.parameters(), lr=2e-3)
    model = BidirectionalRecurrentVSR(**TINY, alignment="learned")
    model.align = pyramid
    clip = torch.stack((reference, neighbour), dim=1)
    first = None
    for _ in range(60):
        flows = model.clip_flows(clip)
        assert flows is not None
        terms = flow_loss(flows)
        loss = terms["flow_photometric"] + 0.05 * terms["flow_smoothness"]
        first = first if first is not None else terms["flow_photometric"].item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        flow = pyramid(reference, neighbour)[..., 6:-6, 6:-6]
    assert float(terms["flow_photometric"]) < 0.7 * first
    assert 0.8 < float(flow[:, 0].mean()) < 2.2  # dx: about +1.5
    assert abs(float(flow[:, 1].mean())) < 0.4


def test_dis_flow_finds_a_shift_and_gives_zero_on_identical_or_tiny_frames():
    picture = _picture(64)
    reference = picture[:, 8:-8, 8:-8].unsqueeze(0)
    neighbour = picture[:, 8:-8, 10:-6].unsqueeze(0)  # content 2 px to the left
    flow = dis_flow(reference, neighbour)
    assert flow.shape == (1, 2, 48, 48) and flow.dtype == torch.float32
    inner = flow[..., 8:-8, 8:-8]
    assert abs(float(inner[:, 0].median()) + 2) < 0.3 and abs(float(inner[:, 1].median())) < 0.3
    warped = flow_warp(neighbour, flow)
    error = (warped - reference).abs()[..., 8:-8, 8:-8].mean()
    assert float(error) < 0.5 * float((neighbour - reference).abs()[..., 8:-8, 8:-8].mean())
    assert float(dis_flow(reference, reference).abs().max()) < 0.05
    assert not dis_flow(torch.rand(2, 3, 8, 30), torch.rand(2, 3, 8, 30)).any()
    assert dis_flow(torch.rand(1, 1, 20, 20), torch.rand(1, 1, 20, 20)).shape == (1, 2, 20, 20)


def test_aligned_networks_run_and_learn_through_the_warp():
    clip = torch.rand(2, 4, 3, 10, 12)
    for alignment in ("learned", "dis"):
        model = BidirectionalRecurrentVSR(**TINY, alignment=alignment)
        if alignment == "dis":
            with pytest.raises(RuntimeError, match="flow_estimator"):
                model(clip)
            model.flow_estimator = dis_flow
        out = model.propagate(clip)
        assert out.frames.shape == (2, 4, 3, 20, 24)
        assert out.flows is not None and out.flows.flows.shape == (2 * 2 * 3, 2, 10, 12)
        assert model(clip[:, 0]).shape == (2, 3, 20, 24)  # one image, no flow
    learned = BidirectionalRecurrentVSR(**TINY, alignment="learned")
    with torch.no_grad():  # a flow that moves: the SR loss must reach the pyramid
        learned.align.levels[0].conv4.bias.fill_(0.3)  # type: ignore[union-attr]
    learned.propagate(clip).frames.mean().backward()
    grads = [p.grad for p in learned.align.parameters()]  # type: ignore[union-attr]
    assert all(g is not None for g in grads) and any(bool(g.any()) for g in grads if g is not None)
    learned.zero_grad()
    learned.propagate(clip, detach_flows=True).frames.mean().backward()
    assert all(p.grad is None for p in learned.align.parameters())  # type: ignore[union-attr]


def test_the_spec_records_the_alignment_and_old_checkpoints_still_load(tmp_path):
    plain = BidirectionalRecurrentVSR(**TINY)
    assert set(plain.state_dict()) == OLD_KEYS  # an unaligned network is the old network
    assert vsr_hyperparameters(plain.state_dict()) == {
        "in_channels": 3,
        "out_channels": 3,
        **TINY,
    }  # the same as before alignment existed
    learned = BidirectionalRecurrentVSR(**TINY, alignment="learned", flow_levels=2)
    spec = vsr_hyperparameters(learned.state_dict())
    assert spec is not None and spec["alignment"] == "learned" and spec["flow_levels"] == 2
    dis = BidirectionalRecurrentVSR(**TINY, alignment="dis")
    assert set(dis.state_dict()) == OLD_KEYS | {"opencv_flow"}
    found = detect(dis.state_dict())
    assert found is not None and found[1]["alignment"] == "dis"

    clip = torch.rand(1, 3, 3, 12, 12)
    for name, network in (("old", plain), ("learned", learned), ("dis", dis)):
        save_file(network.state_dict(), str(tmp_path / f"{name}.safetensors"))
        loaded = load_model(str(tmp_path / f"{name}.safetensors"))
        module = loaded.module
        assert isinstance(module, BidirectionalRecurrentVSR) and loaded.descriptor.temporal
        assert module.alignment == name.replace("old", "none")
        with torch.no_grad():
            if name != "dis":
                expected = network(clip)
            else:
                network.flow_estimator = dis_flow
                expected = network(clip)
            assert torch.allclose(module(clip), expected, atol=1e-6)


def test_hostile_alignment_entries_are_refused_not_crashed():
    base = BidirectionalRecurrentVSR(**TINY, alignment="dis").state_dict()
    for marker in (torch.tensor([7.0]), torch.tensor([float("nan")]), torch.ones(3), "dis"):
        state = {**base, "opencv_flow": marker}
        assert vsr_hyperparameters(state) is None  # type: ignore[arg-type]
    learned = BidirectionalRecurrentVSR(**TINY, alignment="learned").state_dict()
    broken = {**learned, "align.levels.0.conv1.weight": torch.zeros(4)}
    assert vsr_hyperparameters(broken) is None
    extra = {**learned, "align.levels.0.conv5.weight": torch.zeros(2, 2, 3, 3)}
    assert vsr_hyperparameters(extra) is None
    both = {**learned, "opencv_flow": torch.tensor([1.0])}
    assert vsr_hyperparameters(both) is None
    with pytest.raises(ValueError, match="alignment"):
        BidirectionalRecurrentVSR(**TINY, alignment="spynet")


def test_the_warp_error_cue_is_zero_where_the_flow_is_right_and_survives_a_checkpoint(tmp_path):
    from srgan.archs.vsr import warp_errors

    picture = _picture(24)
    shifted = torch.roll(picture, shifts=1, dims=-1)  # the neighbour: moved one pixel right
    right = torch.zeros(1, 2, 24, 24)
    right[:, 0] = 1.0  # sample the neighbour one pixel to the right: exactly the reference
    error_right = warp_errors(picture[None], shifted[None], right)
    error_none = warp_errors(picture[None], shifted[None], torch.zeros(1, 2, 24, 24))
    inner = (..., slice(None), slice(1, -1))  # away from the wrapped-around column
    assert error_right.shape == (1, 1, 24, 24)
    assert float(error_right[inner].max()) < 1e-5 < float(error_none[inner].mean())

    with pytest.raises(ValueError, match="warp_error"):
        BidirectionalRecurrentVSR(**TINY, warp_error=True)  # nothing to measure unaligned
    cued = BidirectionalRecurrentVSR(**TINY, alignment="dis", warp_error=True)
    assert cued.forward_trunk.merge.weight.shape[1] == 2 * TINY["num_features"] + 1
    spec = vsr_hyperparameters(cued.state_dict())
    assert spec is not None and spec["warp_error"] == 1 and spec["alignment"] == "dis"
    plain = vsr_hyperparameters(BidirectionalRecurrentVSR(**TINY, alignment="dis").state_dict())
    assert plain is not None and "warp_error" not in plain  # older checkpoints: unchanged
    crooked = {**cued.state_dict(), "forward_trunk.merge.weight": torch.zeros(6, 14, 3, 3)}
    assert vsr_hyperparameters(crooked) is None

    # The cue reaches the cells: the output depends on the weights that read it.
    clip = torch.stack([picture, shifted, torch.roll(shifted, 1, -1)])[None, :, :, :20, :20]
    cued.flow_estimator = dis_flow
    with torch.no_grad():
        before = cued(clip)
        cued.forward_trunk.merge.weight[:, -1].add_(0.5)
        assert not torch.allclose(cued(clip), before)
        assert cued(clip[:, 0]).shape == (1, 3, 40, 40)  # one image: a zero cue
    save_file(cued.state_dict(), str(tmp_path / "cued.safetensors"))
    loaded = load_model(str(tmp_path / "cued.safetensors")).module
    assert isinstance(loaded, BidirectionalRecurrentVSR) and loaded.warp_error
    with torch.no_grad():
        assert torch.allclose(loaded(clip), cued(clip), atol=1e-6)


def test_a_config_with_warp_error_but_no_alignment_is_refused_in_words():
    from pydantic import ValidationError

    from srgan.training.config import ModelConfig

    with pytest.raises(ValidationError, match="set alignment to learned or dis"):
        ModelConfig(arch="vsr", alignment="none", warp_error=True)
    assert ModelConfig(arch="vsr", alignment="dis", warp_error=True).warp_error
