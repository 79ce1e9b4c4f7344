"""The evaluation package: images in natural order, given LR inputs (`srgan eval --lr`)
and LR sets degraded like training pairs (`srgan dataset degrade`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from srgan.errors import BadInputError
from srgan.evaluation import dataset_images, evaluate_pairs, lr_pairs, score_model
from srgan.imaging import Image, ImageMeta, read_image, write_image
from srgan.zoo.registry import load_model


@pytest.fixture(scope="module")
def hr_set(tmp_path_factory):
    """Five 60x52 crops named so that natural and plain order differ (img2 < img10)."""
    from skimage import data

    folder = tmp_path_factory.mktemp("hr")
    picture = data.astronaut()
    for index in (1, 2, 10, 11, 3):
        crop = np.ascontiguousarray(picture[20 * index : 20 * index + 52, 40 : 40 + 60])
        write_image(folder / f"img{index}.png", Image(crop, ImageMeta()))
    return folder


def test_images_come_in_natural_order_with_per_image_scores(hr_set):
    assert [p.stem for p in dataset_images(hr_set)] == ["img1", "img2", "img3", "img10", "img11"]
    table = score_model(load_model("bicubic", 4), hr_set, 4)
    assert [s.name for s in table.images] == ["img1", "img2", "img3", "img10", "img11"]
    assert table.mean_psnr == pytest.approx(sum(s.psnr for s in table.images) / 5)


def test_given_bicubic_lr_scores_as_the_protocol_and_degraded_lr_is_seeded(cli, hr_set, tmp_path):
    cli("dataset", "degrade", hr_set, tmp_path / "bicubic", "--degradation", "bicubic")
    made = json.loads(cli("eval", "-m", "bicubic", "-d", hr_set, "--json").stdout)
    given = json.loads(
        cli("eval", "-m", "bicubic", "-d", hr_set, "--lr", tmp_path / "bicubic", "--json").stdout
    )
    assert given["mean"] == pytest.approx(made["mean"], abs=1e-12)  # the same LR pixels

    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        cli("dataset", "degrade", hr_set, tmp_path / name, "--seed", seed)
    first = read_image(tmp_path / "a" / "img2.png").pixels
    assert first.shape == (13, 15, 3)  # 52x60 / 4
    assert np.array_equal(first, read_image(tmp_path / "b" / "img2.png").pixels)
    assert not np.array_equal(first, read_image(tmp_path / "c" / "img2.png").pixels)
    assert not np.array_equal(first, read_image(tmp_path / "bicubic" / "img2.png").pixels)
    degraded = json.loads(
        cli("eval", "-m", "bicubic", "-d", hr_set, "--lr", tmp_path / "a", "--json").stdout
    )
    assert degraded["mean"]["psnr"] < made["mean"]["psnr"]  # blur, noise, JPEG cost dB


def test_pairs_that_do_not_fit_are_bad_input(hr_set, tmp_path, cli):
    with pytest.raises(BadInputError, match="not 1/4"):
        evaluate_pairs([load_model("bicubic", 4)], lr_pairs(hr_set, hr_set), 4)
    (tmp_path / "some").mkdir()
    (tmp_path / "some" / "img1.png").write_bytes((hr_set / "img1.png").read_bytes())
    result = cli("eval", "-m", "bicubic", "-d", hr_set, "--lr", tmp_path / "some", check=False)
    assert (
        result.returncode == 2
        and "no LR image for img2.png, img3.png, img10.png and 1 more" in result.stderr
    )
    missing = cli("dataset", "degrade", tmp_path / "none", tmp_path / "out", check=False)
    assert missing.returncode == 2 and "no images found" in missing.stderr
