"""Does the recurrence help? The video network against a frame-by-frame network of the
same trained capacity, trained on the same clips for the same steps, scored on held-out
clips (PSNR/SSIM on Y, border = scale, means over each clip's frames).

The frame-by-frame network is the same BidirectionalRecurrentVSR trained and run on
one-frame windows (T = 1): exactly the same parameters (the same count, every one of them
trained), but it never sees a neighbouring frame. Both runs see the same number of HR
frames per step: the frame model's batch is `batch x frames` single frames.

    python benchmarks/vsr_vs_frames.py --train data/clips/train --val data/clips/val \
        --steps 300 --out runs/vsr_vs_frames [--config vsr.toml] [--set key=value ...]
    python benchmarks/vsr_vs_frames.py --val data/clips/val \
        --vsr runs/vsr --frame runs/frames          # score given runs/checkpoints only

A run already in `--out` (from an earlier call) is resumed, not overwritten.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from srgan.archs.vsr import BidirectionalRecurrentVSR, vsr_hyperparameters
from srgan.training import checkpoints
from srgan.training.vsr_checkpoints import holds_run
from srgan.training.vsr_clips import discover_clips
from srgan.training.vsr_config import load_vsr_config
from srgan.training.vsr_trainer import VSRTrainer
from srgan.training.vsr_validation import ClipScores, evaluate_clips


def weights_file(path: Path) -> Path:
    """generator.safetensors of a run folder (best, else latest), a checkpoint or a file."""
    if path.is_file():
        return path
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    for name in ("best", "latest"):
        checkpoint = checkpoints.resolve(folder, name)
        if checkpoint is not None:
            return checkpoint / "generator.safetensors"
    return path / "generator.safetensors"


def load_model(path: Path) -> BidirectionalRecurrentVSR:
    state = load_file(str(weights_file(path)))
    kwargs = vsr_hyperparameters(state)
    if kwargs is None:
        raise SystemExit(f"{path}: not a BidirectionalRecurrentVSR checkpoint")
    model = BidirectionalRecurrentVSR(**kwargs)
    model.load_state_dict(state)
    return model.eval()


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
    config = load_vsr_config(args.config, overrides)
    started = time.perf_counter()
    latest = checkpoints.resolve(run_dir / "checkpoints")
    done = latest is not None and torch.load(latest / "state.pt", weights_only=True)["step"]
    if not done or done < config.steps:
        VSRTrainer(config).run(resume=holds_run(run_dir))
    return run_dir, time.perf_counter() - started


def table(bicubic: ClipScores, frame: ClipScores, vsr: ClipScores) -> str:
    width = max([len(score.name) for score in bicubic.clips] + [4])
    head = f"{'clip':<{width}} {'frames':>6}  {'bicubic':>15}  {'frame-by-frame':>15}  {'VSR':>15}"
    lines = [head, "-" * len(head)]

    def cell(psnr: float, ssim: float) -> str:
        return f"{psnr:6.2f} / {ssim:.4f}"

    for b, f, v in zip(bicubic.clips, frame.clips, vsr.clips, strict=True):
        lines.append(
            f"{b.name:<{width}} {b.frames:>6}  {cell(b.bicubic_psnr, b.bicubic_ssim)}  "
            f"{cell(f.psnr, f.ssim)}  {cell(v.psnr, v.ssim)}"
        )
    lines.append("-" * len(head))
    means = [
        cell(bicubic.mean("bicubic_psnr"), bicubic.mean("bicubic_ssim")),
        cell(frame.mean("psnr"), frame.mean("ssim")),
        cell(vsr.mean("psnr"), vsr.mean("ssim")),
    ]
    lines.append(f"{'mean':<{width}} {'':>6}  " + "  ".join(means))
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

    config = load_vsr_config(args.config, list(args.set))
    frames, batch = config.data.frames, config.data.batch_size * config.data.accumulation
    times: dict[str, float] = {}
    paths = {"vsr": args.vsr, "frame": args.frame}
    for name, window, size in (("vsr", frames, batch), ("frame", 1, batch * frames)):
        if paths[name] is None:
            if args.train is None:
                parser.error(f"give --train (to train) or --{name} (a trained run)")
            paths[name], times[name] = train(args, name, window, size)
    vsr_model, frame_model = load_model(paths["vsr"]), load_model(paths["frame"])
    count = sum(p.numel() for p in vsr_model.parameters())
    frame_count = sum(p.numel() for p in frame_model.parameters())
    clips = discover_clips(args.val)
    scale = vsr_model.scale
    with torch.inference_mode():
        vsr = evaluate_clips(vsr_model, clips, scale, args.max_frames)
        frame = evaluate_clips(frame_model, clips, scale, args.max_frames, frames_per_pass=1)
    print(f"VSR: {paths['vsr']} ({count:,} parameters, windows of {frames} frames)")
    print(f"frame-by-frame: {paths['frame']} ({frame_count:,} parameters, one frame at a time)")
    for name, seconds in times.items():
        print(f"training {name}: {args.steps} steps in {seconds / 60:.1f} min")
    print(f"held-out clips: {args.val} ({len(clips)} clips, x{scale}, Y channel, border {scale})")
    print()
    print(table(vsr, frame, vsr))  # bicubic scores come with either


if __name__ == "__main__":
    main()
