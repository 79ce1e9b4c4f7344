"""Training steps per second of SRResNet: the engine's own step (`Stepper.step`, the
SRGAN recipe's losses) on a fixed batch (batch 16, HR 96x96, LR 24x24 by default), so
data loading is not counted.

Rows: pretrain (MSE) and GAN steps (VGG54 content loss + adversarial, discriminator
update included), with and without channels_last, on the CPU and on CUDA when present
(plus bf16 autocast there). The VGG19 has random weights of the right shapes: speed does
not depend on the values, and ImageNet weights cannot be fetched here.

    python benchmarks/training_speed.py [--steps 10] [--batch 16] [--hr-size 96]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from srgan.archs.vgg import VGG19Features
from srgan.imaging import Image, ImageMeta, write_image
from srgan.inference.devices import cpu_model_name
from srgan.training.engine.distributed import Distributed
from srgan.training.engine.stepper import Stepper
from srgan.training.recipes.srgan import SRGANRecipe
from srgan.training.recipes.srgan_config import load_image_config


def make_folders(root: Path) -> tuple[Path, Path]:
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        pixels = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
        write_image(photos / f"{index}.png", Image(pixels, ImageMeta()))
    vgg = root / "vgg19-random.pth"
    torch.save(VGG19Features("relu5_4").state_dict(), vgg)
    return photos, vgg


def steps_per_second(
    recipe: SRGANRecipe, stage: str, batch: int, hr_size: int, steps: int, warmup: int = 2
) -> float:
    config = recipe.config
    device = Distributed().device(config.device)
    torch.manual_seed(0)
    stepper = Stepper(recipe, hr_size, device, Distributed())
    phase = next(phase for phase in recipe.phases() if phase.name == stage)
    stepper.set_rate(phase.lr)
    generator = torch.Generator().manual_seed(0)
    scale = config.data.scale
    lr = torch.rand(batch, 3, hr_size // scale, hr_size // scale, generator=generator)
    hr = torch.rand(batch, 3, hr_size, hr_size, generator=generator)
    for _ in range(warmup):
        stepper.step([(lr, hr)], phase)
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        stepper.step([(lr, hr)], phase)
    _sync(device)
    return steps / (time.perf_counter() - started)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hr-size", type=int, default=96)
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"SRResNet x4, batch {args.batch}, HR {args.hr_size}x{args.hr_size}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"CPU: {cpu_model_name()}, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("| device | amp | channels_last | stage | steps/s | images/s |")
    print("|---|---|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as temp:
        photos, vgg = make_folders(Path(temp))
        for device in devices:
            for amp in ["none"] + (["bf16"] if device == "cuda" else []):
                for channels_last in (False, True):
                    config = load_image_config(None, [
                        f"data.train={photos}", f"output_dir={temp}/run",
                        f"data.crop={args.hr_size}", f"data.batch_size={args.batch}",
                        "data.workers=0", f"loss.perceptual.vgg_weights={vgg}", f"device={device}",
                        f"channels_last={str(channels_last).lower()}", f'amp="{amp}"',
                        "pretrain.steps=1", "gan.steps=1",
                    ])  # fmt: skip
                    recipe = SRGANRecipe(config)
                    for stage in ("pretrain", "gan"):
                        rate = steps_per_second(recipe, stage, args.batch, args.hr_size, args.steps)
                        print(f"| {device} | {amp} | {channels_last} | {stage} | "
                              f"{rate:.2f} | {rate * args.batch:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
