"""Video SR inference: loading a checkpoint, temporal windows, spatial tiles, `srgan
upscale` on one image (T = 1) and `srgan video` with a VSR model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from srgan.errors import BadInputError
from srgan.imaging import Image, ImageMeta, read_image, write_image
from srgan.inference.upscaler import UpscaleOptions
from srgan.inference.vsr import TemporalWindows, WindowedVSR, upscale_clip, upscale_frames
from srgan.zoo.registry import load_model
from tests.videos import make_video, moving_picture, summarise
from tests.vsr_models import run_network, save_checkpoint, tiny_vsr

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("vsr") / "checkpoint")


def _frames(count: int, height: int = 8, width: int = 10, channels: int = 3) -> np.ndarray:
    return RNG.integers(0, 256, (count, height, width, channels), dtype=np.uint8)


# --- loading ------------------------------------------------------------------------------


def test_checkpoint_folder_loads_as_a_video_model(checkpoint, tmp_path):
    loaded = load_model(str(checkpoint))
    assert loaded.descriptor.architecture == "BidirectionalRecurrentVSR"
    assert loaded.descriptor.temporal and loaded.scale == 2
    best = tmp_path / "run" / "checkpoints" / "best"
    best.mkdir(parents=True)
    weights = (checkpoint / "generator.safetensors").read_bytes()
    (best / "generator.safetensors").write_bytes(weights)
    assert load_model(str(tmp_path / "run")).descriptor.temporal
    pth = tmp_path / "vsr.pth"
    torch.save({"params": tiny_vsr().state_dict()}, pth)
    assert load_model(str(pth)).descriptor.temporal
    assert not load_model("bicubic").descriptor.temporal


# --- temporal windows ---------------------------------------------------------------------


def _tagging_upscaler(held: list[int], window: int):
    """Frames are their own index; each output says (frame, first frame of its window)."""

    def upscale(frames: np.ndarray) -> np.ndarray:
        assert len(frames) <= window
        held.append(len(frames))
        return np.stack([[int(f[0]), int(frames[0][0])] for f in frames])

    return upscale


def _run_tagged(count: int, windows: TemporalWindows) -> list[tuple[int, int]]:
    held: list[int] = []
    vsr = WindowedVSR(_tagging_upscaler(held, windows.window), windows)
    outputs = []
    for index in range(count):
        outputs.extend(vsr.push(np.array([index])))
        assert len(vsr.held) <= windows.window
    outputs.extend(vsr.finish())
    return [(int(frame), int(start)) for frame, start in outputs]


def test_twelve_frames_in_windows_of_five():
    outputs = _run_tagged(12, TemporalWindows(5))
    assert [frame for frame, _ in outputs] == list(range(12))
    starts = [start for _, start in outputs]
    assert starts == [0, 0, 0, 0, 3, 3, 3, 6, 6, 6, 7, 7]


@pytest.mark.parametrize("window", [1, 2, 3, 4, 5, 7, 9])
def test_every_frame_once_in_order_with_context_on_both_sides(window):
    windows = TemporalWindows(window)
    margin = windows.context
    for count in range(1, 23):
        outputs = _run_tagged(count, windows)
        assert [frame for frame, _ in outputs] == list(range(count))
        for frame, start in outputs:
            stop = min(start + window, count)
            assert start == 0 or frame - start >= margin, (count, frame, start)
            assert stop == count or stop - frame > margin, (count, frame, start)


def test_window_settings_are_checked():
    with pytest.raises(BadInputError, match="--window 0"):
        TemporalWindows(0)
    with pytest.raises(BadInputError, match="margin"):
        TemporalWindows(4, margin=2)
    assert TemporalWindows(5).stride == 3 and TemporalWindows(9).context == 2


def test_each_output_is_the_network_output_within_its_window(checkpoint):
    model = load_model(str(checkpoint))
    frames = _frames(12)  # random frames: every one a new scene, unless cuts are ignored
    windows = TemporalWindows(scene_cuts=False)
    outputs = list(upscale_frames(model, iter(frames), UpscaleOptions(tile=0), windows))
    assert len(outputs) == 12 and outputs[0].shape == (16, 20, 3)
    # window [start, stop) keeps frames [first, last)
    for start, stop, first, last in ((0, 5, 0, 4), (3, 8, 4, 7), (6, 11, 7, 10), (7, 12, 10, 12)):
        expected = run_network(model.module, frames[start:stop])
        for index in range(first, last):
            np.testing.assert_array_equal(outputs[index], expected[index - start])


def test_a_window_longer_than_the_video_is_the_whole_sequence(checkpoint):
    model = load_model(str(checkpoint))
    frames = _frames(6)
    windows = TemporalWindows(9, scene_cuts=False)
    outputs = upscale_frames(model, iter(frames), UpscaleOptions(tile=0), windows)
    np.testing.assert_array_equal(np.stack(list(outputs)), run_network(model.module, frames))


def test_frames_are_read_only_as_needed(checkpoint):
    model = load_model(str(checkpoint))
    pulled = 0

    def stream() -> Iterator[np.ndarray]:
        nonlocal pulled
        for frame in _frames(20, 6, 6):
            pulled += 1
            yield frame

    options = UpscaleOptions(tile=0)
    for done, _ in enumerate(upscale_frames(model, stream(), options, TemporalWindows(5)), 1):
        assert pulled - done < 5  # never a whole window more than what was given back
    assert done == 20


def test_spatial_tiles_match_the_whole_frame(checkpoint):
    model = load_model(str(checkpoint))
    frames = _frames(4, 20, 20)
    runner = model.module.__call__

    def forward(tile: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return runner(torch.from_numpy(tile)).numpy()

    whole = upscale_clip(model, frames, UpscaleOptions(tile=0), forward)
    tiled = upscale_clip(model, frames, UpscaleOptions(tile=16, tile_pad=24), forward)
    assert tiled.shape == whole.shape == (4, 40, 40, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1
    close = upscale_clip(model, frames, UpscaleOptions(tile=16, tile_pad=4), forward)
    assert np.abs(close.astype(int) - whole.astype(int)).mean() < 1.0


def test_gray_frames_go_through_a_colour_model(checkpoint):
    model = load_model(str(checkpoint))
    gray = _frames(3, 6, 6, channels=1)
    outputs = list(upscale_frames(model, iter(gray), UpscaleOptions(tile=0), TemporalWindows(3)))
    assert [o.shape for o in outputs] == [(12, 12, 1)] * 3


# --- the command line ---------------------------------------------------------------------


def test_upscale_runs_a_video_model_on_one_image(cli, checkpoint, tmp_path):
    pixels = _frames(1, 12, 14)[0]
    write_image(tmp_path / "in.png", Image(pixels, ImageMeta()))
    weights = checkpoint / "generator.safetensors"
    cli("upscale", tmp_path / "in.png", tmp_path / "out.png", "--model", weights)
    result = read_image(tmp_path / "out.png").pixels
    expected = run_network(tiny_vsr(), pixels[None])[0]  # a one-frame clip
    np.testing.assert_array_equal(result, expected)


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_video_with_a_vsr_checkpoint_keeps_frames_timing_and_audio(cli, checkpoint, tmp_path):
    clip = make_video(tmp_path / "clip.mp4")
    out = tmp_path / "out.mp4"
    result = cli("video", clip, out, "--model", checkpoint, "--window", "5", "--device", "cpu")
    assert "12 frames" in result.stderr
    source, upscaled = summarise(clip), summarise(out)
    assert (upscaled.width, upscaled.height) == (128, 96)
    assert upscaled.frames == 12 and upscaled.times == source.times
    assert [a.codec for a in upscaled.audio] == ["aac"]
    assert upscaled.audio[0].packets == source.audio[0].packets
    pictures = [moving_picture(i, 64, 48).astype(float) for i in range(12)]
    for index, frame in enumerate(_decoded(out)):  # each frame in its place
        shrunk = frame.reshape(48, 2, 64, 2, 3).mean(axis=(1, 3))
        errors = [np.abs(shrunk - picture).mean() for picture in pictures]
        assert int(np.argmin(errors)) == index


def test_video_window_and_outscale_with_variable_frame_rate(cli, checkpoint, tmp_path):
    pts = [0, 50, 100, 300, 350, 400, 700, 750]
    clip = make_video(tmp_path / "vfr.mp4", pts_ms=pts, audio=None)
    out = tmp_path / "out.mkv"
    cli("video", clip, out, "-m", checkpoint, "--window", "3", "--outscale", "1.5")
    result = summarise(out)
    assert (result.width, result.height) == (96, 72) and result.frames == 8
    start = result.times[0]
    assert [t - start for t in result.times] == pytest.approx(summarise(clip).times, abs=1e-3)


def test_video_window_must_be_positive(cli, checkpoint, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=2, audio=None)
    result = cli("video", clip, tmp_path / "o.mp4", "-m", checkpoint, "--window", "0", check=False)
    assert result.returncode != 0 and "--window" in result.stderr


def test_frames_released_together_are_handed_on_in_bounded_batches():
    from srgan.inference.video import _batches, _Frame

    frame = _Frame(np.zeros((1, 1, 3), np.uint8), 0, 1)
    items = [frame] * 12 + ["side"]  # a sound packet read after the 12th frame
    batches = list(_batches(items, 5))  # type: ignore[arg-type]
    assert [len(b) for b in batches] == [5, 5, 3] and batches[-1][-1] == "side"
    assert list(_batches([], 5)) == []
