"""Training clips from real footage (`srgan dataset clips` on videos) and cut-aware
training windows. The videos are made here: two scenes (pans over two photos) with held
frames, encoded with H.264 as real footage is."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from srgan.errors import BadInputError
from srgan.imaging import read_image
from srgan.imaging.clips import VideoFileClip, discover_clips
from srgan.imaging.scene_cuts import transitions
from srgan.training.data.footage import FootageSettings, make_footage_clips, scenes_of
from srgan.training.data.windows import ClipWindowDataset, WindowSettings, clip_windows

SIZE = (96, 72)  # width, height
SCENE = 12  # frames per scene
HELD = (4, 9)  # in each scene, these frames repeat the one before (drawn on twos)


def _scene(photo: np.ndarray, offset: int) -> list[np.ndarray]:
    width, height = SIZE
    frames, position = [], 0
    for index in range(SCENE):
        if index not in HELD:
            position += 2  # a pan of 2 px per drawn frame
        frames.append(photo[offset : offset + height, position : position + width])
    return frames


def _encode(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as output:
        stream = output.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv444p"
        stream.options = {"crf": "4", "preset": "ultrafast"}
        for pixels in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """One video of two scenes (astronaut, then coffee) and one of a single scene."""
    from skimage import data

    folder = tmp_path_factory.mktemp("footage")
    two = _scene(data.astronaut(), 120) + _scene(data.coffee(), 150)
    _encode(folder / "two_scenes.mp4", two)
    _encode(folder / "one_scene.mp4", _scene(data.chelsea(), 60))
    return folder


def test_scenes_and_held_frames_of_an_encoded_video(footage):
    settings = FootageSettings(frames=3, size=48, shrink=1)
    scenes, size = scenes_of(footage / "two_scenes.mp4", settings)
    assert size == (SIZE[1], SIZE[0])
    assert [(scene.start, scene.stop) for scene in scenes] == [(0, SCENE), (SCENE, 2 * SCENE)]
    for scene in scenes:
        held = [scene.start + i for i in HELD]
        assert [f for f in range(scene.start, scene.stop) if f not in scene.run] == held


def _clip_frames(folder: Path) -> list[np.ndarray]:
    return [read_image(path).pixels for path in sorted(folder.iterdir())]


def test_clips_are_cut_inside_one_scene_and_split_by_scene(footage, tmp_path):
    settings = FootageSettings(frames=3, size=48, clips_per_stretch=2, shrink=1, val_fraction=0.4)
    report = make_footage_clips(sorted(footage.glob("*.mp4")), tmp_path, settings)
    assert (report.videos, report.scenes, report.val_scenes) == (2, 3, 1)
    assert report.repeats == 3 * len(HELD)
    distinct = SCENE - len(HELD)  # 10 distinct frames: 3 stretches of 3 per scene
    assert report.train_clips + report.val_clips == 3 * (distinct // 3) * 2
    train = sorted(p.name for p in (tmp_path / "train").iterdir())
    val = sorted(p.name for p in (tmp_path / "val").iterdir())
    assert len(val) == report.val_clips == 6 and all(n.startswith("two_scenes_s") for n in val)
    held_scene = val[0].split("_")[2]
    assert not [n for n in train if n.startswith(f"two_scenes_{held_scene}_")]
    assert any(n.startswith("one_scene_s0_") for n in train)  # one scene: always trained on
    for split in ("train", "val"):
        for folder in (tmp_path / split).iterdir():
            frames = _clip_frames(folder)
            assert len(frames) == 3 and frames[0].shape == (48, 48, 3)
            steps = transitions(frames)
            assert not any(s.cut or s.repeat for s in steps), folder.name


def test_split_by_file_holds_out_whole_videos(footage, tmp_path):
    settings = FootageSettings(frames=3, size=48, shrink=1, val_fraction=0.5, split="file")
    report = make_footage_clips(sorted(footage.glob("*.mp4")), tmp_path, settings)
    train = {p.name.split("_s")[0] for p in (tmp_path / "train").iterdir()}
    val = {p.name.split("_s")[0] for p in (tmp_path / "val").iterdir()}
    assert report.val_clips and len(train) == len(val) == 1 and not train & val


def test_training_windows_from_a_video_never_span_a_cut_or_hold_a_frame(footage):
    clip = VideoFileClip(footage / "two_scenes.mp4")
    windows = clip_windows(clip, 4)
    assert windows and all(w[-1] < SCENE or w[0] >= SCENE for w in windows)
    assert not any(held in w for w in windows for held in (*HELD, SCENE + HELD[0]))
    assert len(clip_windows(clip, 4, scene_aware=False)) == 2 * SCENE - 3
    settings = WindowSettings(scale=3, frames=4, crop=48, augment=False, temporal_reverse=False)
    dataset = ClipWindowDataset([clip], settings, samples_per_clip=12)
    for index in range(len(dataset)):
        _, hr = dataset[index]
        pixels = [(frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for frame in hr]
        assert not any(step.cut or step.repeat for step in transitions(pixels))


def test_the_dataset_command_on_videos_and_on_bad_videos(cli, footage, tmp_path):
    out = tmp_path / "out"
    result = cli(
        "dataset",
        "clips",
        footage,
        out,
        "--frames",
        "3",
        "--size",
        "48",
        "--shrink",
        "1",
        "--val-fraction",
        "0.4",
    )
    assert "from 2 videos" in result.stderr and "3 scenes (1 held out)" in result.stderr
    assert len(discover_clips(tmp_path / "out" / "train")) > 0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.mp4").write_bytes(footage.joinpath("one_scene.mp4").read_bytes())
    (bad / "b.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 20)
    result = cli("dataset", "clips", bad, tmp_path / "none", "--size", "48", check=False)
    assert result.returncode == 2 and "b.mp4: not a readable video" in result.stderr
    assert not (tmp_path / "none").exists()  # nothing written: a.mp4 was not cut either
    result = cli("dataset", "clips", footage, tmp_path / "x", "--split", "time", check=False)
    assert result.returncode == 2 and "--split" in result.stderr


def test_frames_larger_than_the_limit_are_refused(footage, tmp_path):
    settings = FootageSettings(frames=3, size=48, shrink=1, max_pixels=1000)
    with pytest.raises(BadInputError, match="larger than 1000 pixels"):
        make_footage_clips([footage / "one_scene.mp4"], tmp_path, settings)
    assert not any(tmp_path.iterdir())
