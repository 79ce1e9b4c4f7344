"""The output side of `srgan.inference.video`: containers, encoders, and the streams that
are not upscaled (audio, subtitles, attachments), copied packet for packet where the
output container can hold them and re-encoded where it cannot.

Nothing here prints: decisions a user should hear about (a re-encoded or dropped stream)
go to the `srgan` logger as warnings.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
from av.audio.stream import AudioStream
from av.codec.codec import Codec, UnknownCodecError
from av.container import InputContainer, OutputContainer
from av.error import FFmpegError
from av.stream import Stream
from av.subtitles.stream import SubtitleStream

from srgan.errors import BadInputError

log = logging.getLogger(__name__)

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
_A_FILE = {
    "mp4": "an MP4 file",
    "mov": "a MOV file",
    "matroska": "an MKV file",
    "webm": "a WebM file",
}
_MP4_LIKE = ("mp4", "mov")
# Tags that describe the old file, not the new one: brands, the writing tool, and the
# statistics mkvmerge stores per stream.
_STALE_TAGS = frozenset(
    {
        "major_brand",
        "minor_version",
        "compatible_brands",
        "encoder",
        "handler_name",
        "vendor_id",
        "duration",
        "bps",
        "number_of_frames",
        "number_of_bytes",
    }
)

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


@dataclass(frozen=True)
class EncoderSpec:
    """How srgan drives one FFmpeg encoder: its quality scale and its speed/profile knob."""

    name: str
    crf_range: tuple[int, int] | None  # None: the encoder has no constant-quality mode
    default_crf: int | None
    preset_option: str  # the encoder option that `--preset` sets
    presets: tuple[str, ...]
    default_preset: str
    fixed_options: tuple[tuple[str, str], ...] = ()
    default_pix_fmt: str = "yuv420p"
    # Environment the encoder library reads to stay quiet (it logs to stderr by itself).
    quiet_environment: tuple[tuple[str, str], ...] = ()


def _numbers(low: int, high: int) -> tuple[str, ...]:
    return tuple(str(n) for n in range(low, high + 1))


@dataclass(frozen=True)
class CodecFamily:
    """A user-facing `--codec` name: the input codecs it covers and its encoders, best first."""

    name: str
    decoders: tuple[str, ...]
    encoders: tuple[EncoderSpec, ...]


FAMILIES: dict[str, CodecFamily] = {
    family.name: family
    for family in (
        CodecFamily(
            "h264",
            ("h264",),
            (EncoderSpec("libx264", (0, 51), 18, "preset", X264_PRESETS, "medium"),),
        ),
        CodecFamily(
            "h265",
            ("hevc",),
            (
                EncoderSpec(
                    "libx265",
                    (0, 51),
                    20,
                    "preset",
                    X264_PRESETS,
                    "medium",
                    # x265 writes its banner and statistics straight to stderr otherwise.
                    (("x265-params", "log-level=error"),),
                ),
            ),
        ),
        CodecFamily(
            "vp9",
            ("vp9",),
            (
                EncoderSpec(
                    "libvpx-vp9",
                    (0, 63),
                    30,
                    "cpu-used",
                    _numbers(0, 8),
                    "4",
                    (("deadline", "good"), ("row-mt", "1"), ("b", "0")),
                ),
            ),
        ),
        CodecFamily(
            "av1",
            ("av1",),
            (
                EncoderSpec(
                    "libsvtav1",
                    (1, 63),
                    30,
                    "preset",
                    _numbers(0, 13),
                    "8",
                    quiet_environment=(("SVT_LOG", "1"),),  # errors only
                ),
                EncoderSpec(
                    "libaom-av1", (0, 63), 30, "cpu-used", _numbers(0, 8), "6", (("row-mt", "1"),)
                ),
            ),
        ),
        CodecFamily(
            "prores",
            ("prores",),
            (
                EncoderSpec(
                    "prores_ks",
                    None,
                    None,
                    "profile",
                    ("proxy", "lt", "standard", "hq", "4444", "4444xq"),
                    "hq",
                    default_pix_fmt="yuv422p10le",
                ),
            ),
        ),
    )
}
# When the input's family cannot be written, the first of these the container accepts.
_FALLBACK_FAMILIES = ("h264", "vp9", "av1")


def container_format(target: Path) -> str:
    """The FFmpeg muxer for an output file, from its extension."""
    try:
        return CONTAINERS[target.suffix.lower()]
    except KeyError:
        names = ", ".join(CONTAINERS)
        raise BadInputError(
            f"{target}: unknown video container {target.suffix or '(no extension)'!r}; "
            f"name the output {names}"
        ) from None


def _available(spec: EncoderSpec) -> bool:
    try:
        Codec(spec.name, "w")
    except UnknownCodecError:
        return False
    return True


def _accepted_codecs(format_name: str) -> set[str]:
    # An output container touches no file until its header is written.
    with av.open(os.devnull, "w", format_name) as probe:
        return probe.supported_codecs


def family_of(input_codec: str) -> str | None:
    return next((f.name for f in FAMILIES.values() if input_codec in f.decoders), None)


def choose_encoder(family: str | None, input_codec: str, format_name: str) -> EncoderSpec:
    """The encoder for `--codec FAMILY`, or by default for the input's family when it can be
    written into this container, else H.264 (VP9 or AV1 where H.264 cannot go, as in WebM)."""
    accepted = _accepted_codecs(format_name)

    def usable(name: str) -> EncoderSpec | None:
        return next(
            (s for s in FAMILIES[name].encoders if s.name in accepted and _available(s)), None
        )

    if family is not None:
        if family not in FAMILIES:
            raise BadInputError(f"--codec {family!r}: use {', '.join(FAMILIES)}")
        if not any(s.name in accepted for s in FAMILIES[family].encoders):
            raise BadInputError(
                f"{a_file(format_name)} cannot hold {family} video; choose another --codec or "
                "another output extension (.mkv holds them all)"
            )
        spec = usable(family)
        if spec is None:
            tried = ", ".join(s.name for s in FAMILIES[family].encoders)
            raise BadInputError(
                f"--codec {family}: this FFmpeg build has no {family} encoder ({tried}); "
                "choose another --codec"
            )
        return spec
    own = family_of(input_codec)
    for name in ((own,) if own else ()) + _FALLBACK_FAMILIES:
        spec = usable(name)
        if spec is not None:
            return spec
    raise BadInputError(f"no video encoder for {a_file(format_name)}; give --codec")


def a_file(format_name: str) -> str:
    """'an MP4 file', for messages."""
    return _A_FILE.get(format_name, f"a {format_name} file")


@dataclass(frozen=True)
class EncoderSettings:
    """A validated encoder configuration for the upscaled video stream."""

    spec: EncoderSpec
    pix_fmt: str
    options: dict[str, str]


def encoder_settings(
    spec: EncoderSpec,
    crf: int | None,
    preset: str | None,
    pix_fmt: str | None,
    input_pix_fmt: str,
    high_bit_depth: bool,
) -> EncoderSettings:
    """Check --crf, --preset and --pix-fmt against the encoder; fill in the defaults."""
    options = dict(spec.fixed_options)
    if crf is not None and spec.crf_range is None:
        raise BadInputError(
            f"--crf does not apply to {spec.name}; choose its quality with --preset "
            f"({', '.join(spec.presets)})"
        )
    if spec.crf_range is not None:
        low, high = spec.crf_range
        chosen_crf = spec.default_crf if crf is None else crf
        if not low <= chosen_crf <= high:  # type: ignore[operator]
            raise BadInputError(f"--crf {crf}: {spec.name} takes {low} to {high}")
        options["crf"] = str(chosen_crf)
    chosen_preset = spec.default_preset if preset is None else preset
    if chosen_preset not in spec.presets:
        raise BadInputError(f"--preset {preset!r}: {spec.name} takes {', '.join(spec.presets)}")
    options[spec.preset_option] = chosen_preset
    supported = [f.name for f in Codec(spec.name, "w").video_formats or ()]
    if pix_fmt is not None:
        if pix_fmt not in supported:
            raise BadInputError(f"--pix-fmt {pix_fmt}: {spec.name} takes {', '.join(supported)}")
        return EncoderSettings(spec, pix_fmt, options)
    return EncoderSettings(
        spec, _default_pix_fmt(spec, supported, input_pix_fmt, high_bit_depth), options
    )


def _default_pix_fmt(
    spec: EncoderSpec, supported: list[str], input_pix_fmt: str, high_bit_depth: bool
) -> str:
    """The input's layout where the encoder takes it, else a common one of the same depth."""
    if input_pix_fmt in supported:
        return input_pix_fmt
    wanted = ("yuv420p10le", "yuv422p10le") if high_bit_depth else ()
    for name in (*wanted, spec.default_pix_fmt, "yuv420p"):
        if name in supported:
            return name
    return supported[0]


@dataclass(frozen=True)
class Colour:
    """Colour tags of a video stream, as FFmpeg's enum values (2 = unspecified)."""

    color_range: int = 0
    colorspace: int = 2
    color_primaries: int = 2
    color_trc: int = 2

    @classmethod
    def of(cls, source: object) -> Colour:
        """From a decoded frame or a codec context; frame values win where they are set."""
        return cls(
            int(getattr(source, "color_range", 0) or 0),
            int(getattr(source, "colorspace", 2) or 2),
            int(getattr(source, "color_primaries", 2) or 2),
            int(getattr(source, "color_trc", 2) or 2),
        )

    def or_else(self, other: Colour) -> Colour:
        return Colour(
            self.color_range or other.color_range,
            self.colorspace if self.colorspace != 2 else other.colorspace,
            self.color_primaries if self.color_primaries != 2 else other.color_primaries,
            self.color_trc if self.color_trc != 2 else other.color_trc,
        )

    def tag(self, context: object) -> None:
        for name in ("color_range", "colorspace", "color_primaries", "color_trc"):
            setattr(context, name, getattr(self, name))


def display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The frame's 3x3 display matrix (rotation, flips), FFmpeg's 9 int32 values."""
    side_data = frame.side_data.get("DISPLAYMATRIX")
    if side_data is None:
        return None
    return struct.unpack("<9i", bytes(side_data))


def scaled_display_matrix(matrix: tuple[int, ...], factor_x: float, factor_y: float) -> list[int]:
    # Entries 6 and 7 translate by a number of pixels (MP4 rotations often carry the frame
    # size there); they must grow with the picture, while the rotation entries must not.
    scaled = list(matrix)
    scaled[6] = round(matrix[6] * factor_x)
    scaled[7] = round(matrix[7] * factor_y)
    return scaled


class SideStream(Protocol):
    """An input stream that is carried into the output without being upscaled."""

    description: str

    def write(self, packet: av.Packet) -> None: ...

    def flush(self) -> None: ...


@dataclass
class CopiedStream:
    output: OutputContainer
    stream: Stream
    description: str

    def write(self, packet: av.Packet) -> None:
        packet.stream = self.stream
        self.output.mux(packet)

    def flush(self) -> None:
        pass


@dataclass
class TranscodedAudio:
    output: OutputContainer
    source: AudioStream
    stream: AudioStream
    description: str

    def write(self, packet: av.Packet) -> None:
        for frame in self.source.decode(packet):
            self.output.mux(self.stream.encode(frame))

    def flush(self) -> None:
        for frame in self.source.decode(None):
            self.output.mux(self.stream.encode(frame))
        self.output.mux(self.stream.encode(None))


@dataclass
class TranscodedSubtitles:
    output: OutputContainer
    source: SubtitleStream
    stream: SubtitleStream
    description: str

    def write(self, packet: av.Packet) -> None:
        subtitles = self.source.codec_context.decode2(packet)
        if subtitles is None:
            return
        encoded = self.stream.codec_context.encode_subtitle(subtitles)
        encoded.stream = self.stream
        encoded.time_base = packet.time_base
        encoded.pts = encoded.dts = packet.pts
        encoded.duration = packet.duration
        self.output.mux(encoded)

    def flush(self) -> None:
        pass


@dataclass
class StreamPlan:
    """What happens to each input stream that is not the upscaled one."""

    carried: dict[int, SideStream] = field(default_factory=dict)  # by input stream index
    notes: list[str] = field(default_factory=list)


def plan_side_streams(
    source: InputContainer,
    output: OutputContainer,
    video_index: int,
    keep_audio: bool,
) -> StreamPlan:
    """Add an output stream for every input stream worth keeping, in input order."""
    plan = StreamPlan()
    for stream in source.streams:
        if stream.index == video_index:
            continue
        handler = _carry(stream, output, keep_audio)
        if handler is not None:
            plan.carried[stream.index] = handler
            plan.notes.append(handler.description)
    return plan


def _carry(stream: Stream, output: OutputContainer, keep_audio: bool) -> SideStream | None:
    label = f"stream #{stream.index} ({stream.type} {_codec_name(stream)})"
    if stream.type == "video":
        log.warning("%s dropped: only the first video stream is upscaled", label)
        return None
    if stream.type == "audio" and not keep_audio:
        log.info("%s dropped (--no-audio)", label)
        return None
    if stream.type == "attachment":
        return _copy_attachment(stream, output, label)
    if stream.type == "data" or stream.codec_context is None:
        log.info("%s dropped: data streams are not carried over", label)
        return None
    if isinstance(stream, AudioStream):
        copied = _try_copy(stream, output, label)
        return copied or _transcode_audio(stream, output, label)
    if isinstance(stream, SubtitleStream):
        copied = _try_copy(stream, output, label)
        return copied or _transcode_subtitles(stream, output, label)
    log.info("%s dropped", label)
    return None


def _codec_name(stream: Stream) -> str:
    context = stream.codec_context
    return context.name if context is not None else getattr(stream, "name", None) or "?"


def _copy_refused(stream: Stream, output: OutputContainer) -> bool:
    """Combinations FFmpeg can write but players do not read."""
    # PCM in MP4 (ISO 23003-5) is muxed by recent FFmpeg but few players decode it.
    return output.format.name == "mp4" and _codec_name(stream).startswith("pcm_")


def _try_copy(stream: Stream, output: OutputContainer, label: str) -> CopiedStream | None:
    if _copy_refused(stream, output):
        return None
    try:
        copy = output.add_stream_from_template(stream)
    except ValueError:
        return None
    copy_stream_tags(stream, copy)
    return CopiedStream(output, copy, f"{label} copied")


def _copy_attachment(stream: Stream, output: OutputContainer, label: str) -> CopiedStream | None:
    if output.format.name != "matroska":  # the other muxers refuse them when writing
        log.info("%s dropped: only MKV files hold attachments", label)
        return None
    return CopiedStream(output, output.add_stream_from_template(stream), f"{label} copied")


def fresh_tags(metadata: dict[str, str]) -> dict[str, str]:
    return {
        key: value
        for key, value in metadata.items()
        if key.lower() not in _STALE_TAGS and not key.lower().startswith("_statistics")
    }


def copy_stream_tags(source: Stream, target: Stream) -> None:
    """Language, title and the default/forced flags."""
    target.metadata.update(fresh_tags(source.metadata))
    target.disposition = source.disposition


def _transcode_audio(stream: AudioStream, output: OutputContainer, label: str) -> SideStream | None:
    codec = "libopus" if output.format.name == "webm" else "aac"
    rates = Codec(codec, "w").audio_rates or ()
    rate = stream.codec_context.sample_rate
    if rates and rate not in rates:
        rate = 48000
    try:
        target = output.add_stream(codec, rate=rate)
        target.layout = stream.codec_context.layout
    except (ValueError, FFmpegError):
        log.warning("%s dropped: it cannot be copied or re-encoded into this file", label)
        return None
    copy_stream_tags(stream, target)
    log.warning(
        "%s re-encoded as %s: %s cannot carry it as it is",
        label,
        codec,
        a_file(output.format.name),
    )
    return TranscodedAudio(output, stream, target, f"{label} re-encoded as {codec}")


_TEXT_SUBTITLE_CODEC = {"mp4": "mov_text", "mov": "mov_text", "matroska": "ass", "webm": "webvtt"}


def _transcode_subtitles(
    stream: SubtitleStream, output: OutputContainer, label: str
) -> SideStream | None:
    codec = _TEXT_SUBTITLE_CODEC[output.format.name]
    if not stream.codec_context.codec.text_sub:
        log.warning(
            "%s dropped: %s cannot hold picture subtitles (write .mkv to keep them)",
            label,
            a_file(output.format.name),
        )
        return None
    decoder = stream.codec_context
    decoder.open(strict=False)  # text decoders make the ASS header that encoders need
    target = output.add_stream(codec)
    if not isinstance(target, SubtitleStream):
        raise TypeError(f"{codec} made a {target.type} stream, not a subtitle stream")
    target.time_base = stream.time_base
    if stream.time_base is not None:
        target.codec_context.time_base = stream.time_base
    target.codec_context.subtitle_header = decoder.subtitle_header
    copy_stream_tags(stream, target)
    log.warning("%s converted to %s for %s", label, codec, a_file(output.format.name))
    return TranscodedSubtitles(output, stream, target, f"{label} converted to {codec}")


def copy_container_tags(source: InputContainer, output: OutputContainer) -> None:
    output.metadata.update(fresh_tags(source.metadata))


def copy_chapters(
    source: InputContainer,
    output: OutputContainer,
    shift: Fraction,
    end: Fraction | None,
) -> None:
    """Chapters moved by `shift` seconds and clipped to [0, end - shift)."""
    chapters = []
    for chapter in source.chapters():
        base = chapter["time_base"]
        if base is None:
            continue
        start_s, end_s = chapter["start"] * base - shift, chapter["end"] * base - shift
        if end_s <= 0 or (end is not None and start_s >= end - shift):
            continue
        stop = end_s if end is None else min(end_s, end - shift)
        chapters.append(
            {
                **chapter,
                "start": max(0, round(start_s / base)),
                "end": round(stop / base),
            }
        )
    if chapters:
        output.set_chapters(chapters)
