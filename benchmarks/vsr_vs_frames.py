"""Does the recurrence help? The video network against a frame-by-frame network of the
same trained capacity, trained on the same clips for the same steps, scored on held-out
clips (PSNR/SSIM on Y, border = scale, means over each clip's frames).

The frame-by-frame network is the same BidirectionalRecurrentVSR trained and run on
one-frame windows (T = 1): exactly the same parameters (the same count, every one of them
trained), but it never sees a neighbouring frame. Both runs see the same number of HR
frames per step: the frame model's batch is `batch x frames` single frames.

    python benchmarks/vsr_vs_frames.py --train data/clips/train --val data/clips/val \\
        --steps 300 --out runs/vsr_vs_frames [--config vsr.toml] [--set key=value ...]
    python benchmarks/vsr_vs_frames.py --val data/clips/val \\
        --vsr runs/vsr --frame runs/frames          # score given runs/checkpoints only

A run already in `--out` (from an earlier call) is resumed, not overwritten. Scores use
`srgan.evaluation` (what `srgan eval` and training validation use): the VSR model on
windows of `--max-frames` frames, the frame model frame by frame.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from srgan.evaluation import ClipSelection, ScoreTable, dataset_clips, evaluate_clips
from srgan.inference.vsr import TemporalWindows
from srgan.training.engine.checkpoints import holds_run, load_state, resolve
from srgan.training.engine.loop import Engine
from srgan.training.recipes.video import VideoRecipe
from srgan.training.recipes.video_config import load_video_config
from srgan.zoo.bicubic import load_bicubic
from srgan.zoo.registry import load_model


def train(args: argparse.Namespace, name: str, frames: int, batch: int) -> tuple[Path, float]:
    run_dir = args.out / name
    overrides = [
        f"data.train={args.train}",
        f"output_dir={run_dir}",
        f"steps={args.steps}",
        f"seed={args.seed}",
        "autotune.enabled=false",
        *args.set,
        f"data.frames={frames}",
        f"data.batch_size={batch}",
        "data.accumulation=1",
    ]
    config = load_video_config(args.config, overrides)
    started = time.perf_counter()
    latest = resolve(run_dir / "checkpoints")
    done = load_state(latest)["step"] if latest is not None else 0
    if done < config.steps:
        Engine(VideoRecipe(config)).run(resume=holds_run(run_dir))
    return run_dir, time.perf_counter() - started


def table(names: list[str], frames: list[int], tables: list[ScoreTable]) -> str:
    width = max([len(name) for name in names] + [4])
    head = f"{'clip':<{width}} {'frames':>6}  {'bicubic':>15}  {'frame-by-frame':>15}  {'VSR':>15}"
    lines = [head, "-" * len(head)]

    def cell(psnr: float, ssim: float) -> str:
        return f"{psnr:6.2f} / {ssim:.4f}"

    for row, (name, count) in enumerate(zip(names, frames, strict=True)):
        cells = "  ".join(cell(t.images[row].psnr, t.images[row].ssim) for t in tables)
        lines.append(f"{name:<{width}} {count:>6}  {cells}")
    lines.append("-" * len(head))
    means = "  ".join(cell(t.mean_psnr, t.mean_ssim) for t in tables)
    lines.append(f"{'mean':<{width}} {'':>6}  " + means)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, help="training clips (when training)")
    parser.add_argument("--val", type=Path, required=True, help="held-out clips")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/vsr_vs_frames"))
    parser.add_argument("--config", type=Path, help="a train-vsr configuration to start from")
    parser.add_argument("--set", action="append", default=[], help="key=value (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vsr", type=Path, help="a trained VSR run/checkpoint (no training)")
    parser.add_argument("--frame", type=Path, help="a trained frame-by-frame run/checkpoint")
    parser.add_argument("--max-frames", type=int, default=7, help="centre frames per clip")
    args = parser.parse_args()

    config = load_video_config(args.config, list(args.set))
    frames, batch = config.data.frames, config.data.batch_size * config.data.accumulation
    times: dict[str, float] = {}
    paths = {"vsr": args.vsr, "frame": args.frame}
    for name, window, size in (("vsr", frames, batch), ("frame", 1, batch * frames)):
        if paths[name] is None:
            if args.train is None:
                parser.error(f"give --train (to train) or --{name} (a trained run)")
            paths[name], times[name] = train(args, name, window, size)
    vsr_model, frame_model = load_model(str(paths["vsr"])), load_model(str(paths["frame"]))
    scale = int(vsr_model.scale)
    clips = dataset_clips(args.val)
    selection = ClipSelection(args.max_frames)
    windows = TemporalWindows(min(args.max_frames, 64))
    with torch.inference_mode():
        bicubic, vsr = evaluate_clips(
            [load_bicubic(scale), vsr_model], clips, scale, windows, selection
        ).tables
        (frame,) = evaluate_clips([frame_model], clips, scale, TemporalWindows(1), selection).tables
    print(f"VSR: {paths['vsr']} ({vsr_model.descriptor.parameters:,} parameters, "
          f"windows of {frames} frames)")  # fmt: skip
    print(f"frame-by-frame: {paths['frame']} ({frame_model.descriptor.parameters:,} "
          "parameters, one frame at a time)")  # fmt: skip
    for name, seconds in times.items():
        print(f"training {name}: {args.steps} steps in {seconds / 60:.1f} min")
    print(f"held-out clips: {args.val} ({len(clips)} clips, x{scale}, Y channel, border {scale})")
    print()
    counts = [getattr(clip_score, "frames", 0) for clip_score in vsr.images]
    print(table([s.name for s in vsr.images], counts, [bicubic, frame, vsr]))


if __name__ == "__main__":
    main()
