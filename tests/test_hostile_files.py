"""Hostile and unusual input files: pipes, devices, symlink loops, decompression bombs,
rotated TIFFs, unreadable files, odd names, outputs too big for their format. Every case
builds its own input (see tests/hostile_files.py)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from srgan.errors import BadInputError
from srgan.imaging.header import probe_image
from srgan.imaging.io import Image, ImageMeta, read_image, write_image
from srgan.inference.job_memory import parse_bytes, plan_upscale
from srgan.inference.tiling import band_rows
from srgan.user_files import check_regular, open_regular, shown
from tests.hostile_files import (
    gif_canvas,
    jpeg_header_says,
    run_srgan,
    tiff_strips_on_one_block,
    zero_png,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")


def small_png(path, size=(12, 10), channels=3, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*size, channels), dtype=np.uint8)
    write_image(path, Image(pixels, ImageMeta()))
    return path


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("srgan: error: "), stderr
    return lines[0]


# ------------------------------------------------------------------ pipes and devices


@pytest.mark.parametrize("kind", ["fifo", "zero-symlink", "socket"])
def test_non_regular_files_are_refused_without_opening_them(tmp_path, kind):
    path = tmp_path / "x.png"
    if kind == "fifo":
        os.mkfifo(path)
        expected = "named pipe"
    elif kind == "zero-symlink":
        path.symlink_to("/dev/zero")
        expected = "character device"
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
        expected = "socket"
    for call in (check_regular, open_regular, read_image, probe_image):
        with pytest.raises(BadInputError, match=expected):
            call(path)


def test_fifo_as_an_image_or_a_video_is_one_line_at_once(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    video = tmp_path / "pipe.mp4"
    os.mkfifo(video)
    other = small_png(tmp_path / "other.png")
    for args in (
        ["upscale", fifo, tmp_path / "o.png", "-m", "bicubic"],
        ["downscale", fifo, tmp_path / "d.png", "--scale", "2"],
        ["psnr", fifo, other],
        ["video", video, tmp_path / "o.mp4", "-m", "bicubic"],
    ):
        result = run_srgan(args, timeout=60)
        assert not result.timed_out, f"srgan {args[0]} blocked on a FIFO"
        assert result.returncode == 2, result.stderr
        assert "named pipe (FIFO)" in one_error_line(result.stderr)
    assert not list(tmp_path.glob("o.*")) and not (tmp_path / "d.png").exists()


def test_folder_with_pipe_device_and_symlink_loop_processes_the_rest(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    small_png(folder / "a.png")
    small_png(folder / "c.png", seed=1)
    os.mkfifo(folder / "pipe.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "dangling.png").symlink_to("nowhere.png")
    report = tmp_path / "report.json"
    result = run_srgan(
        ["batch-process", folder, tmp_path / "out", "-m", "bicubic", "--report", report],
        timeout=120,
    )
    assert not result.timed_out, "a FIFO in the folder stalled the batch"
    assert result.returncode == 1, result.stderr
    data = json.loads(report.read_text())
    assert data["done"] == ["a.png", "c.png"]
    failed = {entry["file"]: entry["error"] for entry in data["failed"]}
    assert set(failed) == {"pipe.png", "zero.png", "loop.png", "dangling.png"}
    assert "named pipe" in failed["pipe.png"]
    assert "character device" in failed["zero.png"]
    assert "symlink loop" in failed["loop.png"]
    assert "broken symlink" in failed["dangling.png"]
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_directory_symlink_cycles_do_not_recurse_forever(cli, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    small_png(folder / "top.png")
    small_png(folder / "sub" / "inner.png", seed=1)
    (folder / "sub" / "up").symlink_to("..")  # sub/up/sub/up/... without end
    (folder / "self").symlink_to(".")
    report = tmp_path / "report.json"
    cli("upscale", folder, tmp_path / "out", "-r", "-m", "bicubic", "--report", report)
    assert json.loads(report.read_text())["done"] == ["sub/inner.png", "top.png"]


def test_folders_of_psnr_eval_and_dataset_skip_pipes(cli, tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        small_png(tmp_path / name / "x.png", size=(48, 48))
        os.mkfifo(tmp_path / name / "pipe.png")
    result = run_srgan(["psnr", tmp_path / "a", tmp_path / "b", "--json"], timeout=90)
    assert result.returncode == 0 and not result.timed_out, result.stderr
    prepared = run_srgan(
        ["dataset", "prepare", tmp_path / "a", tmp_path / "data", "--size", "24", "--step", "24"],
        timeout=90,
    )
    assert prepared.returncode == 0 and not prepared.timed_out, prepared.stderr


# ------------------------------------------------------------------------- bombs


@pytest.fixture(scope="module")
def baseline_rss(tmp_path_factory):
    """Peak RSS of `srgan upscale` refusing a small image for its size: what every
    refused bomb should stay close to."""
    folder = tmp_path_factory.mktemp("baseline")
    source = small_png(folder / "small.png", size=(64, 64))
    result = run_srgan(
        ["upscale", source, folder / "o.png", "-m", "bicubic"], env={"SRGAN_MAX_MEMORY": "64k"}
    )
    assert result.returncode == 2, result.stderr
    return result.peak_rss_mb


BOMBS = {
    "gif-35-bytes-16384x16384": (lambda d: gif_canvas(d / "canvas.gif"), ".png", "1G"),
    "jpeg-header-16000x16000": (lambda d: jpeg_header_says(d / "big.jpg"), ".png", "1G"),
    "png-zero-16384x16384": (lambda d: zero_png(d / "zero.png", 16384, 16384), ".png", "512M"),
    "png-zero-8192x8192-to-jpeg": (
        lambda d: zero_png(d / "zero8k.png", 8192, 8192, colour_type=2),
        ".jpg",
        "4G",
    ),
    "tiff16-strips-on-one-block": (lambda d: tiff_strips_on_one_block(d / "s.tif"), ".tif", "2G"),
}


@pytest.mark.parametrize("case", list(BOMBS))
def test_decompression_bombs_are_refused_before_memory_grows(tmp_path, baseline_rss, case):
    build, ext, limit = BOMBS[case]
    source = build(tmp_path)
    assert source.stat().st_size < 300_000
    target = tmp_path / f"out{ext}"
    result = run_srgan(
        ["upscale", source, target, "-m", "bicubic"], env={"SRGAN_MAX_MEMORY": limit}, timeout=90
    )
    assert not result.timed_out
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert "needs about" in line and "may be used" in line and "--max-memory" in line
    assert result.peak_rss_mb < baseline_rss + 100, (result.peak_rss_mb, baseline_rss)
    assert not target.exists()


def test_memory_plan_counts_the_output_only_when_it_is_not_streamed(tmp_path):
    header = probe_image(zero_png(tmp_path / "z.png", 2000, 1000, colour_type=2))
    assert (header.width, header.height, header.channels, header.bit_depth) == (2000, 1000, 3, 8)
    streamed = plan_upscale(header, "z.png", "PNG", 4, None, 64, 16, 1000.0)
    whole = plan_upscale(header, "z.png", "JPEG", 4, None, 64, 16, 1000.0)
    output = 8000 * 4000 * 3
    assert "output" not in streamed.parts and whole.parts["output"] == output
    assert streamed.peak < output < whole.peak
    # The band holds about (tile + pad) * scale rows of the output width, float + rounded.
    rows = band_rows(1000, 2000, 64, 16, 4)
    assert (64 + 16) * 4 <= rows <= (64 + 16) * 4 + 1
    assert streamed.parts["band"] == rows * 8000 * 3 * 5
    assert streamed.parts["model"] == int(1000.0 * (64 + 32) ** 2)
    assert parse_bytes("1.5G") == int(1.5 * 2**30) and parse_bytes("512MiB") == 512 * 2**20


def test_output_too_wide_for_jpeg_or_webp_is_refused_before_decoding(cli, tmp_path):
    # A valid header with garbage pixel data: the size is refused before anything decodes.
    folder = tmp_path / "in"
    folder.mkdir()
    wide = zero_png(folder / "wide.png", 4200, 2)
    data = bytearray(wide.read_bytes())
    data[41:60] = b"\xff" * 19  # inside IDAT: not a zlib stream any more
    wide.write_bytes(bytes(data))
    for ext, limit in (("webp", "16383"), ("jpg", "65500")):
        factor = ["--outscale", "16"] if ext == "jpg" else []
        result = cli(
            "upscale", folder, tmp_path / ext, "--ext", ext, "-m", "bicubic", *factor, check=False
        )
        assert result.returncode == 1
        assert f"({limit} px per side)" in result.stderr and "--ext png" in result.stderr
        assert "damaged" not in result.stderr


# ------------------------------------------------------------- valid inputs, messages


TURNS = {  # EXIF orientation -> how a viewer shows the stored pixels
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "tif"])
@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_reads_upright(tmp_path, fmt, mode, orientation):
    rng = np.random.default_rng(orientation)
    stored = rng.integers(0, 256, (6, 10, 3) if mode == "RGB" else (6, 10), dtype=np.uint8)
    pil = PILImage.fromarray(stored)
    exif = pil.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o.{fmt}"
    pil.save(path, exif=exif.tobytes() if fmt != "tif" else exif, lossless=fmt == "webp")
    if fmt == "jpg":  # lossy: the stored pixels are what the decoder gives (never rotated)
        with PILImage.open(path) as jpeg:
            stored = np.asarray(jpeg)
    elif fmt == "webp" and mode == "L":
        stored = np.repeat(stored[..., None], 3, axis=2)  # WebP holds colour only
    expected = TURNS[orientation](stored)
    pixels = read_image(path).pixels
    np.testing.assert_array_equal(pixels.reshape(expected.shape), expected)
    header = probe_image(path)
    assert (header.height, header.width) == pixels.shape[:2]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_of_a_16bit_tiff(tmp_path, orientation):
    pixels = np.arange(6 * 10 * 3, dtype=np.uint16).reshape(6, 10, 3) * 300
    path = tmp_path / "o.tif"
    tifffile.imwrite(path, pixels, photometric="rgb", extratags=[(274, 3, 1, orientation, True)])
    np.testing.assert_array_equal(read_image(path).pixels, TURNS[orientation](pixels))


def test_unreadable_file_is_one_line_exit_2(tmp_path):
    source = small_png(tmp_path / "secret.png")
    source.chmod(0)
    command = []
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that allow it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv")
        command = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    args = ["upscale", str(source), str(tmp_path / "o.png"), "-m", "bicubic"]
    result = subprocess.run(
        [*command, sys.executable, "-m", "srgan", *args], capture_output=True, text=True
    )
    source.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == f"srgan: error: {source}: permission denied"


def test_control_characters_in_names_are_escaped(cli, tmp_path):
    name = "evil\x1b[2J\nname\u202e.png"
    bad = tmp_path / name
    bad.write_bytes(b"not an image at all")
    result = cli("upscale", bad, tmp_path / "o.png", "-m", "bicubic", check=False)
    line = one_error_line(result.stderr)
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    assert "evil\\x1b[2J\\nname\\u202e.png" in line
    undecodable = os.fsdecode(b"caf\xe9.png")  # not UTF-8: a surrogate escape in Python
    assert shown(undecodable) == "caf\\xe9.png"


def test_name_at_the_length_limit_and_short_temporary_names(cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    name = "n" * 251 + ".png"  # 255 bytes: the longest name most file systems allow
    small_png(folder / name)
    cli("upscale", folder, tmp_path / "out", "-m", "bicubic")
    assert read_image(tmp_path / "out" / name).pixels.shape == (48, 40, 3)


def test_library_log_lines_do_not_reach_the_terminal(tmp_path):
    # tifffile logs a warning for a tag whose value lies outside the file.
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), description="x" * 40)
    data = bytearray(path.read_bytes())
    at = data.index(b"x" * 40)
    offset = at.to_bytes(4, "little")
    entry = data.index(offset)
    data[entry : entry + 4] = (len(data) + 1000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    result = run_srgan(["upscale", path, tmp_path / "o.png", "-m", "bicubic"], timeout=60)
    assert "tifffile" not in result.stderr and "TiffTag" not in result.stderr, result.stderr
    assert result.returncode in (0, 2)
    if result.returncode == 2:
        one_error_line(result.stderr)


def test_tiff_without_an_image_directory_says_so(cli, tmp_path):
    # The first-IFD offset points past the end: tifffile finds no page and used to surface
    # as `could not decode image (0)`, a bare IndexError(0).
    path = tmp_path / "empty.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))
    data = bytearray(path.read_bytes())
    data[4:8] = (len(data) + 100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    result = cli("upscale", path, tmp_path / "o.png", "-m", "bicubic", check=False)
    assert result.returncode == 2
    assert one_error_line(result.stderr).endswith(
        "TIFF holds no image (its first image directory is missing or points outside the file)"
    )
