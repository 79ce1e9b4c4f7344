"""Training pairs per second of the degradations: HR batch -> LR batch.

Rows: the whole Real-ESRGAN pipeline (default x4plus settings), MATLAB bicubic, and the
first-stage steps alone on the HR batch (where most of the work is), plus the unsharp
masking of the targets, on crops of scikit-image's photos; on the CPU, and on CUDA when
present. Each row runs `--repeats` batches with different seeds after one warm-up batch.
The load average is printed: on a shared machine compare rows of one run, and try
`--threads 1` (torch's worker threads slow down badly when other processes hold the cores).

    python benchmarks/degradation_speed.py [--batch 16] [--size 256] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch

from srgan.inference.machine import cpu_model_name
from srgan.training.data.degradation_config import DegradationConfig
from srgan.training.data.degradations import (
    DegradationRng,
    blur_step,
    jpeg_step,
    make_degradation,
    noise_step,
    usm_sharpen,
)

Step = Callable[[torch.Tensor, DegradationRng], torch.Tensor]


def rate(step: Step, hr: torch.Tensor, repeats: int) -> float:
    """Images per second of `step` on the batch `hr`."""

    def run(seed: int) -> None:
        step(hr, DegradationRng.from_seed(seed, hr.device))
        if hr.device.type == "cuda":
            torch.cuda.synchronize(hr.device)

    run(0)
    started = time.perf_counter()
    for seed in range(1, repeats + 1):
        run(seed)
    return repeats * hr.shape[0] / (time.perf_counter() - started)


def photo_batch(batch: int, size: int) -> torch.Tensor:
    """Random crops of scikit-image's photos (JPEG and noise cost depend on content);
    uniform noise when scikit-image is not installed."""
    generator = torch.Generator().manual_seed(0)
    try:
        from skimage import data
    except ImportError:
        return torch.rand(batch, 3, size, size, generator=generator)
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    crops = []
    for index in range(batch):
        photo = torch.from_numpy(photos[index % len(photos)]).permute(2, 0, 1).float() / 255
        photo = torch.nn.functional.interpolate(photo[None], scale_factor=max(
            1.0, size / min(photo.shape[-2:])), mode="bilinear")[0]  # fmt: skip
        top = int(torch.randint(0, photo.shape[-2] - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, photo.shape[-1] - size + 1, (1,), generator=generator))
        crops.append(photo[:, top : top + size, left : left + size])
    return torch.stack(crops).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="HR patch side")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = DegradationConfig()
    realesrgan = make_degradation("realesrgan", config, args.scale)
    bicubic = make_degradation("bicubic", None, args.scale)
    rows: list[tuple[str, Step]] = [
        ("realesrgan (whole pipeline)", realesrgan),
        ("bicubic", bicubic),
        ("first-stage blur", lambda x, rng: blur_step(x, config.first, rng)),
        ("first-stage noise", lambda x, rng: noise_step(x, config.first, rng)),
        ("first-stage JPEG (Pillow)", lambda x, rng: jpeg_step(x, config.first, rng)),
        ("USM of the targets", lambda x, rng: usm_sharpen(x, config.usm)),
    ]
    print(f"CPU: {cpu_model_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"HR {args.size}x{args.size}, batch {args.batch}, x{args.scale}, "
          f"{args.repeats} batches per row")  # fmt: skip
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| device | step | images/s | ms per batch |")
    print("|---|---|---:|---:|")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        hr = photo_batch(args.batch, args.size).to(device)
        for name, step in rows:
            per_second = rate(step, hr, args.repeats)
            print(f"| {device} | {name} | {per_second:.1f} | "
                  f"{1000 * args.batch / per_second:.0f} |", flush=True)  # fmt: skip
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
