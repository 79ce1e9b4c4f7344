"""`srgan dataset clips` from video files: training clips cut from real footage.

Each video is read twice, frame by frame (never held whole):

1. Scene structure, of every video before anything is written (an unreadable file stops
   the command with nothing written): the transitions between consecutive frames
   (`imaging.scene_cuts`): cuts split the video into scenes, held frames (repeats) are
   dropped, so a scene is a list of distinct frames.
2. Clips: every scene is cut into consecutive stretches of `frames` distinct frames (a
   shorter rest is left out); each stretch gives `clips_per_stretch` clips, each a random
   `size` x `size` crop at the same place in every frame: real motion, real noise and
   compression, never a cut inside a clip.

Frames are first shrunk by `shrink` with MATLAB bicubic (less compression noise, as for
photos). Train and val never share a scene: with `split="scene"` the scenes of each video
are drawn at random (seeded) into val until they hold `val_fraction` of its frames,
never all of them (a one-scene video trains); with `split="file"` whole videos are held
out, as `srgan dataset prepare` holds out photos.

Output: DST/{train,val}/<video>_s<scene>_<stretch>_<k>/frame_0000.png ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from srgan.defaults import DEFAULT_MAX_PIXELS
from srgan.errors import BadInputError
from srgan.imaging.clips import VIDEO_EXTENSIONS, as_rgb, natural_key
from srgan.imaging.io import Image, ImageMeta, tensor_to_pixels, write_image
from srgan.imaging.resize import imresize
from srgan.imaging.scene_cuts import Segment, TransitionTracker, plan_segments
from srgan.training.data.patches import pixels_to_unit_tensor
from srgan.training.data.prepare import split_sources

Split = Literal["scene", "file"]


@dataclass(frozen=True)
class FootageSettings:
    frames: int = 7
    size: int = 192  # clip side (HR pixels, after the shrink)
    clips_per_stretch: int = 1
    shrink: float = 2.0
    val_fraction: float = 0.1
    split: Split = "scene"
    seed: int = 0
    max_pixels: int = DEFAULT_MAX_PIXELS  # a larger frame is refused before decoding on

    def __post_init__(self) -> None:
        if self.frames < 1 or self.size < 8 or self.clips_per_stretch < 1:
            raise BadInputError("--frames >= 1, --size >= 8 and --clips-per-photo >= 1")
        if self.shrink < 1:
            raise BadInputError("--shrink must be at least 1")
        if not 0 <= self.val_fraction < 1:
            raise BadInputError("--val-fraction must be in [0, 1)")
        if self.split not in ("scene", "file"):
            raise BadInputError("--split must be scene or file")


@dataclass(frozen=True)
class FootageReport:
    videos: int
    scenes: int
    val_scenes: int
    repeats: int  # held frames left out
    train_clips: int
    val_clips: int
    short_scenes: int  # scenes with fewer distinct frames than a clip needs
    small_videos: int  # videos whose frames are smaller than a clip


def list_videos(source: Path) -> list[Path]:
    """The video files in a folder (not its sub-folders), or the file itself."""
    if source.is_file():
        return [source] if source.suffix.lower() in VIDEO_EXTENSIONS else []
    if not source.is_dir():
        return []
    return sorted(
        (
            path
            for path in source.iterdir()
            if path.is_file()
            and path.suffix.lower() in VIDEO_EXTENSIONS
            and not path.name.startswith(".")
        ),
        key=natural_key,
    )


def decoded_frames(path: Path, shrink: float, max_pixels: int) -> Iterator[torch.Tensor]:
    """The frames of a video as [3, H, W] tensors in [0, 1], shrunk by `shrink`."""
    import av
    from av.error import FFmpegError

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if frame.width * frame.height > max_pixels:
                    raise BadInputError(
                        f"{path}: {frame.width}x{frame.height} frames are larger than "
                        f"{max_pixels} pixels"
                    )
                pixels = as_rgb(frame.to_ndarray(format="rgb24"))
                tensor = pixels_to_unit_tensor(np.ascontiguousarray(pixels))
                if shrink > 1:
                    tensor = imresize(tensor, scale=1 / shrink).clamp_(0, 1)
                yield tensor
    except (FFmpegError, IndexError) as exc:
        raise BadInputError(f"{path}: not a readable video ({exc})") from exc


def scenes_of(path: Path, settings: FootageSettings) -> tuple[list[Segment], tuple[int, int]]:
    """The scenes of a video (first pass) and its (height, width) after the shrink."""
    tracker, steps = TransitionTracker(), []
    size = (0, 0)
    for frame in decoded_frames(path, settings.shrink, settings.max_pixels):
        size = (int(frame.shape[1]), int(frame.shape[2]))
        step = tracker.push(tensor_to_pixels(frame))
        if step is not None:
            steps.append(step)
    if tracker.previous is None:
        raise BadInputError(f"{path}: no video frames")
    return plan_segments(steps), size


def held_out_scenes(scenes: list[Segment], val_fraction: float, seed: list[int]) -> set[int]:
    """Scenes (by index) drawn into val until they hold `val_fraction` of the frames."""
    if val_fraction <= 0 or len(scenes) < 2:
        return set()
    total = sum(len(scene.run) for scene in scenes)
    chosen: set[int] = set()
    held = 0
    for index in np.random.default_rng(seed).permutation(len(scenes)).tolist():
        if held >= val_fraction * total or len(chosen) == len(scenes) - 1:
            break
        chosen.add(index)
        held += len(scenes[index].run)
    return chosen


@dataclass(frozen=True)
class _Stretch:
    name: str
    split: str
    frames: tuple[int, ...]
    crops: tuple[tuple[int, int], ...]  # (top, left) of each clip


def _stretches(
    video: Path,
    index: int,
    scenes: list[Segment],
    size: tuple[int, int],
    val: set[int],
    settings: FootageSettings,
) -> list[_Stretch]:
    height, width = size
    stretches = []
    for number, scene in enumerate(scenes):
        run = scene.run
        for k in range(len(run) // settings.frames):
            frames = run[k * settings.frames : (k + 1) * settings.frames]
            rng = np.random.default_rng([settings.seed, index, number, k])
            crops = tuple(
                (
                    int(rng.integers(0, height - settings.size + 1)),
                    int(rng.integers(0, width - settings.size + 1)),
                )
                for _ in range(settings.clips_per_stretch)
            )
            split = "val" if number in val else "train"
            stretches.append(_Stretch(f"{video.stem}_s{number}_{k}", split, frames, crops))
    return stretches


def _write(
    target: Path, stretches: list[_Stretch], frames: Iterator[torch.Tensor], side: int
) -> None:
    """Second pass: write each stretch's crops as its frames go by."""
    wanted: dict[int, list[tuple[_Stretch, int]]] = {}
    for stretch in stretches:
        for position, frame_index in enumerate(stretch.frames):
            wanted.setdefault(frame_index, []).append((stretch, position))
    last = max(wanted, default=-1)
    for frame_index, frame in enumerate(frames):
        if frame_index > last:
            break
        for stretch, position in wanted.get(frame_index, []):
            for k, (top, left) in enumerate(stretch.crops):
                crop = frame[:, top : top + side, left : left + side]
                folder = target / stretch.split / f"{stretch.name}_{k}"
                image = Image(tensor_to_pixels(crop), ImageMeta())
                write_image(folder / f"frame_{position:04d}.png", image)


def make_footage_clips(
    videos: list[Path],
    target: Path,
    settings: FootageSettings = FootageSettings(),
    progress: Callable[[str], None] | None = None,
) -> FootageReport:
    if not videos:
        raise BadInputError("no video files given")
    held_files = split_sources(videos, settings.val_fraction, settings.seed)
    # every video's scenes first: a bad file stops the run before anything is written
    plans = [scenes_of(video, settings) for video in videos]
    totals: dict[str, int] = dict.fromkeys(
        ("scenes", "val_scenes", "repeats", "train", "val", "short"), 0
    )
    small = 0
    for index, (video, (scenes, size)) in enumerate(zip(videos, plans, strict=True)):
        if settings.split == "file":
            val = set(range(len(scenes))) if video in held_files else set()
        else:
            val = held_out_scenes(scenes, settings.val_fraction, [settings.seed, index])
        totals["scenes"] += len(scenes)
        totals["val_scenes"] += len(val)
        totals["repeats"] += sum(scene.stop - scene.start - len(scene.run) for scene in scenes)
        totals["short"] += sum(len(scene.run) < settings.frames for scene in scenes)
        if min(size) < settings.size:
            small += 1
        else:
            stretches = _stretches(video, index, scenes, size, val, settings)
            frames = decoded_frames(video, settings.shrink, settings.max_pixels)
            _write(target, stretches, frames, settings.size)
            for stretch in stretches:
                totals[stretch.split] += len(stretch.crops)
        if progress:
            progress(video.name)
    return FootageReport(
        len(videos),
        totals["scenes"],
        totals["val_scenes"],
        totals["repeats"],
        totals["train"],
        totals["val"],
        totals["short"],
        small,
    )


__all__ = [
    "FootageReport",
    "FootageSettings",
    "held_out_scenes",
    "list_videos",
    "make_footage_clips",
    "scenes_of",
]
