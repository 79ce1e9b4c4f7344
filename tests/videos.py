"""Small real video files for the tests, made with PyAV, and a reader that summarises one."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 16000


def moving_picture(index: int, width: int, height: int) -> np.ndarray:
    """A gradient that moves a little each frame, so frames differ and compress."""
    rows, cols = np.mgrid[0:height, 0:width]
    red = (cols * 4 + index * 10) % 256
    green = (rows * 5) % 256
    blue = np.full_like(cols, (index * 20) % 256)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def make_video(
    path: Path,
    *,
    frames: int | None = None,
    size: tuple[int, int] = (64, 48),
    rate: int = 12,
    audio: str | None = "aac",
    pts_ms: list[int] | None = None,
    rotate: int | None = None,
    colour: tuple[int, int, int, int] | None = None,
    subtitles: bool = False,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> Path:
    """A clip of `frames` frames (default 12) at `rate` fps, or at `pts_ms` milliseconds
    (variable rate),
    with a sine tone as long as the video, optional subtitles every 4th frame, a display
    rotation and colour tags (range, space, primaries, transfer)."""
    width, height = size
    frames = frames or (len(pts_ms) if pts_ms is not None else 12)
    with av.open(str(path), "w") as output:
        video = output.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if codec == "libx265":
            video.options = {"x265-params": "log-level=error"}
        if pts_ms is not None:
            video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        if rotate is not None:
            video.set_display_rotation(rotate)
        if colour is not None:
            context = video.codec_context
            context.color_range, context.colorspace = colour[0], colour[1]
            context.color_primaries, context.color_trc = colour[2], colour[3]
        tone = _add_audio(output, audio)
        subtitle = (
            output.add_mux_stream("subrip", time_base=Fraction(1, 1000)) if subtitles else None
        )
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_picture(index, width, height), "rgb24")
            frame = frame.reformat(
                format=pix_fmt,
                dst_colorspace=colour[1] if colour else None,
                dst_color_range=colour[0] if colour else None,
            )
            frame.pts = pts_ms[index] if pts_ms is not None else index
            output.mux(video.encode(frame))
            if subtitle is not None and index % 4 == 0:
                _mux_subtitle(output, subtitle, f"line {index}", round(index * 1000 / rate))
        output.mux(video.encode())
        if tone is not None:
            seconds = (pts_ms[-1] + 100) / 1000 if pts_ms is not None else frames / rate
            _write_tone(output, tone, seconds)
    return path


def _add_audio(output: av.container.OutputContainer, codec: str | None):
    if codec is None:
        return None
    stream = output.add_stream(codec, rate=48000 if codec == "libopus" else AUDIO_RATE)
    stream.layout = "mono"
    return stream


def _write_tone(output, stream, seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    count = round(rate * seconds)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(count) / rate)
    as_s16 = stream.codec_context.name.startswith("pcm_s16")
    samples = (tone * 32767).astype(np.int16) if as_s16 else tone.astype(np.float32)
    for start in range(0, count, 960):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[None, start : start + 960]),
            format="s16" if as_s16 else "fltp",
            layout="mono",
        )
        frame.sample_rate, frame.pts = rate, start
        output.mux(stream.encode(frame))
    output.mux(stream.encode())


def _mux_subtitle(output, stream, text: str, at_ms: int) -> None:
    packet = av.Packet(text.encode())
    packet.stream = stream
    packet.time_base = Fraction(1, 1000)
    packet.pts = packet.dts = at_ms
    packet.duration = 200
    output.mux(packet)


def make_size_change(path: Path, first: int, second: int) -> Path:
    """An MPEG-TS H.264 stream whose picture grows from 64x48 to 80x48 after `first` frames."""
    with av.open(str(path), "w") as output:
        stream = output.add_mux_stream("h264", width=64, height=48, time_base=Fraction(1, 90000))
        offset = 0
        for width, count in ((64, first), (80, second)):
            encoder = av.CodecContext.create("libx264", "w")
            encoder.width, encoder.height, encoder.pix_fmt = width, 48, "yuv420p"
            encoder.time_base, encoder.framerate = Fraction(1, 12), 12
            frames = [
                av.VideoFrame.from_ndarray(moving_picture(i, width, 48), "rgb24").reformat(
                    format="yuv420p"
                )
                for i in range(count)
            ]
            for index, frame in enumerate(frames):
                frame.pts = index
            packets = [p for frame in [*frames, None] for p in encoder.encode(frame)]
            for packet in packets:
                packet.stream, packet.time_base = stream, Fraction(1, 12)
                packet.pts += offset
                packet.dts += offset
                output.mux(packet)
            offset += count
    return path


@dataclass
class StreamSummary:
    codec: str
    packets: int
    first: float  # seconds
    end: float  # seconds, end of the last packet
    texts: list[bytes] = field(default_factory=list)


@dataclass
class VideoSummary:
    format: str
    width: int
    height: int
    codec: str
    pix_fmt: str
    times: list[float]  # presentation time of each decoded frame, seconds
    rotation: int
    colour: tuple[int, int, int, int]
    audio: list[StreamSummary]
    subtitles: list[StreamSummary]

    @property
    def frames(self) -> int:
        return len(self.times)


def summarise(path: Path) -> VideoSummary:
    """Decode every frame of the first video stream; list the packets of the others."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        frames = list(container.decode(stream))
        context = stream.codec_context
        video = VideoSummary(
            format=container.format.name,
            width=frames[0].width,
            height=frames[0].height,
            codec=context.name,
            pix_fmt=frames[0].format.name,
            times=[float(f.pts * time_base) for f in frames],
            rotation=frames[0].rotation,
            colour=(
                context.color_range,
                context.colorspace,
                context.color_primaries,
                context.color_trc,
            ),
            audio=[],
            subtitles=[],
        )
        for kind, found in (("audio", video.audio), ("subtitle", video.subtitles)):
            for other in (s for s in container.streams if s.type == kind):
                container.seek(0)
                packets = [p for p in container.demux(other) if p.size]
                found.append(
                    StreamSummary(
                        other.codec_context.name,
                        len(packets),
                        float(packets[0].pts * other.time_base),
                        float((packets[-1].pts + packets[-1].duration) * other.time_base),
                        [bytes(p) for p in packets] if kind == "subtitle" else [],
                    )
                )
    return video


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def pictures(path: Path) -> list[np.ndarray]:
    """Every frame of the first video stream as RGB."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
