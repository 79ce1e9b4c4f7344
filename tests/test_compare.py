"""`srgan compare`: the sheet, the numbers, the HTML report (in a real Chromium too)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from safetensors.torch import save_file

from srgan.archs.srvgg import SRVGGNetCompact
from srgan.comparison.regions import Region, disagreement, parse_region, strongest_regions
from srgan.errors import BadInputError
from srgan.evaluation import dataset_images, evaluate_images
from srgan.imaging.io import read_image
from srgan.imaging.transform import crop_to_multiple, resize_image
from srgan.zoo.registry import load_model

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CHROMIUM = Path("/usr/bin/chromium")


def test_the_strongest_regions_are_where_the_outputs_differ():
    a = np.zeros((120, 160, 3), np.uint8)
    b = a.copy()
    b[30:50, 100:120] = 200  # a strong difference
    b[90:100, 10:20] = 60  # a weaker one, elsewhere
    regions = strongest_regions(disagreement([a, b]), 24, 3)
    first = regions[0]
    assert first.x <= 100 and first.x + 24 >= 120 and first.y <= 30 and first.y + 24 >= 50
    second = regions[1]
    assert not second.overlaps(first)
    assert second.x <= 10 and second.x + 24 >= 20 and second.y <= 90 and second.y + 24 >= 100
    # identical outputs: one region (somewhere), no more
    assert len(strongest_regions(disagreement([a, a]), 24, 3)) == 1


def test_crop_text_is_checked():
    assert parse_region("1,2,30,40") == Region(1, 2, 30, 40)
    for text in ("1,2,3", "a,b,c,d", "-1,0,8,8", "0,0,0,8"):
        with pytest.raises(BadInputError):
            parse_region(text)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A small SRVGGNetCompact x4 file (random weights, fixed seed): a third model."""
    torch.manual_seed(3)
    network = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_file(network.state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    from skimage import data

    folder = tmp_path_factory.mktemp("hr")
    PILImage.fromarray(data.astronaut()[40:168, 160:296]).save(folder / "astronaut.png")
    PILImage.fromarray(data.chelsea()[60:180, 100:220]).save(folder / "chelsea.png")
    return folder


def test_compare_scores_against_ground_truth_like_eval(cli, tmp_path, photos, tiny_model):
    sheet, report = tmp_path / "sheet.png", tmp_path / "report.html"
    result = cli(
        "compare", photos, "--hr", photos, "-m", "bicubic", "-m", tiny_model,
        "-o", sheet, "--html", report, "--json", "-q",
    )  # fmt: skip
    numbers = json.loads(result.stdout)
    assert numbers["models"] == ["bicubic", "tiny"] and numbers["images"] == [
        "astronaut",
        "chelsea",
    ]
    # The same protocol as `srgan eval`: the same numbers.
    expected = evaluate_images(
        [load_model("bicubic", 4), load_model(str(tiny_model))], dataset_images(photos), 4
    )
    for label, table in zip(["bicubic", "tiny"], expected, strict=True):
        got = numbers["scores"][label]["images"]
        assert [g["psnr"] for g in got] == pytest.approx([s.psnr for s in table.images])
        assert [g["ssim"] for g in got] == pytest.approx([s.ssim for s in table.images])
    # Random weights lose to bicubic on every image and every metric.
    assert numbers["wins"] == {"bicubic": {"psnr": 2, "ssim": 2}, "tiny": {"psnr": 0, "ssim": 0}}
    assert numbers["head_to_head_psnr"] == {"bicubic": {"tiny": 2}, "tiny": {"bicubic": 0}}
    (difference,) = numbers["differences"]
    assert difference["a"] == "bicubic" and difference["mean_abs"] > 1
    # input, two models, ground truth; two rows of 256-px cells with two crops each
    image = PILImage.open(sheet)
    assert image.width == 8 + 4 * (256 + 8)
    assert image.height > 2 * (256 + 2 * 256)
    for name in ("astronaut", "chelsea"):
        assert len(numbers["crops"][name]) == 2
    text = report.read_text()
    assert "<table id=scores>" in text and "<table id=wins>" in text
    assert "http://" not in text and "https://" not in text


def test_a_given_lr_input_and_a_fixed_crop(cli, tmp_path, photos):
    hr = crop_to_multiple(read_image(photos / "astronaut.png"), 4)
    lr_folder = tmp_path / "lr"
    lr_folder.mkdir()
    small = resize_image(hr, scale=1 / 4)
    PILImage.fromarray(small.pixels).save(lr_folder / "astronaut.png")
    result = cli(
        "compare", lr_folder / "astronaut.png", "--hr", photos, "-m", "bicubic",
        "--crop", "8,16,40,24", "--json", "-q",
    )  # fmt: skip
    numbers = json.loads(result.stdout)
    assert numbers["crops"]["astronaut"] == [{"x": 8, "y": 16, "w": 40, "h": 24}]
    protocol = json.loads(
        cli("compare", photos / "astronaut.png", "--hr", photos, "-m", "bicubic", "--json").stdout
    )
    # The saved LR is the protocol's LR: the same score either way.
    assert numbers["scores"]["bicubic"]["mean"] == protocol["scores"]["bicubic"]["mean"]


def test_without_ground_truth_it_reports_the_differences(cli, tmp_path, photos, tiny_model):
    lr = tmp_path / "small.png"
    PILImage.open(photos / "chelsea.png").resize((30, 30)).save(lr)
    result = cli("compare", lr, "-m", "bicubic", "-m", tiny_model, "-m", "bicubic", "-q")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("differences between the models")
    rows = [line.split() for line in lines[2:]]
    assert [row[:2] for row in rows] == [
        ["bicubic", "tiny"],
        ["bicubic", "bicubic"],  # the second bicubic column is labelled "bicubic (2)"
        ["tiny", "bicubic"],
    ]
    assert "bicubic (2)" in lines[3]
    assert rows[1][-1] == "inf" and float(rows[1][-3]) == 0  # the same model twice


def test_one_sheet_per_image(cli, tmp_path, photos):
    folder = tmp_path / "sheets"
    cli("compare", photos, "-m", "bicubic", "--per-image", "-o", folder, "--cell", "128", "-q")
    assert sorted(p.name for p in folder.iterdir()) == ["astronaut.png", "chelsea.png"]
    assert PILImage.open(folder / "chelsea.png").width == 8 + 2 * (128 + 8)


def test_bad_requests_are_one_line_errors_and_write_nothing(cli, tmp_path, photos):
    def refused(*args: object) -> str:
        result = cli("compare", *args, check=False)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        return result.stderr

    assert "one of the inputs" in refused(photos / "chelsea.png", "-m", "bicubic", "-o",
                                          photos / "chelsea.png")  # fmt: skip
    assert ".png, .jpg or .webp" in refused(photos, "-m", "bicubic", "-o", tmp_path / "s.gif")
    other = tmp_path / "other"
    other.mkdir()
    assert "no image named like" in refused(photos, "--hr", other, "-m", "bicubic")
    odd = tmp_path / "odd"
    odd.mkdir()
    PILImage.new("RGB", (50, 30)).save(odd / "chelsea.png")
    assert "neither its ground truth" in refused(odd / "chelsea.png", "--hr", photos, "-m",
                                                 "bicubic")  # fmt: skip
    assert "unknown model" in refused(photos, "-m", "no-such-model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd", "other"]


@pytest.mark.skipif(not (DATASETS / "Set5").is_dir(), reason="needs ../shared/datasets/Set5")
def test_set5_with_three_models(cli, tmp_path, tiny_model):
    set5 = DATASETS / "Set5"
    sheet, report = tmp_path / "set5.png", tmp_path / "set5.html"
    result = cli(
        "compare", set5, "--hr", set5, "-m", "bicubic", "-m", "anime-video", "-m", tiny_model,
        "-o", sheet, "--html", report, "-q",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    mean = next(line for line in lines if line.startswith("mean")).split()
    # The published bicubic x4 figure and the README's anime-video line
    assert float(mean[1]) == pytest.approx(28.43, abs=0.01)
    assert float(mean[3]) == pytest.approx(28.25, abs=0.01)
    assert PILImage.open(sheet).width == 8 + 5 * (256 + 8)
    text = report.read_text()
    assert text.count("<section class=image") == 5


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_report_works_offline_in_chromium(cli, tmp_path, photos, tiny_model):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.test_serve_page import CHROMIUM_FLAGS

    report = tmp_path / "report.html"
    cli("compare", photos, "--hr", photos, "-m", "bicubic", "-m", tiny_model, "--html", report)
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(report.as_uri())
        section = page.locator("section.image").first
        # ground truth given: the slider starts on the first model against the truth
        assert section.locator("select.left").input_value() == "bicubic"
        assert section.locator("select.right").input_value() == "ground truth"
        left = section.locator(".left-image")
        assert left.evaluate("e => e.src.startsWith('data:image/png')")
        section.locator(".slider").fill("30")
        assert "70%" in left.evaluate("e => e.style.clipPath")
        section.locator(".pairs button", has_text="input | tiny").click()
        assert section.locator("select.left").input_value() == "input"
        assert section.locator("select.right").input_value() == "tiny"
        assert left.evaluate("e => e.classList.contains('nearest')")
        natural = left.evaluate("e => [e.naturalWidth, e.naturalHeight]")
        assert natural == [34, 32]  # the input itself, enlarged by the browser
        assert page.locator("#wins tr").count() == 3
        browser.close()
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
