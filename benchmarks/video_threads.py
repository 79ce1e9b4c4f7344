"""How `srgan video` should split the cores between its stages: decode, network, encode.

Runs the pipeline in this process (`upscale_video`, no frame reuse, so every frame costs
the network the same) on the first frames of a clip, once per thread split, in turn,
`--rounds` times (the order rotates each round), and prints wall and CPU seconds with the
load average. The splits:

- network threads (ONNX Runtime's or ncnn's intra-op pool): all cores or one;
- spinning: whether those threads busy-wait between frames (the runtimes' default) or
  sleep at once, leaving the cores to the decoder and the encoder;
- x264 threads: its own choice (1.5 x cores, plus look-ahead) or one.

FFmpeg's decoder keeps its own choice throughout (frame threads; it is a small share of
the work). On a shared machine compare CPU seconds first: wall seconds follow the load.

    python benchmarks/video_threads.py CLIP [--seconds 1] [--rounds 2] [--backend auto]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from srgan.inference.backends import open_model
from srgan.inference.devices import cpu_model_name
from srgan.inference.upscaler import UpscaleOptions, backend_name, make_runner
from srgan.inference.video import VideoOptions, plan_video, upscale_video
from srgan.inference.video_probe import TimeRange


@dataclasses.dataclass(frozen=True)
class Split:
    network: int  # threads; 0: all cores
    spinning: bool
    x264: int  # threads; 0: x264's own choice

    def label(self) -> str:
        cores = os.cpu_count() or 1
        network = self.network or cores
        wait = "spin" if self.spinning else "sleep"
        return f"network {network} ({wait}), x264 {self.x264 or 'auto'}"


SPLITS = (
    Split(0, True, 0),  # the runtimes' defaults
    Split(0, False, 0),  # what `srgan video` uses
    Split(1, False, 0),
    Split(0, False, 1),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of the cut")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="anime-video")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    model = open_model(args.model, backend=args.backend)
    options = UpscaleOptions()
    cut = TimeRange(None, args.seconds)
    walls: dict[Split, list[float]] = {split: [] for split in SPLITS}
    cpus: dict[Split, list[float]] = {split: [] for split in SPLITS}
    loads = [os.getloadavg()[0]]
    frames = 0
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "out.mp4"
        for round_ in range(args.rounds):
            shift = round_ % len(SPLITS)
            for split in SPLITS[shift:] + SPLITS[:shift]:
                job = plan_video(
                    args.clip, target, VideoOptions(time_range=cut, reuse_threshold=None)
                )
                settings = dict(job.encoder.options)
                if split.x264:
                    settings["threads"] = str(split.x264)
                encoder = dataclasses.replace(job.encoder, options=settings)
                job = dataclasses.replace(job, encoder=encoder)
                runner = make_runner(model, options, split.network or None, split.spinning)
                before, started = os.times(), time.perf_counter()
                report = upscale_video(job, model, options, None, runner)
                after = os.times()
                walls[split].append(time.perf_counter() - started)
                cpus[split].append(
                    after.user - before.user + after.system - before.system
                )  # fmt: skip
                frames = report.frames
            loads.append(os.getloadavg()[0])
    print(
        f"CPU: {cpu_model_name()}, {os.cpu_count()} cores; {args.model} on "
        f"{backend_name(model)}, {args.clip.name}: {frames} frames, median of {args.rounds}"
    )
    print("| split | wall s | CPU s | CPU vs default |")
    print("|---|---:|---:|---:|")
    base = statistics.median(cpus[SPLITS[0]])
    for split in SPLITS:
        cpu = statistics.median(cpus[split])
        wall = statistics.median(walls[split])
        print(f"| {split.label()} | {wall:.1f} | {cpu:.1f} | {cpu / base:.2f} |")
    print(
        f"load average (1 min) before and after each round: {' / '.join(f'{x:.1f}' for x in loads)}"
    )


if __name__ == "__main__":
    main()
