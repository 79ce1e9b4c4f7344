"""Training data: dataset preparation, patch datasets, augmentation, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from srgan.imaging import Image, ImageMeta, read_image, write_image
from srgan.imaging.resize import imresize
from srgan.training.data.patches import HRFolderDataset, PairedFolderDataset, PatchSettings
from srgan.training.data.prepare import PrepareSettings, prepare_dataset


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name, picture in (
        ("astronaut", data.astronaut()),
        ("coffee", data.coffee()),
        ("chelsea", data.chelsea()),
        ("rocket", data.rocket()),
    ):
        write_image(
            folder / f"{name}.png", Image(np.ascontiguousarray(picture[:200, :240]), ImageMeta())
        )
    return folder


def test_prepare_cuts_sub_images_with_lr_copies_and_splits_by_photo(cli, photos, tmp_path):
    result = cli(
        "dataset",
        "prepare",
        photos,
        tmp_path / "ds",
        "--size",
        "96",
        "--step",
        "64",
        "--scale",
        "2",
        "--scale",
        "4",
        "--val-fraction",
        "0.25",
    )
    assert "train sub-images from 3 photos" in result.stderr
    train = sorted((tmp_path / "ds" / "train" / "HR").iterdir())
    val = sorted((tmp_path / "ds" / "val" / "HR").iterdir())
    # 200 x 240 with size 96, step 64: rows at 0, 64, 104; columns at 0, 64, 128, 144.
    assert len(train) == 3 * 12 and len(val) == 12
    train_photos = {p.name.split("_y")[0] for p in train}
    assert not train_photos & {p.name.split("_y")[0] for p in val}
    for path in train[:3]:
        hr = read_image(path)
        assert hr.pixels.shape == (96, 96, 3)
        for scale in (2, 4):
            lr = read_image(tmp_path / "ds" / "train" / f"LR_x{scale}" / path.name)
            assert lr.pixels.shape == (96 // scale, 96 // scale, 3)
            expected = imresize(hr.to_tensor(), scale=1 / scale).clamp(0, 1)
            assert (lr.to_tensor() - expected).abs().max() <= 1 / 255 + 1e-6


def test_prepare_rejects_bad_settings(cli, photos, tmp_path):
    result = cli(
        "dataset", "prepare", photos, tmp_path / "x", "--size", "90", "-s", "4", check=False
    )
    assert result.returncode == 2 and "multiple" in result.stderr
    result = cli("dataset", "prepare", tmp_path / "none", tmp_path / "x", check=False)
    assert result.returncode == 2


def test_hr_folder_patches_are_consistent_and_deterministic(photos):
    settings = PatchSettings(scale=4, crop=96, seed=3)
    dataset = HRFolderDataset(photos, settings, samples_per_image=2)
    assert len(dataset) == 8
    lr, hr = dataset[5]
    assert lr.shape == (3, 24, 24) and hr.shape == (3, 96, 96)
    # Flips and rotations commute with the symmetric bicubic kernel: LR matches HR.
    expected = imresize(hr, scale=1 / 4).clamp(0, 1)
    assert (lr - expected).abs().max() <= 0.5 / 255 + 1e-6
    again = HRFolderDataset(photos, settings, samples_per_image=2)
    torch.testing.assert_close(again[5][1], hr)
    dataset.set_epoch(1)
    assert not torch.equal(dataset[5][1], hr)


def test_loader_with_workers_gives_the_same_batches(photos):
    dataset = HRFolderDataset(photos, PatchSettings(crop=48, seed=1))
    serial = [b[1] for b in DataLoader(dataset, batch_size=2, num_workers=0)]
    parallel = [b[1] for b in DataLoader(dataset, batch_size=2, num_workers=2)]
    for a, b in zip(serial, parallel, strict=True):
        torch.testing.assert_close(a, b)


def test_paired_folders(photos, tmp_path):
    prepare_dataset(
        photos, tmp_path / "ds", PrepareSettings(size=96, step=96, scales=(4,), val_fraction=0)
    )
    root = tmp_path / "ds" / "train"
    dataset = PairedFolderDataset(root / "LR_x4", root / "HR", PatchSettings(crop=48))
    lr, hr = dataset[0]
    assert lr.shape == (3, 12, 12) and hr.shape == (3, 48, 48)
    # The LR file was shrunk from the whole photo: compare away from the patch border,
    # where shrinking the HR patch alone sees mirrored pixels instead.
    difference = (lr - imresize(hr, scale=1 / 4).clamp(0, 1))[:, 2:-2, 2:-2]
    assert difference.abs().max() <= 1.5 / 255
