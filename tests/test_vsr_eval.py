"""`srgan eval` on Vid4-style clip folders: per-clip PSNR/SSIM, image and video models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from srgan.evaluation import dataset_clips, dataset_images, evaluate_images, holds_clips
from srgan.imaging import Image, ImageMeta, write_image
from srgan.zoo.registry import load_model
from tests.vsr_models import save_checkpoint


def _panned_clip(folder: Path, picture: np.ndarray, count: int, names: str) -> None:
    """`count` 36x36 crops of `picture`, the window moving 2 px right and 1 down a frame."""
    folder.mkdir(parents=True)
    for index in range(count):
        top, left = 100 + index, 120 + 2 * index
        crop = np.ascontiguousarray(picture[top : top + 36, left : left + 36])
        write_image(folder / names.format(index), Image(crop, ImageMeta()))


@pytest.fixture(scope="module")
def vid(tmp_path_factory) -> Path:
    from skimage import data

    root = tmp_path_factory.mktemp("vid")
    _panned_clip(root / "astronaut", data.astronaut(), 11, "{}.png")  # 0.png ... 10.png
    _panned_clip(root / "coffee", data.coffee(), 4, "{:03d}.png")
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("vsr") / "checkpoint")


def test_clip_folders_are_found_with_frames_in_numeric_order(vid):
    assert holds_clips(vid) and not holds_clips(vid / "coffee")
    clips = dataset_clips(vid)
    assert [c.name for c in clips] == ["astronaut", "coffee"]
    assert [p.stem for p in clips[0].paths] == [str(i) for i in range(11)]


def test_image_model_on_clips_averages_the_image_protocol(cli, vid):
    report = json.loads(cli("eval", "-m", "bicubic", "-d", vid, "-s", "2", "--json").stdout)
    assert [(c["name"], c["frames"]) for c in report["clips"]] == [("astronaut", 11), ("coffee", 4)]
    bicubic = load_model("bicubic", 2)
    for clip in report["clips"]:
        frames = dataset_images(vid / clip["name"])
        (table,) = evaluate_images([bicubic], frames, 2)
        assert clip["psnr"] == pytest.approx(table.mean_psnr, abs=1e-9)
        assert clip["ssim"] == pytest.approx(table.mean_ssim, abs=1e-9)
    psnrs = [c["psnr"] for c in report["clips"]]
    assert report["mean"]["psnr"] == pytest.approx(sum(psnrs) / 2)


def test_video_model_and_image_model_side_by_side(cli, vid, checkpoint):
    args = ("eval", "-m", checkpoint, "-m", "bicubic", "-d", vid, "-s", "2", "--window", "3")
    reports = json.loads(cli(*args, "--json").stdout)
    assert [r["model"] for r in reports] == [str(checkpoint), "bicubic"]
    vsr = reports[0]
    assert [c["frames"] for c in vsr["clips"]] == [11, 4]
    assert all(15 < c["psnr"] < 60 and 0 < c["ssim"] <= 1 for c in vsr["clips"])
    table = cli(*args).stdout
    assert "clip" in table and "astronaut" in table and "mean" in table


def test_clips_flag_on_a_folder_of_images_is_bad_input(cli, vid):
    result = cli("eval", "-m", "bicubic", "-d", vid / "coffee", "-s", "2", "--clips", check=False)
    assert result.returncode != 0 and "no clip folders" in result.stderr
