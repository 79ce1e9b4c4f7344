"""Does the recurrence help, on real footage and on synthetic pans? The recurrent video
network, unaligned and aligned, against a frame-by-frame network of the same size, all
trained on the same clips for the same number of steps and scored on held-out clips
(PSNR/SSIM on Y, border = scale, means over each clip's frames), per clip.

Models (`--models`, any of):

- `frame`: BidirectionalRecurrentVSR trained and run on one-frame windows (T = 1), no
  alignment: the same trunk parameters, but it never sees a neighbouring frame. Its batch
  is `batch x frames` single frames, so every model sees as many HR frames per step.
- `none`: the recurrent network without alignment (the first version).
- `learned`: aligned by a flow pyramid trained with it (`model.alignment = "learned"`).
- `dis`: aligned by OpenCV DIS flow on the LR frames (`model.alignment = "dis"`).
- `learned-warp-error`, `dis-warp-error`: the same, each recurrent cell also fed the
  flow's per-pixel error (`model.warp_error = true`).

Scores use `srgan.evaluation` (what `srgan eval` and training validation use): recurrent
models on windows of `--max-frames` frames as `srgan video` runs them (split at scene
cuts, held frames run once), the frame model frame by frame. Datasets: `--real TRAIN VAL`
(clips cut from videos by `srgan dataset clips`, held out by scene) and/or
`--synthetic TRAIN VAL` (pans over photos).

    python benchmarks/vsr_vs_frames.py --real data/real/train data/real/val \\
        --synthetic data/clips/train data/clips/val --steps 1000 --config vsr.toml \\
        --out runs/vsr_vs_frames --jobs 4

Each model is trained in its own process (`--jobs` at a time, side by side, so that they
share the machine alike); a run already in `--out` is resumed or, when finished, reused.

`--speed VIDEO` then times `srgan video VIDEO OUT -m RUN` for each trained model (the
frame model with `--window 1`), in alternating order `--repeats` times, and prints frames
per second (decoding and encoding included) with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from srgan.evaluation import ClipSelection, ScoreTable, dataset_clips, evaluate_clips
from srgan.evaluation.scores import ClipScore
from srgan.inference.vsr import TemporalWindows
from srgan.training.engine.checkpoints import holds_run, load_state, resolve
from srgan.training.engine.loop import Engine
from srgan.training.recipes.video import VideoRecipe
from srgan.training.recipes.video_config import load_video_config
from srgan.zoo.bicubic import load_bicubic
from srgan.zoo.registry import load_model

WARP_ERROR = "-warp-error"
MODELS = ("frame", "none", "learned", "dis", "learned" + WARP_ERROR, "dis" + WARP_ERROR)
LABELS = {"frame": "frame-by-frame", "none": "VSR unaligned", "learned": "VSR learned flow"}
LABELS["dis"] = "VSR DIS flow"
LABELS.update({name + WARP_ERROR: LABELS[name] + " + error" for name in ("learned", "dis")})


def overrides(args: argparse.Namespace, dataset: str, model: str) -> list[str]:
    config = load_video_config(args.config, list(args.set))
    frames, batch = config.data.frames, config.data.effective_batch
    train, val = getattr(args, dataset)
    window, size = (1, batch * frames) if model == "frame" else (frames, batch)
    return [
        f"data.train={train}",
        f"data.val={val}",
        f"output_dir={args.out / dataset / model}",
        f"steps={args.steps}",
        f"seed={args.seed}",
        "autotune.enabled=false",
        *args.set,
        f"data.frames={window}",
        f"data.batch_size={size}",
        "data.accumulation=1",
        f"model.alignment={'none' if model == 'frame' else model.removesuffix(WARP_ERROR)}",
        *(["model.warp_error=true"] if model.endswith(WARP_ERROR) else []),
    ]


def train_one(args: argparse.Namespace, dataset: str, model: str) -> None:
    """Train (or resume) one model in this process; records its wall time."""
    config = load_video_config(args.config, overrides(args, dataset, model))
    run_dir = config.output_dir
    if finished(run_dir, config.steps):
        return
    started = time.perf_counter()
    Engine(VideoRecipe(config)).run(resume=holds_run(run_dir))
    times = run_dir / "benchmark_seconds.json"
    spent = time.perf_counter() - started
    if times.exists():
        spent += json.loads(times.read_text())["seconds"]
    load = os.getloadavg()
    times.write_text(json.dumps({"seconds": spent, "loadavg_at_end": load}))


def finished(run_dir: Path, steps: int) -> bool:
    latest = resolve(run_dir / "checkpoints")
    return latest is not None and load_state(latest)["step"] >= steps


def train_all(args: argparse.Namespace, datasets: list[str]) -> None:
    """Each (dataset, model) in its own process, `--jobs` at a time."""
    base = [sys.executable, __file__, "--steps", str(args.steps), "--out", str(args.out)]
    base += ["--seed", str(args.seed)] + (["--config", str(args.config)] if args.config else [])
    for item in args.set:
        base += ["--set", item]
    for dataset in datasets:
        base += [f"--{dataset}", *map(str, getattr(args, dataset))]

    def run(job: tuple[str, str]) -> int:
        dataset, model = job
        log = args.out / f"{dataset}_{model}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            command = [*base, "--only", f"{dataset}:{model}"]
            return subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)

    jobs = [(dataset, model) for dataset in datasets for model in args.models]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        codes = list(pool.map(run, jobs))
    failed = [f"{d}:{m}" for (d, m), code in zip(jobs, codes, strict=True) if code]
    if failed:
        raise SystemExit(f"training failed: {', '.join(failed)} (see {args.out}/*.log)")


def table(names: list[str], bicubic: ScoreTable, scores: dict[str, ScoreTable]) -> str:
    first = bicubic.images
    width = max([len(score.name) for score in first] + [4])
    columns = ["bicubic", *[LABELS[name] for name in names]]
    cell_width = max(16, *(len(c) for c in columns))
    head = f"{'clip':<{width}} {'frames':>6}  " + "  ".join(f"{c:>{cell_width}}" for c in columns)
    if "frame" in names:
        head += "  " + "  ".join(f"{'d ' + n:>9}" for n in names if n != "frame")
    lines = [head, "-" * len(head)]

    def cell(psnr: float, ssim: float) -> str:
        return f"{f'{psnr:6.2f} / {ssim:.4f}':>{cell_width}}"

    for i, base in enumerate(first):
        frames = base.frames if isinstance(base, ClipScore) else 0
        row = [cell(base.psnr, base.ssim)]
        row += [cell(scores[n].images[i].psnr, scores[n].images[i].ssim) for n in names]
        line = f"{base.name:<{width}} {frames:>6}  " + "  ".join(row)
        if "frame" in names:
            frame = scores["frame"].images[i].psnr
            deltas = [scores[n].images[i].psnr - frame for n in names if n != "frame"]
            line += "  " + "  ".join(f"{d:>+9.2f}" for d in deltas)
        lines.append(line)
    lines.append("-" * len(head))
    means = [cell(bicubic.mean_psnr, bicubic.mean_ssim)]
    means += [cell(scores[n].mean_psnr, scores[n].mean_ssim) for n in names]
    line = f"{'mean':<{width}} {'':>6}  " + "  ".join(means)
    if "frame" in names:
        frame_mean = scores["frame"].mean_psnr
        deltas = [scores[n].mean_psnr - frame_mean for n in names if n != "frame"]
        line += "  " + "  ".join(f"{d:>+9.2f}" for d in deltas)
        lines.append(line)
        frame_clips = scores["frame"].images
        worst = [
            min(s.psnr - f.psnr for s, f in zip(scores[n].images, frame_clips, strict=True))
            for n in names
            if n != "frame"
        ]
        pad = width + 8 + (cell_width + 2) * len(columns)
        lines.append(
            f"{'worst clip vs frame-by-frame':<{pad}}" + "  ".join(f"{w:>+9.2f}" for w in worst)
        )
    else:
        lines.append(line)
    return "\n".join(lines)


def score(args: argparse.Namespace, dataset: str) -> None:
    _, val = getattr(args, dataset)
    clips = dataset_clips(val)
    selection = ClipSelection(args.max_frames)
    scores: dict[str, ScoreTable] = {}
    bicubic: ScoreTable | None = None
    print(f"== {dataset}: held-out clips {val} ({len(clips)} clips)")
    for name in args.models:
        run_dir = args.out / dataset / name
        model = load_model(str(run_dir))
        scale = int(model.scale)
        seconds_file = run_dir / "benchmark_seconds.json"
        spent = ""
        if seconds_file.exists():
            info = json.loads(seconds_file.read_text())
            load = ", ".join(f"{x:.1f}" for x in info["loadavg_at_end"])
            spent = f", trained in {info['seconds'] / 60:.1f} min (load average at end {load})"
        print(f"{LABELS[name]}: {run_dir} ({model.descriptor.parameters:,} parameters{spent})")
        windows = TemporalWindows(1 if name == "frame" else min(args.max_frames, 64))
        with torch.inference_mode():
            started = time.perf_counter()
            if bicubic is None:
                plain = [load_bicubic(scale)]
                (bicubic,) = evaluate_clips(plain, clips, scale, windows, selection).tables
            (scores[name],) = evaluate_clips([model], clips, scale, windows, selection).tables
            print(f"  scored in {time.perf_counter() - started:.1f} s")
    assert bicubic is not None
    print()
    print(table(list(args.models), bicubic, scores))
    print()


def speed(args: argparse.Namespace, dataset: str) -> None:
    import av

    with av.open(str(args.speed)) as container:
        stream = container.streams.video[0]
        count = sum(1 for packet in container.demux(stream) if packet.size)
        size = f"{stream.width}x{stream.height}"
    srgan = Path(sys.executable).with_name("srgan")
    seconds: dict[str, list[float]] = {name: [] for name in args.models}
    for repeat in range(args.repeats):
        order = args.models if repeat % 2 == 0 else args.models[::-1]
        for name in order:
            out = args.out / f"speed_{name}.mp4"
            command = [str(srgan), "-q", "video", str(args.speed), str(out), "--device", "cpu"]
            command += ["-m", str(args.out / dataset / name)]
            out.unlink(missing_ok=True)
            command += ["--window", "1"] if name == "frame" else []
            started = time.perf_counter()
            subprocess.run(command, check=True)
            seconds[name].append(time.perf_counter() - started)
    print(f"== srgan video speed: {args.speed} ({count} frames of {size}, x3), CPU")
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name in args.models:
        best = min(seconds[name])
        runs = ", ".join(f"{s:.1f}" for s in seconds[name])
        print(f"{LABELS[name]:<18} {count / best:6.2f} fps (best of {args.repeats}: {runs} s)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--real", nargs=2, type=Path, metavar=("TRAIN", "VAL"))
    parser.add_argument("--synthetic", nargs=2, type=Path, metavar=("TRAIN", "VAL"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("runs/vsr_vs_frames"))
    parser.add_argument("--config", type=Path, help="a train-vsr configuration to start from")
    parser.add_argument("--set", action="append", default=[], help="key=value (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=4, help="trainings run side by side")
    parser.add_argument("--max-frames", type=int, default=7, help="centre frames per clip")
    parser.add_argument("--score-only", action="store_true", help="no training")
    parser.add_argument("--speed", type=Path, help="an LR video to time `srgan video` on")
    parser.add_argument("--repeats", type=int, default=2, help="speed runs per model")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # DATASET:MODEL, one training
    args = parser.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    unknown = set(args.models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}: use {', '.join(MODELS)}")
    datasets = [name for name in ("real", "synthetic") if getattr(args, name)]
    if not datasets:
        parser.error("give --real TRAIN VAL and/or --synthetic TRAIN VAL")
    if args.only:
        dataset, model = args.only.split(":")
        train_one(args, dataset, model)
        return
    if not args.score_only:
        train_all(args, datasets)
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown CPU",
        )
        if Path("/proc/cpuinfo").exists()
        else "unknown CPU"
    )
    print(f"CPU: {cpu}; {args.steps} steps per model; load average now {os.getloadavg()}")
    for dataset in datasets:
        score(args, dataset)
    if args.speed:
        speed(args, datasets[0])


if __name__ == "__main__":
    main()
