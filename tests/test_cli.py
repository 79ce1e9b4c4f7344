"""The `srgan` command line, run as a user runs it (a real process for exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from srgan.imaging import Image, ImageMeta, read_image, write_image
from tests import pngcodec
from tests.reference_impl import ref_imresize, ref_psnr, ref_ssim

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def srgan(cli):
    return cli


def test_console_script_entry_point_and_exit_codes(tmp_path):
    """One real process: the installed `srgan` command, its output streams and exit codes."""
    command = [sys.executable, "-m", "srgan"]
    version = subprocess.run([*command, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("srgan ")
    bad = subprocess.run(
        [*command, "upscale", tmp_path / "missing.png", tmp_path / "o.png"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"srgan: error: {tmp_path / 'missing.png'}: no such file or folder"
    assert list(tmp_path.iterdir()) == []


def test_a_command_imports_its_own_module_only(tmp_path):
    """`srgan upscale` does not import the training, video or server commands (start-up);
    an unknown command still gets Typer's suggestion from the full list."""
    code = (
        "import sys\n"
        "from srgan.cli.main import run\n"
        "try:\n"
        f"    run(['upscale', {str(tmp_path / 'missing.png')!r}, 'o.png'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('srgan.cli.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = done.stdout
    assert "srgan.cli.resize_cmds" in loaded
    for other in ("train_cmd", "train_vsr_cmd", "video_cmd", "serve_cmd", "bench_cmds"):
        assert f"srgan.cli.{other}'" not in loaded
    typo = subprocess.run(
        [sys.executable, "-m", "srgan", "upscal", "a", "b"], capture_output=True, text=True
    )
    assert typo.returncode == 2 and "Did you mean 'upscale'?" in typo.stderr


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    PILImage.fromarray(data.astronaut()[100:260, 150:330]).save(path)
    return path


def test_version_and_help(srgan):
    assert srgan("--version").stdout.startswith("srgan ")
    manual = srgan("--help").stdout
    for command in ("upscale", "downscale", "psnr", "eval"):
        assert command in manual


def test_upscale_bicubic_file(srgan, tmp_path, photo):
    srgan("upscale", photo, tmp_path / "big.png", "--model", "bicubic", "--scale", "4")
    source, result = read_image(photo), read_image(tmp_path / "big.png")
    assert (result.height, result.width) == (source.height * 4, source.width * 4)
    expected = ref_imresize(source.pixels.astype(np.float64) / 255, 4)
    expected = np.clip(np.round(expected * 255), 0, 255)
    assert np.abs(result.pixels.astype(int) - expected).max() <= 1


def test_upscale_outscale_gives_exact_size(srgan, tmp_path, photo):
    srgan(
        "upscale",
        photo,
        tmp_path / "o.jpg",
        "-m",
        "bicubic",
        "--outscale",
        "2.5",
        "--quality",
        "90",
    )
    result = read_image(tmp_path / "o.jpg")
    assert (result.height, result.width) == (400, 450)


def test_upscale_keeps_16bit_rgba_and_gray(srgan, tmp_path):
    rng = np.random.default_rng(1)
    deep = rng.integers(0, 65536, (12, 10, 4)).astype(np.uint16)
    (tmp_path / "deep.png").write_bytes(pngcodec.encode(deep))
    gray = rng.integers(0, 256, (12, 10, 1)).astype(np.uint8)
    write_image(tmp_path / "gray.jpg", Image(gray, ImageMeta()))
    srgan("upscale", tmp_path / "deep.png", tmp_path / "deep_x2.png", "-m", "bicubic", "-s", "2")
    srgan("upscale", tmp_path / "gray.jpg", tmp_path / "gray_x2.jpg", "-m", "bicubic", "-s", "2")
    decoded, _ = pngcodec.decode((tmp_path / "deep_x2.png").read_bytes())
    assert decoded.shape == (24, 20, 4) and decoded.dtype == np.uint16
    assert PILImage.open(tmp_path / "gray_x2.jpg").mode == "L"


def test_upscale_folder_with_suffix_and_ext(srgan, tmp_path, photo):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(photo.read_bytes())
    srgan(
        "-q",
        "upscale",
        folder,
        tmp_path / "out",
        "--suffix",
        "x2",
        "--ext",
        "jpg",
        "-m",
        "bicubic",
        "-s",
        "2",
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x2.jpg", "b_x2.jpg"]


def test_folder_with_one_bad_file_does_the_rest_and_exits_1(srgan, tmp_path, photo):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.png").write_bytes(photo.read_bytes())
    (folder / "bad.png").write_text("not an image")
    result = srgan("downscale", folder, tmp_path / "out", "--scale", "2", check=False)
    assert result.returncode == 1
    assert "bad.png" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]


def test_downscale_matches_reference_and_size_option(srgan, tmp_path, photo):
    srgan("downscale", photo, tmp_path / "small.png", "--scale", "4")
    source, small = read_image(photo), read_image(tmp_path / "small.png")
    expected = np.clip(np.round(ref_imresize(source.pixels / 255.0, 1 / 4) * 255), 0, 255)
    assert small.pixels.shape == expected.shape == (40, 45, 3)
    assert np.abs(small.pixels.astype(int) - expected).max() <= 1
    srgan("downscale", photo, tmp_path / "sized.png", "--size", "33x21")
    assert read_image(tmp_path / "sized.png").pixels.shape == (21, 33, 3)


def test_psnr_files_and_json_agree_with_reference(srgan, tmp_path, photo):
    source = read_image(photo)
    noisy = np.clip(
        source.pixels + np.random.default_rng(2).normal(0, 8, source.pixels.shape), 0, 255
    )
    write_image(tmp_path / "noisy.png", Image(noisy.astype(np.uint8), ImageMeta()))
    result = srgan("psnr", tmp_path / "noisy.png", photo, "--crop-border", "4", "--json")
    report = json.loads(result.stdout)
    expected_psnr = ref_psnr(noisy.astype(np.uint8), source.pixels, 4, True)
    expected_ssim = ref_ssim(noisy.astype(np.uint8), source.pixels, 4, True)
    assert report["images"][0]["name"] == "noisy"
    assert abs(report["images"][0]["psnr"] - expected_psnr) < 1e-3
    assert abs(report["mean"]["ssim"] - expected_ssim) < 1e-5
    rgb = json.loads(srgan("psnr", tmp_path / "noisy.png", photo, "--rgb", "--json").stdout)
    assert (
        abs(rgb["mean"]["psnr"] - ref_psnr(noisy.astype(np.uint8), source.pixels, 0, False)) < 1e-3
    )
    table = srgan("psnr", tmp_path / "noisy.png", photo).stdout
    assert "noisy" in table and "mean" in table


def test_psnr_folders_pair_by_stem(srgan, tmp_path, photo):
    for folder in ("sr", "hr"):
        (tmp_path / folder).mkdir()
    for name in ("one", "two"):
        (tmp_path / "hr" / f"{name}.png").write_bytes(photo.read_bytes())
        srgan("downscale", photo, tmp_path / f"{name}_lr.png", "--scale", "2")
        srgan(
            "upscale",
            tmp_path / f"{name}_lr.png",
            tmp_path / "sr" / f"{name}.png",
            "-m",
            "bicubic",
            "-s",
            "2",
        )
    report = json.loads(srgan("psnr", tmp_path / "sr", tmp_path / "hr", "--json").stdout)
    assert [i["name"] for i in report["images"]] == ["one", "two"]
    assert all(25 < i["psnr"] < 40 for i in report["images"])


@pytest.mark.skipif(not (DATASETS / "Set5").is_dir(), reason="../shared/datasets/Set5 absent")
def test_eval_bicubic_set5_reproduces_published_numbers(srgan):
    report = json.loads(
        srgan(
            "eval", "--model", "bicubic", "--dataset", DATASETS / "Set5", "--scale", "4", "--json"
        ).stdout
    )
    assert report["model"] == "bicubic" and report["scale"] == 4
    assert len(report["images"]) == 5
    assert 28.42 <= report["mean"]["psnr"] <= 28.44
    assert abs(report["mean"]["ssim"] - 0.81) < 0.005


def test_eval_several_models_gives_a_list(srgan, tmp_path, photo):
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "a.png").write_bytes(photo.read_bytes())
    reports = json.loads(
        srgan(
            "eval",
            "-m",
            "bicubic",
            "-m",
            "bicubic",
            "--dataset",
            tmp_path / "hr",
            "--scale",
            "2",
            "--json",
        ).stdout
    )
    assert isinstance(reports, list) and len(reports) == 2
    assert reports[0]["mean"] == reports[1]["mean"]


# --------------------------------------------------------------------------- bad input


def _bad_inputs(tmp: Path, photo: Path) -> dict[str, list[object]]:
    (tmp / "text.png").write_text("hello")
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "cut.png").write_bytes(photo.read_bytes()[:2000])
    PILImage.new("L", (10, 10)).save(tmp / "small.png")
    out = tmp / "result.png"
    return {
        "missing": ["upscale", tmp / "missing.png", out],
        "not an image": ["upscale", tmp / "text.png", out],
        "empty": ["downscale", tmp / "empty.png", out, "--scale", "2"],
        "truncated": ["upscale", tmp / "cut.png", out],
        "pixel limit": ["upscale", photo, out, "--max-pixels", "1000"],
        "folder for file": ["psnr", tmp, photo],
        "dataset is a file": ["eval", "-m", "bicubic", "--dataset", photo],
        "sizes differ": ["psnr", tmp / "small.png", photo],
        "unknown model": ["upscale", photo, out, "--model", "no-such-model"],
        "bad extension": ["upscale", photo, tmp / "result.xyz"],
        "bad size": ["downscale", photo, out, "--size", "axb"],
        "bad flag": ["upscale", photo, out, "--no-such-flag"],
    }


def test_every_bad_input_gives_one_line_exit_2_and_no_output(srgan, tmp_path, photo):
    for case, args in _bad_inputs(tmp_path, photo).items():
        before = sorted(p.name for p in tmp_path.iterdir())
        result = srgan(*args, check=False)
        assert result.returncode == 2, f"{case}: exit {result.returncode}\n{result.stderr}"
        after = sorted(p.name for p in tmp_path.iterdir())
        assert after == before, f"{case}: left files behind: {set(after) - set(before)}"
        if case != "bad flag":  # the argument parser prints its own usage block
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("srgan: error: "), f"{case}: {lines}"


@pytest.mark.skipif(not (DATASETS / "Set14").is_dir(), reason="../shared/datasets absent")
@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
def test_downscale_folder_matches_independent_matlab_reference(srgan, tmp_path, dataset):
    srgan("-q", "downscale", DATASETS / dataset, tmp_path, "--scale", "4")
    sources = sorted((DATASETS / dataset).glob("*.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in sources]
    for source in sources:
        hr = read_image(source).pixels.astype(np.float64) / 255
        expected = np.clip(np.round(ref_imresize(hr, 1 / 4) * 255), 0, 255)
        got = read_image(tmp_path / source.name).pixels
        assert got.shape == expected.shape, source.name
        assert np.abs(got.astype(int) - expected).max() <= 1, source.name


def test_folder_outputs_never_replace_inputs_or_each_other(srgan, tmp_path, photo):
    folder = tmp_path / "chain"
    folder.mkdir()
    for name in ("a.png", "a_x4.png"):
        (folder / name).write_bytes(photo.read_bytes())
    before = sorted(p.name for p in folder.iterdir())
    result = srgan("upscale", folder, folder, "--suffix", "x4", "-m", "bicubic", check=False)
    assert result.returncode == 2 and "overwrite an input" in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == before
    (folder / "a_x4.png").unlink()
    (folder / "a.jpg").write_bytes(b"")
    result = srgan(
        "upscale", folder, tmp_path / "out", "--ext", "png", "-m", "bicubic", check=False
    )
    assert result.returncode == 2 and "would be written there" in result.stderr
    assert not (tmp_path / "out").exists()


def test_unexpected_failure_of_one_file_names_it_and_the_rest_continue(srgan, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "wide.png", Image(np.zeros((4, 4200, 3), np.uint8), ImageMeta()))
    write_image(folder / "small.png", Image(np.zeros((8, 8, 3), np.uint8), ImageMeta()))
    # WebP cannot hold 16800 pixels across: the encoder fails for that file only.
    result = srgan(
        "upscale", folder, tmp_path / "out", "--ext", "webp", "-m", "bicubic", check=False
    )
    assert result.returncode == 1
    assert "wide.png" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["small.webp"]


@pytest.mark.parametrize(
    "args",
    [
        ["--scale", "nan"],
        ["--scale", "inf", "-m", "bicubic"],
        ["--outscale", "inf"],
        ["--outscale", "0"],
        ["--tile", "5"],
        ["--alpha-mode", "magic"],
        ["--half", "--bf16"],
    ],
)
def test_bad_numbers_and_choices_are_bad_input(srgan, tmp_path, photo, args):
    result = srgan("upscale", photo, tmp_path / "o.png", *args, check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_small_images_in_psnr_and_eval_are_bad_input(srgan, tmp_path):
    write_image(tmp_path / "a.png", Image(np.zeros((8, 8, 3), np.uint8), ImageMeta()))
    result = srgan("psnr", tmp_path / "a.png", tmp_path / "a.png", check=False)
    assert result.returncode == 2 and "too small" in result.stderr
    (tmp_path / "hr").mkdir()
    write_image(tmp_path / "hr" / "t.png", Image(np.zeros((3, 3, 3), np.uint8), ImageMeta()))
    result = srgan("eval", "-m", "bicubic", "--dataset", tmp_path / "hr", check=False)
    assert result.returncode == 2 and "too small" in result.stderr


def test_bad_input_creates_no_output_folders(srgan, tmp_path):
    (tmp_path / "text.png").write_text("hello")
    result = srgan(
        "upscale", tmp_path / "text.png", tmp_path / "new" / "sub" / "o.png", check=False
    )
    assert result.returncode == 2
    assert not (tmp_path / "new").exists()


def test_version_anywhere(srgan):
    assert srgan("upscale", "--version").stdout.startswith("srgan ")


def test_bicubic_outscale_is_one_exact_resize(srgan, tmp_path, photo):
    srgan("upscale", photo, tmp_path / "o.png", "-m", "bicubic", "--outscale", "2")
    source = read_image(photo).pixels.astype(np.float64) / 255
    expected = np.clip(np.round(ref_imresize(source, 2) * 255), 0, 255)
    got = read_image(tmp_path / "o.png").pixels
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_devices_lists_the_cpu(srgan):
    listed = json.loads(srgan("devices", "--json").stdout)
    assert listed[0]["name"] == "cpu" and listed[0]["details"]["cores"] >= 1
    assert "torch" in listed[0]["backends"]
    assert "cpu" in srgan("devices").stdout
