"""Speed of `srgan video`: frames, wall seconds and frames per second on a made-up clip.

The clip is WIDTHxHEIGHT (default 640x360) at 24 fps: a window panning across a strip of
scikit-image sample photos (astronaut, coffee, chelsea, rocket), H.264 (libx264, CRF 18)
with a 440 Hz AAC tone, made with PyAV. Each model then runs once as the user would run it,
timed from outside, interpreter start-up and model loading included:

    srgan -q video clip.mp4 out.mp4 --model NAME

A warm-up run on a 0.25 s cut first fills the model cache (`$SRGAN_CACHE`, as the user has
it; the ONNX export of a named model happens there), so that it is not timed.

    python benchmarks/video_speed.py [--seconds 2] [--size 640x360] [--models anime-video]
        [--clip clip.mp4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 24
AUDIO_RATE = 48000


def photo_strip(height: int) -> np.ndarray:
    """scikit-image sample photos side by side, all resized to `height` rows."""
    from PIL import Image as PILImage
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    resized = []
    for photo in photos:
        width = round(photo.shape[1] * height / photo.shape[0])
        picture = PILImage.fromarray(photo).resize((width, height), PILImage.Resampling.LANCZOS)
        resized.append(np.asarray(picture))
    return np.concatenate(resized, axis=1)


def make_clip(path: Path, seconds: float, width: int, height: int) -> int:
    """Write the panning clip; returns its number of frames."""
    strip = photo_strip(height)
    frames = round(seconds * FPS)
    travel = strip.shape[1] - width
    with av.open(str(path), "w") as output:
        video = output.add_stream("libx264", rate=FPS, options={"crf": "18"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = output.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"
        for index in range(frames):
            left = round(travel * index / max(1, frames - 1))
            window = np.ascontiguousarray(strip[:, left : left + width])
            frame = av.VideoFrame.from_ndarray(window, format="rgb24")
            frame.pts = index
            output.mux(video.encode(frame))
        output.mux(video.encode())
        samples = round(seconds * AUDIO_RATE)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / AUDIO_RATE)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = np.ascontiguousarray(tone[None, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = AUDIO_RATE, start
            frame.time_base = Fraction(1, AUDIO_RATE)
            output.mux(audio.encode(frame))
        output.mux(audio.encode())
    return frames


def count_frames(path: Path) -> tuple[int, str]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, f"{stream.codec_context.width}x{stream.codec_context.height}"


def run_video(clip: Path, out: Path, model: str, *extra: str) -> float:
    command = ["srgan", "-q", "video", str(clip), str(out), "--model", model, *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="clip length")
    parser.add_argument("--size", default="640x360", help="clip WIDTHxHEIGHT")
    parser.add_argument("--models", nargs="+", default=["anime-video"])
    parser.add_argument("--clip", type=Path, help="also keep the clip here (to time it by hand)")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        clip = args.clip or Path(folder) / "clip.mp4"
        frames = make_clip(clip, args.seconds, width, height)
        print(
            f"clip: {width}x{height}, {frames} frames at {FPS} fps, AAC tone, {os.cpu_count()} CPUs"
        )
        print(f"{'model':<14} {'output':>10} {'frames':>7} {'seconds':>8} {'fps':>7}")
        for model in args.models:
            run_video(clip, Path(folder) / "warm.mp4", model, "--end", "0.25")
            out = Path(folder) / f"{model}.mp4"
            seconds = run_video(clip, out, model)
            written, size = count_frames(out)
            print(f"{model:<14} {size:>10} {written:>7} {seconds:>8.1f} {written / seconds:>7.3f}")


if __name__ == "__main__":
    main()
