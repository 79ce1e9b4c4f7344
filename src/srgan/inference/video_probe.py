"""The input side of `srgan.inference.video`: open a video, find its stream, check a time
range and decode the first frame in it, before any work is done.

Times are exact fractions of a second; `--start` and `--end` count from the container's
start time, as players show it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from av.error import FFmpegError, InvalidDataError
from av.stream import Disposition
from av.video.stream import VideoStream

from srgan.errors import BadInputError
from srgan.inference.video_streams import Colour, display_matrix
from srgan.user_files import check_regular, shown

log = logging.getLogger(__name__)

_SEEK_MARGIN = Fraction(1)  # seek this far before --start: audio is stored a little early
_AV_TIME_BASE = Fraction(1, 1_000_000)
_TIME = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)$")


def parse_time(text: str) -> float:
    """Seconds from '90', '90.5', '1:30' or '00:01:30.5'."""
    match = _TIME.match(text.strip())
    if match is None:
        raise BadInputError(f"time {text!r}: use seconds (90.5) or HH:MM:SS(.ms) (00:01:30.5)")
    hours, minutes, seconds = match.groups()
    if ((hours or minutes) and float(seconds) >= 60) or (hours and int(minutes) >= 60):
        raise BadInputError(f"time {text!r}: minutes and seconds must be below 60")
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


def parse_rate(text: str) -> Fraction:
    """A frame rate from '30', '29.97' or '30000/1001'."""
    try:
        rate = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise BadInputError(f"--fps {text!r}: use a number such as 30 or 30000/1001") from None
    if not 0 < rate <= 1000:
        raise BadInputError(f"--fps {text}: must be above 0 and at most 1000")
    return rate


@dataclass(frozen=True)
class TimeRange:
    """Seconds from the start of the video; None: from the start / to the end."""

    start: float | None = None
    end: float | None = None

    def __post_init__(self) -> None:
        if self.start is not None and not (math.isfinite(self.start) and self.start >= 0):
            raise BadInputError(f"--start {self.start}: must be 0 or more")
        if self.end is not None and not (math.isfinite(self.end) and self.end > 0):
            raise BadInputError(f"--end {self.end}: must be above 0")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise BadInputError(f"--end {self.end:g} must come after --start {self.start:g}")


WHOLE_VIDEO = TimeRange()


@dataclass(frozen=True)
class VideoProbe:
    """What the input holds, checked: the video stream and the first frame in range."""

    path: Path
    stream_index: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    high_bit_depth: bool
    time_base: Fraction
    rate: Fraction
    origin: Fraction  # container start time: --start and --end count from here
    end_of_video: Fraction | None  # absolute seconds, when the file tells
    start: Fraction | None  # absolute time of the first frame kept, when cutting
    end: Fraction | None  # absolute time of the end of the range
    colour: Colour
    matrix: tuple[int, ...] | None

    @property
    def range_seconds(self) -> Fraction | None:
        """Length of the part kept, when the file tells its length or --end is given."""
        stops = [t for t in (self.end, self.end_of_video) if t is not None]
        if not stops:
            return None
        return min(stops) - (self.start if self.start is not None else self.origin)

    @property
    def pixels_format(self) -> str:
        return "rgb48le" if self.high_bit_depth else "rgb24"


def open_input(source: Path) -> InputContainer:
    """Open a video file for decoding. Anything but a regular file (a pipe, a device) is
    refused before FFmpeg opens it: FFmpeg would block on a FIFO, or read a device
    forever."""
    if source.is_dir():
        raise BadInputError(f"{shown(source)}: is a folder; give one video file")
    check_regular(source, "a video file")
    try:
        return av.open(str(source), metadata_errors="replace")
    except InvalidDataError:
        raise BadInputError(f"{shown(source)}: not a video file (FFmpeg cannot read it)") from None
    except (FFmpegError, OSError) as exc:
        raise BadInputError(f"{shown(source)}: cannot open it ({one_line(exc)})") from None


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _video_stream(container: InputContainer, source: Path) -> VideoStream:
    """The first real video stream (cover pictures of audio files do not count)."""
    attached = Disposition.attached_pic
    streams = [s for s in container.streams.video if not s.disposition & attached]
    if not streams:
        raise BadInputError(f"{source}: has no video stream; give a video file")
    stream = streams[0]
    if stream.codec_context is None:
        raise BadInputError(
            f"{source}: its video codec cannot be decoded by this FFmpeg build; "
            "convert it first (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)"
        )
    return stream


def probe_video(source: Path, time_range: TimeRange = WHOLE_VIDEO) -> VideoProbe:
    """Open the input, find its video stream, check the range and decode its first frame."""
    with open_input(source) as container:
        stream = _video_stream(container, source)
        time_base = stream.time_base or Fraction(1, 90000)
        origin = Fraction(container.start_time or 0) * _AV_TIME_BASE
        end_of_video = _end_of_video(container, stream, origin)
        start, end = _absolute_range(time_range, origin, end_of_video, source)
        seek_before(container, stream, start)
        first = _first_frame(container, stream, time_base, start, end, source)
        frame_start = frame_time(first, time_base)
        pix_fmt = first.format.name
        return VideoProbe(
            path=source,
            stream_index=stream.index,
            codec=stream.codec_context.name,
            width=first.width,
            height=first.height,
            pix_fmt=pix_fmt,
            high_bit_depth=max(c.bits for c in first.format.components) > 8,
            time_base=time_base,
            rate=_frame_rate(stream),
            origin=origin,
            end_of_video=end_of_video,
            start=frame_start if start is not None else None,
            end=end,
            colour=Colour.of(first).or_else(Colour.of(stream.codec_context)),
            matrix=display_matrix(first),
        )


def _end_of_video(
    container: InputContainer, stream: VideoStream, origin: Fraction
) -> Fraction | None:
    if stream.duration is not None and stream.time_base is not None:
        return Fraction((stream.start_time or 0) + stream.duration) * stream.time_base
    if container.duration is not None:
        return origin + Fraction(container.duration) * _AV_TIME_BASE
    return None


def _absolute_range(
    time_range: TimeRange, origin: Fraction, end_of_video: Fraction | None, source: Path
) -> tuple[Fraction | None, Fraction | None]:
    start = None if time_range.start is None else origin + Fraction(str(time_range.start))
    end = None if time_range.end is None else origin + Fraction(str(time_range.end))
    if start is not None and end_of_video is not None and start >= end_of_video:
        length = float(end_of_video - origin)
        raise BadInputError(f"--start {time_range.start:g}: {source} is only {length:.3f} s long")
    return start, end


def _frame_rate(stream: VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return Fraction(25)


def seek_before(container: InputContainer, stream: VideoStream, start: Fraction | None) -> None:
    if start is None or stream.time_base is None:
        return
    target = start - _SEEK_MARGIN
    if target <= 0:
        return
    container.seek(math.floor(target / stream.time_base), stream=stream, backward=True)


def frame_time(frame: av.VideoFrame, time_base: Fraction) -> Fraction:
    """Seconds; a frame without a timestamp counts as time 0."""
    return Fraction(frame.pts or 0) * time_base


def decode_packet(stream: VideoStream, packet: av.Packet, source: Path) -> list[av.VideoFrame]:
    try:
        return stream.decode(packet)
    except InvalidDataError as exc:
        log.info("%s: skipped a damaged video packet (%s)", source, one_line(exc))
        return []
    except FFmpegError as exc:
        raise BadInputError(f"{source}: the video cannot be decoded ({one_line(exc)})") from None


def _first_frame(
    container: InputContainer,
    stream: VideoStream,
    time_base: Fraction,
    start: Fraction | None,
    end: Fraction | None,
    source: Path,
) -> av.VideoFrame:
    for packet in container.demux(stream):
        for frame in decode_packet(stream, packet, source):
            if frame.pts is None and (start is not None or end is not None):
                raise BadInputError(f"{source}: its frames carry no timestamps; cannot cut it")
            if frame.pts is None:
                return frame
            moment = frame_time(frame, time_base)
            if start is not None and moment < start:
                continue
            if end is not None and moment >= end:
                raise BadInputError(f"{source}: no video frame between --start and --end")
            return frame
    if start is not None:
        raise BadInputError(f"{source}: no video frame at or after --start")
    raise BadInputError(f"{source}: no video frame could be decoded")


def decoded_frames(container: InputContainer, stream: VideoStream, source: Path) -> Iterator:
    for packet in container.demux(stream):
        yield from decode_packet(stream, packet, source)
