"""`srgan video` on small real videos made by PyAV: frames, sizes, timestamps, audio,
subtitles, rotation, colour, time ranges, previews and every bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from srgan.errors import BadInputError
from srgan.inference.video_probe import parse_time
from tests.videos import (
    AUDIO_RATE,
    first_frame,
    make_size_change,
    make_video,
    moving_picture,
    pictures,
    summarise,
)

AAC_FRAME = 1024 / AUDIO_RATE  # seconds of sound in one AAC packet
BT709 = (1, 1, 1, 1)  # limited range, BT.709 matrix, primaries and transfer
FAST = ("-m", "bicubic")  # exact and quick; the network models are tested once below


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "plain": make_video(folder / "plain.mp4"),
        "vfr": make_video(
            folder / "vfr.mp4", pts_ms=[0, 50, 100, 300, 350, 400, 700, 750, 800, 1000]
        ),
        "subtitled": make_video(folder / "subtitled.mkv", audio="libopus", subtitles=True),
        "turned": make_video(folder / "turned.mp4", rotate=90, colour=BT709),
        "pcm": make_video(folder / "pcm.mov", audio="pcm_s16le"),
    }


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_upscale_keeps_frames_timestamps_and_audio(cli, clips, tmp_path):
    out = tmp_path / "out.mp4"
    cli("video", clips["plain"], out)  # the default model: anime-video (compact SRVGG)
    source, result = summarise(clips["plain"]), summarise(out)
    assert (result.width, result.height) == (256, 192)
    assert result.frames == 12
    assert result.times == source.times
    assert [a.codec for a in result.audio] == ["aac"]
    assert result.audio[0].packets == source.audio[0].packets  # copied packet for packet
    assert result.audio[0].end == pytest.approx(source.audio[0].end)
    shrunk = first_frame(out).reshape(48, 4, 64, 4, 3).mean(axis=(1, 3))
    assert np.abs(shrunk - moving_picture(0, 64, 48)).mean() < 12  # the same picture
    assert _leftovers(tmp_path) == []


def test_variable_frame_rate_keeps_every_timestamp(cli, clips, tmp_path):
    source = summarise(clips["vfr"])
    for name in ("out.mp4", "out.mkv"):
        cli("video", clips["vfr"], tmp_path / name, *FAST)
        result = summarise(tmp_path / name)
        start = result.times[0]  # Matroska moves everything so that no time is negative
        assert [t - start for t in result.times] == pytest.approx(source.times, abs=1e-3)


def test_subtitles_are_copied_into_mkv_and_converted_for_mp4(cli, clips, tmp_path):
    source = summarise(clips["subtitled"])
    cli("video", clips["subtitled"], tmp_path / "out.mkv", *FAST)
    kept = summarise(tmp_path / "out.mkv")
    assert kept.subtitles[0].texts == source.subtitles[0].texts == [b"line 0", b"line 4", b"line 8"]
    assert [a.codec for a in kept.audio] == ["opus"]
    result = cli("video", clips["subtitled"], tmp_path / "out.mp4", *FAST)
    assert "converted to mov_text" in result.stderr
    converted = summarise(tmp_path / "out.mp4")
    assert converted.subtitles[0].codec == "mov_text"
    assert [t for t in converted.subtitles[0].texts if t[2:]] == [
        b"\x00\x06line 0",
        b"\x00\x06line 4",
        b"\x00\x06line 8",
    ]
    assert [a.codec for a in converted.audio] == ["opus"]  # MP4 holds Opus: copied


def test_pcm_audio_into_mp4_is_reencoded_as_aac_with_a_warning(cli, clips, tmp_path):
    result = cli("video", clips["pcm"], tmp_path / "out.mp4", *FAST)
    assert "re-encoded as aac" in result.stderr
    audio = summarise(tmp_path / "out.mp4").audio[0]
    assert audio.codec == "aac"
    assert audio.end - max(audio.first, 0) == pytest.approx(1.0, abs=AAC_FRAME)


def test_rotation_and_colour_tags_are_kept(cli, clips, tmp_path):
    for name in ("out.mp4", "out.mkv"):
        cli("video", clips["turned"], tmp_path / name, *FAST)
        result = summarise(tmp_path / name)
        assert result.rotation == 90
        assert result.colour == BT709
        assert (result.width, result.height) == (256, 192)  # stored as coded, shown turned


def test_ten_bit_hevc_stays_ten_bit_with_hdr_tags(cli, tmp_path):
    hdr = (1, 9, 9, 16)  # BT.2020 with the PQ transfer
    clip = make_video(
        tmp_path / "hdr.mkv",
        frames=4,
        audio=None,
        codec="libx265",
        pix_fmt="yuv420p10le",
        colour=hdr,
    )
    cli("video", clip, tmp_path / "out.mkv", *FAST)
    result = summarise(tmp_path / "out.mkv")
    assert (result.codec, result.pix_fmt, result.colour) == ("hevc", "yuv420p10le", hdr)
    assert result.frames == 4


def test_time_range_cuts_video_and_audio_and_starts_at_zero(cli, clips, tmp_path):
    out = tmp_path / "cut.mp4"
    cli("video", clips["plain"], out, *FAST, "--start", "00:00:00.25", "--end", "0.75")
    result = summarise(out)
    assert result.frames == 6  # frames 3 to 8 of 12 at 12 fps
    assert result.times == pytest.approx([n / 12 for n in range(6)], abs=1e-3)
    audio = result.audio[0]
    assert 0 <= audio.first < AAC_FRAME  # packets that start inside the range
    assert audio.end - audio.first == pytest.approx(0.5, abs=AAC_FRAME)


def test_fps_repeats_or_drops_frames_like_ffmpegs_fps_filter(cli, clips, tmp_path):
    out = tmp_path / "four.mkv"
    cli("video", clips["vfr"], out, *FAST, "--fps", "4")
    result = summarise(out)
    start = result.times[0]
    assert [t - start for t in result.times] == pytest.approx([0, 0.25, 0.5, 0.75], abs=1e-3)
    # Slot k shows the last frame whose time rounds to k or less (input at 0, 50, 100,
    # 300, 350, 400, 700, 750, 800, 1000 ms): frames 2, 4, 5 and 8; the picture tells
    # which, as its blue level is 20 x its index.
    blue = [float(picture[..., 2].mean()) for picture in pictures(out)]
    assert blue == pytest.approx([40, 80, 100, 160], abs=4)


def test_no_audio_leaves_the_sound_out(cli, clips, tmp_path):
    cli("video", clips["plain"], tmp_path / "mute.mp4", *FAST, "--no-audio")
    assert summarise(tmp_path / "mute.mp4").audio == []


def test_other_codecs_and_containers(cli, clips, tmp_path):
    result = cli("video", clips["plain"], tmp_path / "out.webm", *FAST, "--crf", "40")
    assert "re-encoded as libopus" in result.stderr  # WebM holds no AAC
    webm = summarise(tmp_path / "out.webm")
    assert (webm.codec, [a.codec for a in webm.audio]) == ("vp9", ["opus"])
    cli("video", clips["plain"], tmp_path / "out.mov", *FAST, "--codec", "prores")
    assert summarise(tmp_path / "out.mov").codec == "prores"
    cli(
        "video",
        clips["plain"],
        tmp_path / "out.mp4",
        *FAST,
        "--codec",
        "h265",
        "--preset",
        "ultrafast",
    )
    assert summarise(tmp_path / "out.mp4").codec == "hevc"


def test_preview_writes_evenly_spaced_frames_as_png(cli, clips, tmp_path):
    folder = tmp_path / "preview"
    cli("video", clips["turned"], folder, "--preview", "3")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["turned_001_0.167s.png", "turned_002_0.500s.png", "turned_003_0.833s.png"]
    with av.open(str(folder / names[0])) as picture:
        frame = next(picture.decode(video=0))
        assert (frame.width, frame.height) == (192, 256)  # turned upright


def test_preview_says_which_encoding_flags_it_does_not_use(cli, clips, tmp_path):
    result = cli("video", clips["turned"], tmp_path / "p", "--preview", "1", "--crf", "20")
    assert "--crf not used" in result.stderr


def _sound_only(path: Path) -> Path:
    with av.open(str(path), "w") as output:
        stream = output.add_stream("aac", rate=AUDIO_RATE)
        stream.layout = "mono"
        for start in range(0, AUDIO_RATE, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            frame.sample_rate, frame.pts = AUDIO_RATE, start
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return path


def _undecodable(path: Path) -> Path:
    """An MP4 whose video is MPEG-5 EVC, which FFmpeg can store but (without libxevd) not
    decode."""
    from fractions import Fraction

    with av.open(str(path), "w") as output:
        stream = output.add_mux_stream("evc", width=64, height=48, time_base=Fraction(1, 12))
        for index in range(3):
            packet = av.Packet(b"\x00\x00\x01" + bytes(40))
            packet.stream, packet.time_base = stream, Fraction(1, 12)
            packet.pts = packet.dts = index
            output.mux(packet)
    with av.open(str(path)) as container:
        if container.streams.video[0].codec_context is not None:
            pytest.skip("this FFmpeg build decodes EVC")
    return path


BAD_CASES = {
    "not a video": (lambda d, c: [d / "notes.mp4", d / "out.mp4"], "not a video file"),
    "no video stream": (lambda d, c: [_sound_only(d / "song.m4a"), d / "out.mp4"], "no video"),
    "undecodable codec": (
        lambda d, c: [_undecodable(d / "evc.mp4"), d / "out.mp4"],
        "cannot be decoded",
    ),
    "start past the end": (
        lambda d, c: [c["plain"], d / "out.mp4", "--start", "5"],
        "only 1.000 s long",
    ),
    "end before start": (
        lambda d, c: [c["plain"], d / "out.mp4", "--start", "0.5", "--end", "0.2"],
        "must come after",
    ),
    "bad time": (lambda d, c: [c["plain"], d / "out.mp4", "--end", "1:75"], "below 60"),
    "output is the input": (lambda d, c: [c["plain"], c["plain"]], "replace the input"),
    "codec the container cannot hold": (
        lambda d, c: [c["plain"], d / "out.webm", "--codec", "h264"],
        "cannot hold h264",
    ),
    "codec with no crf": (
        lambda d, c: [c["plain"], d / "out.mov", "--codec", "prores", "--crf", "20"],
        "--crf does not apply",
    ),
    "unknown codec": (lambda d, c: [c["plain"], d / "out.mp4", "--codec", "mpeg2"], "--codec"),
    "unknown preset": (lambda d, c: [c["plain"], d / "out.mp4", "--preset", "fastest"], "preset"),
    "unknown container": (lambda d, c: [c["plain"], d / "out.avi"], "name the output"),
    "odd size": (lambda d, c: [c["plain"], d / "out.mp4", "--outscale", "1.51"], "even"),
    "size changes mid-stream": (
        lambda d, c: [
            make_size_change(d / "two.ts", 20, 4),
            d / "out.mp4",
            "--preset",
            "ultrafast",
        ],
        "picture size changes",
    ),
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(cli, clips, tmp_path, case):
    (tmp_path / "notes.mp4").write_text("this is not a video\n")
    make_args, expected = BAD_CASES[case]
    args = make_args(tmp_path, clips)
    before = set(tmp_path.iterdir())
    result = cli("video", *args, *FAST, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srgan: error:"), result.stderr
    assert expected in lines[0]
    assert set(tmp_path.iterdir()) == before  # no output, no temporary file


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("1.5", 1.5), ("1:30", 90.0), ("01:02:03.25", 3723.25), (".5", 0.5)],
)
def test_parse_time(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "-1", "1:60", "1:2:3:4", "abc", "1:61:00"])
def test_parse_time_refuses(text):
    with pytest.raises(BadInputError):
        parse_time(text)


def test_help_imports_neither_torch_nor_pyav():
    code = (
        "import sys\n"
        "from srgan.cli.main import run\n"
        "for args in (['--help'], ['video', '--help']):\n"
        "    try:\n"
        "        run(args)\n"
        "    except SystemExit as exit_:\n"
        "        assert not exit_.code, exit_.code\n"
        "print('torch' in sys.modules, 'av' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False False"
