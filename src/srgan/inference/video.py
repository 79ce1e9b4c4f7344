"""Upscale a video as a stream: decode, run the model frame by frame, encode, keeping the
audio, subtitles, timestamps (variable frame rates too), rotation and colour tags.

Three threads overlap. A reader demuxes, decodes and turns frames into RGB arrays; the
caller's thread runs the model; a writer turns the results back into frames, encodes and
muxes them. They hand batches to each other through bounded queues, so memory stays
bounded whatever the length of the video. Packets of the streams that are not upscaled
(audio, subtitles) travel in the same batches, in file order, and are muxed as they come:
the muxer interleaves them with the video without holding more than the encoder's delay.

The output is written to a temporary file beside the target and renamed at the end, so an
error or Ctrl-C never leaves a broken file. With a time range, the cut is frame-exact for
the video and packet-exact for copied audio and subtitles: the packets that start inside
the range are kept (so the sound is within one audio packet, about 20 ms, of the cut),
and all timestamps are shifted so that the first kept video frame is at 0.

Frames that repeat the one before, wholly or in part, reuse its upscaled output
(`video_reuse`, on unless `VideoOptions.reuse_threshold` is None).

`video_probe` checks the input, `video_streams` chooses the encoder and carries the other
streams; this module runs the pipeline and writes previews.

Nothing here prints; progress goes to a callback and notes to the `srgan` logger.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from queue import Empty, Full, Queue
from typing import NamedTuple

import av
import numpy as np
from av.container import InputContainer, OutputContainer
from av.error import FFmpegError
from av.video.reformatter import Colorspace, VideoReformatter
from av.video.stream import VideoStream

from srgan.defaults import DEFAULT_REUSE_THRESHOLD
from srgan.errors import BadInputError, SrganError
from srgan.imaging.io import Image, ImageMeta, write_image
from srgan.inference.files import real_path
from srgan.inference.tiling import Forward
from srgan.inference.upscaler import AnyModel, UpscaleOptions, make_runner, upscale_image
from srgan.inference.video_probe import (
    WHOLE_VIDEO,
    TimeRange,
    VideoProbe,
    decode_packet,
    decoded_frames,
    frame_time,
    one_line,
    open_input,
    probe_video,
    seek_before,
)
from srgan.inference.video_reuse import FrameReuse, ReuseCounts, check_reuse_threshold
from srgan.inference.video_streams import (
    FAMILIES,
    EncoderSettings,
    SideStream,
    choose_encoder,
    container_format,
    copy_chapters,
    copy_container_tags,
    copy_stream_tags,
    encoder_settings,
    plan_side_streams,
    scaled_display_matrix,
)
from srgan.inference.vsr import (
    DEFAULT_WINDOW,
    TemporalWindows,
    WindowedVSR,
    resize_to_outscale,
    windowed_runner,
)
from srgan.user_files import check_regular, shown

log = logging.getLogger(__name__)

VideoProgress = Callable[[int, "int | None"], None]
"""progress(frames done, frames expected or None when unknown)."""

_BATCH_BYTES = 48 << 20  # upscaled pixels per batch handed between threads
_MAX_BATCH_FRAMES = 8
_QUEUE_BATCHES = 2


@dataclass(frozen=True)
class VideoOptions:
    """How to encode the upscaled video; None picks the default (see `docs/VIDEO.md`)."""

    codec: str | None = None  # h264, h265, vp9, av1, prores; default: the input's family
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    time_range: TimeRange = WHOLE_VIDEO
    fps: Fraction | None = None  # constant output rate: frames repeated or dropped
    audio: bool = True
    window: int = DEFAULT_WINDOW  # frames per temporal window (video SR models only)
    # reuse unchanged frames and tiles (image models): 8-bit levels, None: never
    reuse_threshold: float | None = DEFAULT_REUSE_THRESHOLD

    def __post_init__(self) -> None:
        if self.codec is not None and self.codec not in FAMILIES:
            raise BadInputError(f"--codec {self.codec!r}: use {', '.join(FAMILIES)}")
        if self.crf is not None and self.crf < 0:
            raise BadInputError(f"--crf {self.crf}: must be 0 or more")
        TemporalWindows(self.window)  # checks it
        if self.reuse_threshold is not None:
            check_reuse_threshold(self.reuse_threshold)


@dataclass(frozen=True)
class VideoJob:
    """A checked request: upscale `source` into `target` with these settings."""

    source: Path
    target: Path
    format_name: str
    probe: VideoProbe
    encoder: EncoderSettings
    options: VideoOptions


@dataclass(frozen=True)
class VideoReport:
    frames: int
    seconds: float
    width: int
    height: int
    encoder: str
    streams: list[str] = field(default_factory=list)
    reuse: ReuseCounts | None = None  # None: reuse was off

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def plan_video(source: Path, target: Path, options: VideoOptions = VideoOptions()) -> VideoJob:
    """Check the input, the output path and the encoder settings before any work is done."""
    if not source.is_dir():
        check_regular(source, "a video file")  # pipes and devices: refused before opening
    _check_target(source, target)
    format_name = container_format(target)
    probe = probe_video(source, options.time_range)
    spec = choose_encoder(options.codec, probe.codec, format_name)
    encoder = encoder_settings(
        spec, options.crf, options.preset, options.pix_fmt, probe.pix_fmt, probe.high_bit_depth
    )
    return VideoJob(source, target, format_name, probe, encoder, options)


def _check_target(source: Path, target: Path) -> None:
    if real_path(target) == real_path(source) or (
        target.exists() and source.exists() and target.samefile(source)
    ):
        raise BadInputError(
            f"{shown(target)}: the output would replace the input; choose another name"
        )
    if target.is_dir():
        raise BadInputError(
            f"{shown(target)}: is a folder; give an output file name such as out.mp4"
        )


def output_size(probe: VideoProbe, model: AnyModel, options: UpscaleOptions) -> tuple[int, int]:
    """(width, height) of the upscaled video: ceil(side * outscale), as `upscale_image`."""
    factor = options.outscale if options.outscale is not None else model.scale
    return math.ceil(probe.width * factor), math.ceil(probe.height * factor)


def _check_even(width: int, height: int, pix_fmt: str) -> None:
    layout = av.VideoFormat(pix_fmt)
    step_x, step_y = 64 // layout.chroma_width(64), 64 // layout.chroma_height(64)
    if width % step_x or height % step_y:
        raise BadInputError(
            f"the upscaled video would be {width}x{height}, which {pix_fmt} cannot hold "
            "(its sides must be even); choose another --outscale or --pix-fmt yuv444p"
        )


# --- the pipeline -------------------------------------------------------------------------


class _Cancelled(Exception):
    """Another stage failed, or the run was interrupted."""


class _Run:
    """Shared by the three stages: bounded hand-over that gives up once any stage fails."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.threads: list[threading.Thread] = []

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stop.set()

    def put(self, queue: Queue, item: object) -> None:
        while not self.stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return
            except Full:
                continue
        raise _Cancelled

    def get(self, queue: Queue) -> object:
        while not self.stop.is_set():
            try:
                return queue.get(timeout=0.1)
            except Empty:
                continue
        raise _Cancelled

    def spawn(self, name: str, work: Callable[[], None]) -> None:
        def body() -> None:
            try:
                work()
            except _Cancelled:
                pass
            except BaseException as exc:
                self.fail(exc)

        thread = threading.Thread(target=body, name=f"srgan-video-{name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def finish(self, timeout: float | None = None) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def idle(self) -> bool:
        return not any(thread.is_alive() for thread in self.threads)


_END = object()


@dataclass
class _Frame:
    """A video frame on its way: pixels (RGB) and where it goes in the output."""

    pixels: np.ndarray
    pts: int  # in the output video time base
    duration: int  # of one output frame, same unit (0: unknown)
    repeat: int = 1  # consecutive output frames it fills (--fps)


@dataclass
class _Side:
    """A packet of a stream that is carried over, already moved to the output timeline."""

    packet: av.Packet
    stream_index: int


class _Placed(NamedTuple):
    """A decoded frame and the output frames it becomes."""

    frame: av.VideoFrame
    pts: int  # of the first output frame, in the output video time base
    duration: int  # of each output frame, same unit (0: unknown)
    repeat: int  # consecutive output frames (--fps may repeat a frame)


@dataclass(frozen=True)
class _Window:
    """The kept part of the timeline, in absolute seconds; `shift` moves it to 0."""

    start: Fraction | None
    end: Fraction | None

    @property
    def shift(self) -> Fraction:
        return self.start or Fraction(0)

    def holds(self, moment: Fraction) -> bool:
        return (self.start is None or moment >= self.start) and (
            self.end is None or moment < self.end
        )


class _Timeline:
    """Output timestamps of the kept frames: their own ones, moved by the cut."""

    def __init__(self, time_base: Fraction, window: _Window) -> None:
        self.shift = round(window.shift / time_base)
        self.previous: int | None = None

    def place(self, frame: av.VideoFrame) -> list[_Placed]:
        pts = frame.pts if frame.pts is not None else self._next_pts(frame)
        self.previous = pts
        return [_Placed(frame, pts - self.shift, frame.duration or 0, 1)]

    def _next_pts(self, frame: av.VideoFrame) -> int:
        return 0 if self.previous is None else self.previous + max(1, frame.duration or 1)

    def finish(self) -> list[_Placed]:
        return []


class _ConstantRate:
    """--fps: output frame k shows at k / fps; each input frame fills the slots from its
    own time (rounded to the nearest slot) to the next frame's, so frames are repeated
    or dropped and the timing of the whole stays that of the input (audio keeps sync)."""

    def __init__(self, fps: Fraction, time_base: Fraction, window: _Window, rate: Fraction):
        self.fps, self.time_base, self.window = fps, time_base, window
        self.fallback_duration = 1 / rate
        self.pending: tuple[av.VideoFrame, Fraction] | None = None
        self.next_slot = 0
        self.count = 0

    def place(self, frame: av.VideoFrame) -> list[_Placed]:
        moment = (
            Fraction(frame.pts) * self.time_base
            if frame.pts is not None
            else self.window.shift + self.count * self.fallback_duration
        )
        self.count += 1
        ready = self._release(moment) if self.pending else []
        self.pending = (frame, moment)
        return ready

    def finish(self) -> list[_Placed]:
        if self.pending is None:
            return []
        frame, moment = self.pending
        length = Fraction(frame.duration) * self.time_base if frame.duration else None
        stop = moment + (length or self.fallback_duration)
        if self.window.end is not None:
            stop = min(stop, self.window.end)
        return self._release(stop)

    def _release(self, until: Fraction) -> list[_Placed]:
        assert self.pending is not None
        last = round((until - self.window.shift) * self.fps)
        repeat = last - self.next_slot
        if repeat <= 0:
            return []  # dropped: the next frame covers its slot
        first, self.next_slot = self.next_slot, last
        return [_Placed(self.pending[0], first, 1, repeat)]


@dataclass
class _Reader:
    """Demux, decode the video, keep what is in range, and pass batches on."""

    run: _Run
    container: InputContainer
    probe: VideoProbe
    window: _Window
    timing: _Timeline | _ConstantRate
    carried: set[int]
    batch_frames: int
    queue: Queue

    def __call__(self) -> None:
        video = video_stream_at(self.container, self.probe.stream_index)
        video.thread_type = "AUTO"
        streams = [video, *(self.container.streams[i] for i in sorted(self.carried))]
        seek_before(self.container, video, self.window.start)
        batch: list[_Frame | _Side] = []
        frames = 0  # _Frame items in `batch`
        video_done = False
        # Subtitles are sparse: only audio has to reach the end of the range before stopping.
        side_done = {i for i in self.carried if self.container.streams[i].type != "audio"}
        for packet in self.container.demux(streams):
            if self.run.stop.is_set():
                raise _Cancelled
            index = packet.stream.index
            if index == video.index:
                if not video_done:
                    before = len(batch)
                    video_done = self._add_frames(video, packet, batch)
                    frames += len(batch) - before  # it adds only frames
            elif self._keep(packet):
                batch.append(_Side(packet, index))
            elif self._past_end(packet):
                side_done.add(index)
            if video_done and side_done >= self.carried:
                break
            if frames >= self.batch_frames:
                self.run.put(self.queue, batch)
                batch, frames = [], 0
        batch.extend(self._frame(*ready) for ready in self.timing.finish())
        self.run.put(self.queue, batch)
        self.run.put(self.queue, _END)

    def _add_frames(self, video: VideoStream, packet: av.Packet, batch: list) -> bool:
        """Decode a packet into the batch; True once the video is past the range."""
        for frame in decode_packet(video, packet, self.probe.path):
            if frame.pts is not None:
                moment = frame_time(frame, self.probe.time_base)
                if self.window.start is not None and moment < self.window.start:
                    continue
                if self.window.end is not None and moment >= self.window.end:
                    return True
            batch.extend(self._frame(*ready) for ready in self.timing.place(frame))
        return False

    def _frame(self, frame: av.VideoFrame, pts: int, duration: int, repeat: int) -> _Frame:
        probe = self.probe
        if (frame.width, frame.height) != (probe.width, probe.height):
            moment = float(frame_time(frame, probe.time_base) - probe.origin)
            raise BadInputError(
                f"{probe.path}: the picture size changes from {probe.width}x{probe.height} to "
                f"{frame.width}x{frame.height} at {moment:.3f} s; cut the video there "
                "(--start/--end) and upscale the parts separately"
            )
        pixels = frame.to_ndarray(format=probe.pixels_format)
        return _Frame(pixels, pts, duration, repeat)

    def _keep(self, packet: av.Packet) -> bool:
        """In range: move it onto the output timeline (in place) and keep it."""
        stamp = packet.pts if packet.pts is not None else packet.dts
        if packet.size == 0 or packet.time_base is None:
            return False
        if stamp is None:
            return self.window.start is None and self.window.end is None
        if not self.window.holds(Fraction(stamp) * packet.time_base):
            return False
        shift = round(self.window.shift / packet.time_base)
        if shift:
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        return True

    def _past_end(self, packet: av.Packet) -> bool:
        stamp = packet.pts if packet.pts is not None else packet.dts
        if self.window.end is None or stamp is None or packet.time_base is None:
            return False
        return Fraction(stamp) * packet.time_base >= self.window.end


class _Encoder:
    """RGB arrays -> frames in the encoder's pixel format and colour -> packets, muxed."""

    def __init__(
        self, output: OutputContainer, stream: VideoStream, job: VideoJob, time_base: Fraction
    ):
        self.output, self.stream, self.time_base = output, stream, time_base
        self.pix_fmt = job.encoder.pix_fmt
        self.pixels_format = job.probe.pixels_format
        colour = job.probe.colour  # the same for every frame: converted once
        self.colorspace = _swscale_colorspace(colour.colorspace)
        self.color_range = colour.color_range or None
        self.reformatter = VideoReformatter()
        self.frames = 0

    def encode(self, item: _Frame) -> None:
        rgb = av.VideoFrame.from_ndarray(item.pixels, format=self.pixels_format)
        frame = self.reformatter.reformat(
            rgb,
            format=self.pix_fmt,
            dst_colorspace=self.colorspace,
            dst_color_range=self.color_range,
        )
        frame.time_base = self.time_base
        for offset in range(item.repeat):
            frame.pts = item.pts + offset
            frame.duration = item.duration
            self.output.mux(self.stream.encode(frame))
            self.frames += 1

    def flush(self) -> None:
        self.output.mux(self.stream.encode(None))


def _swscale_colorspace(colorspace: int) -> Colorspace | None:
    """swscale's conversion matrix for a colour space tag; None for untagged video, which
    swscale converts as BT.601 both ways (as it decoded it) without tagging the result."""
    by_tag = {
        1: Colorspace.ITU709,
        4: Colorspace.FCC,
        5: Colorspace.ITU601,
        6: Colorspace.SMPTE170M,
        7: Colorspace.SMPTE240M,
        9: Colorspace.BT2020,
        10: Colorspace.BT2020,
    }
    return by_tag.get(colorspace)


@dataclass
class _Writer:
    run: _Run
    queue: Queue
    encoder: _Encoder
    carried: dict[int, SideStream]
    target: Path
    waits: _Waits

    def __call__(self) -> None:
        try:
            self._write_all()
        except FFmpegError as exc:  # its text names the temporary file: say which output
            reason = exc.strerror or type(exc).__name__
            raise SrganError(f"{self.target}: FFmpeg failed to write it ({reason})") from exc

    def _write_all(self) -> None:
        while (batch := self.waits.timed("idle", lambda: self.run.get(self.queue))) is not _END:
            for item in batch:  # type: ignore[attr-defined]
                if isinstance(item, _Frame):
                    self.encoder.encode(item)
                else:
                    self.carried[item.stream_index].write(item.packet)
        self.encoder.flush()
        for handler in self.carried.values():
            handler.flush()


def _batch_frames(width: int, height: int, high_bit_depth: bool) -> int:
    frame_bytes = width * height * 3 * (2 if high_bit_depth else 1)
    return max(1, min(_MAX_BATCH_FRAMES, _BATCH_BYTES // max(1, frame_bytes)))


def expected_frames(job: VideoJob) -> int | None:
    """About how many frames the output will have (for progress), or None."""
    span = job.probe.range_seconds
    if span is None:
        return None
    rate = job.options.fps or job.probe.rate
    return max(1, round(span * rate))


def video_runner(model: AnyModel, options: UpscaleOptions) -> Forward:
    """The network for the model stage: all the cores, with threads that sleep when idle.

    The stages share the cores: while the network waits for the next frame, the decoder
    and the encoder need them. ONNX Runtime's threads otherwise busy-wait between calls
    (ncnn's OpenMP threads for 20 ms), which on 2 cores took 18% more CPU time for the same
    frames (`benchmarks/video_threads.py`, docs/VIDEO.md "How it works")."""
    return make_runner(model, options, spinning=False)


def upscale_video(
    job: VideoJob,
    model: AnyModel,
    options: UpscaleOptions | None = None,
    progress: VideoProgress | None = None,
    runner: Forward | None = None,
) -> VideoReport:
    """Upscale `job.source` into `job.target` (atomically) and report what was done."""
    options = options or UpscaleOptions()
    width, height = output_size(job.probe, model, options)
    _check_even(width, height, job.encoder.pix_fmt)
    runner = runner or video_runner(model, options)
    # Short, fixed-length name: a target at the 255-byte name limit still gets one.
    temp = job.target.parent / f".srgan-{secrets.token_hex(4)}.part"
    try:
        job.target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"{job.target.parent}: cannot create it ({exc.strerror})") from None
    started = time.perf_counter()
    try:
        with _upscaler_notes_once():
            frames, notes, reuse = _encode_all(
                job, model, options, runner, temp, (width, height), progress
            )
        _sync(temp)
        os.replace(temp, job.target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - started
    return VideoReport(frames, seconds, width, height, job.encoder.spec.name, notes, reuse)


def _sync(path: Path) -> None:
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())


def _encode_all(
    job: VideoJob,
    model: AnyModel,
    options: UpscaleOptions,
    runner: Forward,
    temp: Path,
    size: tuple[int, int],
    progress: VideoProgress | None,
) -> tuple[int, list[str], ReuseCounts | None]:
    window = _Window(job.probe.start, job.probe.end)
    container_options = {"movflags": "+faststart"} if job.format_name in ("mp4", "mov") else {}
    run = _Run()
    source = open_input(job.source)
    output = av.open(str(temp), "w", job.format_name, container_options=container_options)
    try:
        video, time_base = _add_video_stream(output, job, size)
        copy_stream_tags(source.streams[job.probe.stream_index], video)
        plan = plan_side_streams(source, output, job.probe.stream_index, job.options.audio)
        copy_container_tags(source, output)
        copy_chapters(source, output, window.shift, window.end)
        _open_encoder(video, job, size)
        encoder = _Encoder(output, video, job, time_base)
        reuse = _run_stages(
            run, job, model, options, runner, source, window, encoder, plan.carried, progress
        )
        output.close()
    except BaseException:
        if run.idle():  # a stage still running may be inside the containers: leave them
            _close_quietly(output)
        raise
    finally:
        if run.idle():
            source.close()
    return encoder.frames, plan.notes, reuse


def video_stream_at(container: InputContainer, index: int) -> VideoStream:
    """The probed video stream, by its index among all the file's streams."""
    stream = container.streams[index]
    if not isinstance(stream, VideoStream):
        raise TypeError(f"stream {index} is {stream.type}, not video")
    return stream


def _close_quietly(output: OutputContainer) -> None:
    try:
        output.close()
    except Exception:  # the file is being thrown away; its trailer does not matter
        log.debug("closing an abandoned output failed", exc_info=True)


def _add_video_stream(
    output: OutputContainer, job: VideoJob, size: tuple[int, int]
) -> tuple[VideoStream, Fraction]:
    probe, fps = job.probe, job.options.fps
    time_base = 1 / fps if fps else probe.time_base
    stream = output.add_stream(job.encoder.spec.name, rate=fps or probe.rate)
    if not isinstance(stream, VideoStream):
        raise TypeError(f"{job.encoder.spec.name} is not a video encoder")
    stream.width, stream.height = size
    stream.pix_fmt = job.encoder.pix_fmt
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    stream.codec_context.options = dict(job.encoder.options)
    probe.colour.tag(stream.codec_context)
    if probe.matrix is not None:
        stream.set_display_matrix(
            scaled_display_matrix(probe.matrix, size[0] / probe.width, size[1] / probe.height)
        )
    return stream, time_base


def _open_encoder(stream: VideoStream, job: VideoJob, size: tuple[int, int]) -> None:
    """Open the encoder now, so that settings it refuses fail before any frame is computed."""
    for name, value in job.encoder.spec.quiet_environment:
        os.environ.setdefault(name, value)
    try:
        stream.codec_context.open()
    except FFmpegError as exc:
        width, height = size
        raise BadInputError(
            f"{job.encoder.spec.name} refuses {width}x{height} {job.encoder.pix_fmt} with "
            f"{job.encoder.options} ({one_line(exc)}); change --codec, --preset or --pix-fmt"
        ) from None


def _run_stages(
    run: _Run,
    job: VideoJob,
    model: AnyModel,
    options: UpscaleOptions,
    runner: Forward,
    source: InputContainer,
    window: _Window,
    encoder: _Encoder,
    carried: dict[int, SideStream],
    progress: VideoProgress | None,
) -> ReuseCounts | None:
    probe = job.probe
    timing: _Timeline | _ConstantRate = (
        _ConstantRate(job.options.fps, probe.time_base, window, probe.rate)
        if job.options.fps
        else _Timeline(probe.time_base, window)
    )
    decoded: Queue = Queue(_QUEUE_BATCHES)
    upscaled: Queue = Queue(_QUEUE_BATCHES)
    width, height = encoder.stream.width, encoder.stream.height
    batch_frames = _batch_frames(width, height, probe.high_bit_depth)
    reader = _Reader(run, source, probe, window, timing, set(carried), batch_frames, decoded)
    run.spawn("reader", reader)
    waits = _Waits()
    run.spawn("writer", _Writer(run, upscaled, encoder, carried, job.target, waits))
    total, done = expected_frames(job), 0
    stage = _model_stage(model, options, runner, job.options)
    try:
        while (batch := waits.timed("frames", lambda: run.get(decoded))) is not _END:
            for ready in _batches(stage.feed(batch), batch_frames):  # type: ignore[arg-type]
                waits.timed("encoder", lambda ready=ready: run.put(upscaled, ready))
                done += sum(item.repeat for item in ready if isinstance(item, _Frame))
            if progress:
                progress(done, total)
        for ready in _batches(stage.finish(), batch_frames):
            waits.timed("encoder", lambda ready=ready: run.put(upscaled, ready))
        run.put(upscaled, _END)
        run.finish()
        log.info("%s", waits.explain())
    except BaseException as exc:
        run.stop.set()
        run.finish(timeout=10)
        if isinstance(exc, _Cancelled) and run.error is not None:
            raise run.error from None
        raise
    if run.error is not None:
        raise run.error
    if encoder.frames == 0:
        raise BadInputError(f"{job.source}: no video frame could be decoded in range")
    return stage.reuse.counts if isinstance(stage, _FrameByFrame) and stage.reuse else None


class _Waits:
    """Seconds the model stage waited for the reader ("frames") and for the writer
    ("encoder"), and the writer for the model ("idle"): for -v, which stage holds up the
    others."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds = {"frames": 0.0, "encoder": 0.0, "idle": 0.0}

    def timed(self, what: str, work: Callable[[], object]) -> object:
        started = time.perf_counter()
        try:
            return work()
        finally:
            self.seconds[what] += time.perf_counter() - started

    def explain(self) -> str:
        spent, waited = time.perf_counter() - self.started, self.seconds
        return (
            f"pipeline {spent:.1f} s: the model waited {waited['frames']:.1f} s for decoded "
            f"frames and {waited['encoder']:.1f} s for the encoder, which waited "
            f"{waited['idle']:.1f} s for upscaled frames"
        )


def _batches(items: list[_Frame | _Side], frames: int) -> Iterator[list[_Frame | _Side]]:
    """`items` cut into batches of at most `frames` frames (a long temporal window can
    release many frames at once); nothing for an empty list."""
    batch: list[_Frame | _Side] = []
    count = 0
    for item in items:
        if isinstance(item, _Frame):
            if count == frames:
                yield batch
                batch, count = [], 0
            count += 1
        batch.append(item)
    if batch:
        yield batch


class _FrameByFrame:
    """The model stage for image models: every frame is upscaled on its own, in place,
    or reused (whole or in part) from the frame before (`video_reuse`)."""

    def __init__(
        self,
        model: AnyModel,
        options: UpscaleOptions,
        runner: Forward,
        reuse_threshold: float | None,
    ) -> None:
        self.model, self.options, self.runner = model, options, runner
        self.reuse_threshold = reuse_threshold
        self.reuse: FrameReuse | None = None

    def feed(self, batch: list[_Frame | _Side]) -> list[_Frame | _Side]:
        for item in batch:
            if isinstance(item, _Frame):
                item.pixels = self._upscale(item.pixels)
        return batch

    def _upscale(self, pixels: np.ndarray) -> np.ndarray:
        if self.reuse_threshold is None:
            return _upscale_frame(self.model, pixels, self.options, self.runner)
        if self.reuse is None:
            height, width = pixels.shape[:2]
            self.reuse = FrameReuse(
                self.model,
                self.options,
                self.runner,
                self.reuse_threshold,
                height,
                width,
                pixels.dtype,
            )
        return self.reuse.upscale(pixels)

    def finish(self) -> list[_Frame | _Side]:
        return []


class _TemporalWindows:
    """The model stage for video SR models: frames go through overlapping temporal windows
    (`inference.vsr`), so an output frame is final only once the frames after it have been
    read. Items are held back and handed on in their original order: side-stream packets
    wait behind the frames read before them. At most about two windows of frames wait."""

    def __init__(self, vsr: WindowedVSR, options: UpscaleOptions, scale: float) -> None:
        self.vsr, self.options, self.scale = vsr, options, scale
        self.waiting: list[_Frame | _Side] = []
        self.upscaled: deque[np.ndarray] = deque()

    def feed(self, batch: list[_Frame | _Side]) -> list[_Frame | _Side]:
        for item in batch:
            self.waiting.append(item)
            if isinstance(item, _Frame):
                self.upscaled.extend(self.vsr.push(item.pixels))
        return self._release()

    def finish(self) -> list[_Frame | _Side]:
        self.upscaled.extend(self.vsr.finish())
        return self._release()

    def _release(self) -> list[_Frame | _Side]:
        """The waiting items up to the last frame whose output is ready, outputs filled in."""
        released = 0
        for item in self.waiting:
            if isinstance(item, _Frame):
                if not self.upscaled:
                    break
                source = item.pixels.shape[:2]
                item.pixels = resize_to_outscale(
                    self.upscaled.popleft(), source, self.options.outscale, self.scale
                )
            released += 1
        ready, self.waiting = self.waiting[:released], self.waiting[released:]
        return ready


def _model_stage(
    model: AnyModel, options: UpscaleOptions, runner: Forward, video: VideoOptions
) -> _FrameByFrame | _TemporalWindows:
    if not model.descriptor.temporal:
        return _FrameByFrame(model, options, runner, video.reuse_threshold)
    window = video.window
    vsr = windowed_runner(model, options, TemporalWindows(window), runner)
    log.info("%s: temporal windows of %d frames (no frame reuse)", model.name, window)
    return _TemporalWindows(vsr, options, model.scale)


class _OncePerMessage(logging.Filter):
    """Lets each distinct message through once: the upscaler's notes on how it runs an
    image would otherwise repeat for every frame."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


@contextmanager
def _upscaler_notes_once() -> Iterator[None]:
    logger = logging.getLogger("srgan.inference.upscaler")
    once = _OncePerMessage()
    logger.addFilter(once)
    try:
        yield
    finally:
        logger.removeFilter(once)


def _upscale_frame(
    model: AnyModel, pixels: np.ndarray, options: UpscaleOptions, runner: Forward
) -> np.ndarray:
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    image = Image(pixels, ImageMeta(bit_depth=bit_depth))
    return upscale_image(model, image, options, None, runner).pixels


# --- previews -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewJob:
    source: Path
    folder: Path
    count: int
    probe: VideoProbe


def plan_preview(
    source: Path, folder: Path, count: int, time_range: TimeRange = WHOLE_VIDEO
) -> PreviewJob:
    """Check a request for `count` upscaled sample frames written into `folder`."""
    if count < 1:
        raise BadInputError(f"--preview {count}: give 1 or more frames")
    if folder.exists() and not folder.is_dir():
        raise BadInputError(f"{folder}: exists and is not a folder; --preview writes a folder")
    probe = probe_video(source, time_range)
    if probe.range_seconds is None:
        raise BadInputError(f"{source}: its length is unknown; give --end with --preview")
    return PreviewJob(source, folder, count, probe)


def preview_times(probe: VideoProbe, count: int) -> list[Fraction]:
    """Absolute times at the middle of `count` equal parts of the range."""
    first = probe.start if probe.start is not None else probe.origin
    span = probe.range_seconds or Fraction(0)
    return [first + span * (2 * n + 1) / (2 * count) for n in range(count)]


def preview_video(
    job: PreviewJob,
    model: AnyModel,
    options: UpscaleOptions | None = None,
    progress: VideoProgress | None = None,
    runner: Forward | None = None,
) -> list[Path]:
    """Write `job.count` evenly spaced upscaled frames as PNG (shown upright) and stop."""
    options = options or UpscaleOptions()
    runner = runner or make_runner(model, options)
    try:
        job.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"{job.folder}: cannot create it ({exc.strerror})") from None
    written = []
    with open_input(job.source) as container, _upscaler_notes_once():
        stream = video_stream_at(container, job.probe.stream_index)
        for number, moment in enumerate(preview_times(job.probe, job.count), start=1):
            frame = _frame_at(container, stream, moment, job.probe)
            pixels = _upscale_frame(
                model, frame.to_ndarray(format=job.probe.pixels_format), options, runner
            )
            pixels = np.ascontiguousarray(np.rot90(pixels, k=round(frame.rotation / 90) % 4))
            shown_at = frame_time(frame, job.probe.time_base) if frame.pts is not None else moment
            seconds = float(shown_at - job.probe.origin)
            path = job.folder / f"{job.source.stem}_{number:03d}_{seconds:.3f}s.png"
            write_image(path, Image(pixels, ImageMeta(bit_depth=pixels.itemsize * 8)))
            written.append(path)
            if progress:
                progress(number, job.count)
    return written


def _frame_at(
    container: InputContainer, stream: VideoStream, moment: Fraction, probe: VideoProbe
) -> av.VideoFrame:
    """The frame shown at `moment`: the last one that starts at or before it."""
    container.seek(max(0, math.floor(moment / probe.time_base)), stream=stream, backward=True)
    shown = None
    for frame in decoded_frames(container, stream, probe.path):
        later = frame.pts is not None and frame_time(frame, probe.time_base) > moment
        if shown is not None and later:
            break
        shown = frame
    if shown is None:
        raise BadInputError(f"{probe.path}: no frame could be decoded near {float(moment):.3f} s")
    return shown
