"""Clips: sequences of RGB frames from folders of frame files or from video files (PyAV).

A clip is addressed by frame index. `discover_clips` finds the clips in a path: a video
file; a folder of video files and/or sub-folders of frames (one clip each); or a folder
of frames (one clip). Frames of a folder, and clips of a folder, are taken in natural
order (`frame_2` before `frame_10`). Video files are indexed once by demuxing (no
decoding); reading seeks to the key frame before the first wanted frame and decodes only
up to the last, so a window of 5 frames of a long video never decodes the whole video.
Frames larger than `max_pixels` are refused before they are decoded.

Training (windows of frames), evaluation (clip scores) and `srgan eval` all read clips
through this module.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from srgan.defaults import DEFAULT_MAX_PIXELS
from srgan.errors import BadInputError, ImageTooLargeError
from srgan.imaging.io import list_images, read_image
from srgan.user_files import check_regular

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts")


def natural_key(path: Path) -> list[object]:
    """Sort key that puts `frame_2` before `frame_10`: numbers compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def natural_sorted(paths: Sequence[Path]) -> list[Path]:
    return sorted(paths, key=natural_key)


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) pixels as three colour channels: gray repeated, alpha dropped."""
    if pixels.shape[2] >= 3:
        return pixels[..., :3]
    return np.repeat(pixels[..., :1], 3, axis=2)


class Clip(Protocol):
    name: str

    def __len__(self) -> int: ...

    def read(self, start: int, count: int) -> list[np.ndarray]:
        """Frames start .. start + count - 1 as (H, W, 3) arrays."""
        ...

    def stream(self, start: int, count: int) -> Iterator[np.ndarray]:
        """The same frames one at a time, never holding more than one decoded frame."""
        ...


class FrameFolderClip:
    def __init__(
        self,
        folder: Path,
        paths: Sequence[Path] | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.folder = folder
        self.name = folder.name
        self.paths = natural_sorted(paths if paths is not None else list_images(folder))
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, start: int, count: int) -> list[np.ndarray]:
        return list(self.stream(start, count))

    def stream(self, start: int, count: int) -> Iterator[np.ndarray]:
        for path in self.paths[start : start + count]:
            yield as_rgb(read_image(path, self.max_pixels).pixels)


class VideoFileClip:
    def __init__(self, path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.path = path
        self.name = path.stem
        self.max_pixels = max_pixels
        self._pts: list[int] | None = None

    @property
    def pts(self) -> list[int]:
        """Presentation times of the frames in display order, from the packets alone."""
        if self._pts is None:
            import av
            from av.error import FFmpegError

            check_regular(self.path, "a video file")  # FFmpeg would block on a FIFO
            try:
                with av.open(str(self.path)) as container:
                    stream = container.streams.video[0]
                    self._check_size(stream.codec_context.width, stream.codec_context.height)
                    stamps = [
                        packet.pts
                        for packet in container.demux(stream)
                        if packet.pts is not None and packet.size
                    ]
            except (FFmpegError, IndexError) as exc:
                raise BadInputError(f"{self.path}: not a readable video ({exc})") from exc
            self._pts = sorted(stamps)
        return self._pts

    def _check_size(self, width: int, height: int) -> None:
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise ImageTooLargeError(
                f"{self.path}: {width}x{height} frames exceed the limit of {self.max_pixels} "
                "pixels (raise --max-pixels)"
            )

    def __len__(self) -> int:
        return len(self.pts)

    def read(self, start: int, count: int) -> list[np.ndarray]:
        return list(self.stream(start, count))

    def stream(self, start: int, count: int) -> Iterator[np.ndarray]:
        import av

        wanted = self.pts[start : start + count]
        if not wanted:
            return
        first, last, position = wanted[0], wanted[-1], 0
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            container.seek(first, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None or frame.pts < first:
                    continue
                if position < len(wanted) and frame.pts == wanted[position]:
                    self._check_size(frame.width, frame.height)
                    yield frame.to_ndarray(format="rgb24")
                    position += 1
                if frame.pts >= last:
                    break
        if position < len(wanted):
            raise BadInputError(f"{self.path}: could not decode frames {start}..{start + count}")


def discover_clips(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> list[Clip]:
    """The clips in `path` (see the module doc), in natural order of their names."""
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise BadInputError(f"{path}: not a video file ({', '.join(VIDEO_EXTENSIONS)})")
        return [VideoFileClip(path, max_pixels)]
    if not path.is_dir():
        raise BadInputError(f"{path}: no such folder or video file")
    clips: list[Clip] = []
    for entry in sorted(path.iterdir(), key=natural_key):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and list_images(entry):
            clips.append(FrameFolderClip(entry, max_pixels=max_pixels))
        elif entry.is_file() and entry.suffix.lower() in VIDEO_EXTENSIONS:
            clips.append(VideoFileClip(entry, max_pixels))
    if not clips and list_images(path):
        clips.append(FrameFolderClip(path, max_pixels=max_pixels))
    if not clips:
        raise BadInputError(f"{path}: no clips (sub-folders of frames or video files) found")
    return clips


def holds_clips(path: Path) -> bool:
    """A video file, or a folder with no images of its own but clip sub-folders or video
    files (the Vid4 layout)."""
    if path.is_file():
        return path.suffix.lower() in VIDEO_EXTENSIONS
    if not path.is_dir() or list_images(path):
        return False
    return any(
        (entry.is_dir() and list_images(entry))
        or (entry.is_file() and entry.suffix.lower() in VIDEO_EXTENSIONS)
        for entry in path.iterdir()
        if not entry.name.startswith(".")
    )


class FrameCache:
    """Decoded frames keyed by (clip, index), least recently used dropped first once
    they hold more than `capacity_bytes` (one cache per data worker)."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self.size = 0
        self.items: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def frames(self, clip_id: int, clip: Clip, start: int, count: int) -> list[np.ndarray]:
        keys = [(clip_id, index) for index in range(start, start + count)]
        found = {key: self.items[key] for key in keys if key in self.items}
        missing = [key for key in keys if key not in found]
        if missing:
            first, last = missing[0][1], missing[-1][1]
            decoded = clip.read(first, last - first + 1)
            if len(decoded) != last - first + 1:
                raise BadInputError(f"{clip.name}: has fewer frames than expected")
            for offset, pixels in enumerate(decoded):
                found.setdefault((clip_id, first + offset), pixels)
        for key in keys:
            self._put(key, found[key])
        return [found[key] for key in keys]

    def _put(self, key: tuple[int, int], pixels: np.ndarray) -> None:
        if key in self.items:
            self.items.move_to_end(key)
            return
        if pixels.nbytes > self.capacity:
            return
        self.items[key] = pixels
        self.size += pixels.nbytes
        while self.size > self.capacity:
            _, dropped = self.items.popitem(last=False)
            self.size -= dropped.nbytes
