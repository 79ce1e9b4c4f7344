"""Video training data (clip folders, video files, windows, augmentation) and the hybrid loss."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from srgan.imaging import Image, ImageMeta, write_image
from srgan.imaging.clips import FrameFolderClip, VideoFileClip, discover_clips
from srgan.training.data.synthetic_clips import ClipSettings, make_clips
from srgan.training.data.windows import ClipWindowDataset, WindowSettings, shrink
from srgan.training.recipes.hybrid_loss import HybridLoss, gradient_l1, multiscale_l1
from tests.videos import make_video


@pytest.fixture(scope="module")
def ramp_clip(tmp_path_factory):
    """Five 40x40 frames: one photo crop plus 8 x t, so frame t is identifiable and any
    two frames differ by a constant wherever they got the same crop and flip."""
    from skimage import data

    folder = tmp_path_factory.mktemp("ramp") / "ramp"
    base = data.astronaut()[100:140, 100:140].astype(np.int32) // 2
    for t in range(5):
        write_image(folder / f"f{t}.png", Image((base + 8 * t).astype(np.uint8), ImageMeta()))
    return folder


def _dihedral(a: np.ndarray) -> list[np.ndarray]:
    out = []
    for k in range(4):
        rotated = np.rot90(a, k, axes=(-2, -1))
        out += [rotated, rotated[..., ::-1]]
    return out


def test_windows_are_deterministic_and_augmented_alike_across_frames(ramp_clip):
    clips = discover_clips(ramp_clip)
    assert len(clips) == 1 and len(clips[0]) == 5  # a folder of frames is one clip
    settings = WindowSettings(scale=3, frames=3, crop=24, seed=7)
    dataset = ClipWindowDataset(clips, settings, samples_per_clip=16)
    plain = ClipWindowDataset(
        clips, WindowSettings(3, 3, 24, augment=False, temporal_reverse=False, seed=7), 16
    )
    again = ClipWindowDataset(discover_clips(ramp_clip), settings, samples_per_clip=16)
    orders, shapes = set(), set()
    for index in range(16):
        lr, hr = dataset[index]
        assert lr.shape == (3, 3, 8, 8) and hr.shape == (3, 3, 24, 24)
        assert torch.equal(lr, shrink(hr, 3))  # LR made by MATLAB bicubic, 8-bit
        same_lr, same_hr = again[index]
        assert torch.equal(same_hr, hr) and torch.equal(same_lr, lr)
        steps = (hr - hr[0]) * 255  # frame t - frame 0: one constant per frame
        offsets = [float(d.mean()) for d in steps]
        assert all(
            torch.allclose(d, torch.full_like(d, o), atol=1e-3)
            for d, o in zip(steps, offsets, strict=True)
        )
        orders.add("forward" if offsets[1] > 0 else "backward")
        _, reference = plain[index]  # same crop (same draws), no flips, in time order
        matches = [
            i
            for i, candidate in enumerate(_dihedral(reference.numpy()))
            if np.array_equal(candidate[0 if offsets[1] > 0 else 2], hr[0].numpy())
        ]
        assert matches, index
        shapes.add(matches[0])
    assert orders == {"forward", "backward"} and len(shapes) > 2
    dataset.set_epoch(1)
    assert not torch.equal(dataset[0][1], again[0][1])


def test_paired_lr_clips_are_cropped_at_the_same_place(ramp_clip, tmp_path):
    hr_clip = FrameFolderClip(ramp_clip)
    lr_folder = tmp_path / "lr" / "ramp"
    for t, frame in enumerate(hr_clip.read(0, 5)):
        small = shrink(torch.from_numpy(frame.transpose(2, 0, 1).astype(np.float32) / 255), 4)
        pixels = (small * 255).round().byte().permute(1, 2, 0).numpy()
        write_image(lr_folder / f"f{t}.png", Image(np.ascontiguousarray(pixels), ImageMeta()))
    settings = WindowSettings(scale=4, frames=2, crop=16, augment=True, seed=1)
    paired = ClipWindowDataset([hr_clip], settings, 4, lr_clips=discover_clips(tmp_path / "lr"))
    for index in range(4):
        lr, hr = paired[index]
        assert lr.shape == (2, 3, 4, 4) and hr.shape == (2, 3, 16, 16)
        error = (shrink(hr, 4) - lr).abs().mean()
        assert error < 0.03, error  # the LR window shows the same place as the HR one


def test_video_files_decode_only_the_wanted_frames(tmp_path):
    video = make_video(tmp_path / "clip.mp4", frames=12, size=(64, 48), audio=None)
    (clip,) = discover_clips(tmp_path)
    assert isinstance(clip, VideoFileClip) and len(clip) == 12
    with av.open(str(video)) as container:
        every = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    window = clip.read(5, 3)
    assert all(np.array_equal(a, b) for a, b in zip(window, every[5:8], strict=True))
    dataset = ClipWindowDataset([clip], WindowSettings(scale=2, frames=4, crop=32), 3)
    lr, hr = dataset[2]
    assert lr.shape == (4, 3, 16, 16) and hr.shape == (4, 3, 32, 32)


def test_dataset_clips_makes_panning_clips(tmp_path, cli):
    from skimage import data

    photos = tmp_path / "photos"
    for index, picture in enumerate((data.astronaut(), data.coffee(), data.chelsea())):
        write_image(photos / f"{index}.png", Image(picture[:120, :120].copy(), ImageMeta()))
    result = cli("dataset", "clips", photos, tmp_path / "clips", "--frames", "4", "--size", "32",
                 "--clips-per-photo", "2", "--shrink", "1", "--val-fraction", "0.34")  # fmt: skip
    assert "4 train, 2 val clips" in result.stderr
    clips = discover_clips(tmp_path / "clips" / "train")
    assert len(clips) == 4 and all(len(c) == 4 for c in clips)
    frames = clips[0].read(0, 4)
    assert frames[0].shape == (32, 32, 3)
    assert not np.array_equal(frames[0], frames[3])  # the camera moved
    same = make_clips(
        photos, tmp_path / "again", ClipSettings(4, 32, 2, shrink=1, val_fraction=0.34)
    )
    assert same.train_clips == 4


def test_hybrid_loss_terms_worked_out_by_hand():
    target = torch.zeros(1, 1, 4, 4)
    output = torch.zeros(1, 1, 4, 4)
    output[0, 0, 0, 0], output[0, 0, 0, 1] = 1.0, -1.0
    loss = HybridLoss(levels=2)
    result = loss(output, target, {"l1": 1.0, "multiscale": 0.5, "gradient": 2.0})
    # L1: 2 of 16 pixels off by 1. Pyramid: the +1 and -1 cancel in every 2x2 average.
    # dx row 0: (-1) - 1 = -2, 0 - (-1) = 1 -> 3 / 12; dy: -1 and +1 -> 2 / 12.
    assert float(result.terms["l1"]) == pytest.approx(1 / 8)
    assert float(result.terms["multiscale"]) == pytest.approx(0.0)
    assert float(result.terms["gradient"]) == pytest.approx((3 / 12 + 2 / 12) / 2)
    assert float(result.total) == pytest.approx(1 / 8 + 2.0 * 5 / 24)
    block = torch.zeros(1, 1, 4, 4)
    block[..., :2, :2] = 1.0  # one 2x2 block: 1 at level 1 (1/4 of 4 px), 1/4 at level 2
    assert float(multiscale_l1(block, target, levels=2)) == pytest.approx(0.25)
    assert float(multiscale_l1(block, target, levels=5)) == pytest.approx(0.25)  # 2 levels fit
    clip = torch.rand(2, 3, 3, 8, 8)
    assert float(gradient_l1(clip, clip)) == 0.0
    five_d = loss.terms(clip, torch.zeros_like(clip))
    assert float(five_d["l1"]) == pytest.approx(float(clip.mean()))
