"""Quality, speed and fidelity of every Real-CUGAN, waifu2x and RealSR model.

For each of the 37 variants (`srgan models`; pick with --models):

* PSNR / SSIM on the Y channel, border = scale, at the model's native scale on Set5 and
  Set14 (``../shared/datasets``): srgan's evaluation protocol (`srgan eval`: modcrop,
  MATLAB-bicubic LR, untiled PyTorch). x1 models (waifu2x-cunet x1: denoise only) are
  scored on the HR image itself: how much they change a clean image.
* the largest difference, as a float tensor in [0, 1], between srgan's PyTorch module and
  the ncnn runtime running the original file with the reference program's conventions, on
  a 64x64 crop of scikit-image's astronaut.
* speed: seconds per 256x256 input (one warm-up, then the median of --repeats) through
  `srgan upscale`'s path (`upscale_pixels`, whole image) on each backend: torch (PyTorch,
  its default threads), onnxruntime and ncnn (all cores). Timed on one variant per family
  and scale (the denoise levels share the graph: same speed).

The default order takes each family and scale's default variant (what ``-m anime-cugan -s 3``
picks) first, then the other denoise levels, so that a run cut short still covers every
named model at every native scale.

Every row records the 1-minute load average when it was measured: the machine may be
shared. Prints a Markdown table.

    python benchmarks/sr_vulkan_models.py [--models anime-cugan-x2-conservative ...]
        [--datasets Set5 Set14] [--backends torch onnxruntime ncnn] [--repeats 3]
        [--no-quality] [--no-speed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from srgan.inference.machine import cpu_model_name  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
if not DATASETS.is_dir():
    DATASETS = Path("/work/shared/datasets")


def quality(name: str, datasets: list[str]) -> list[str]:
    from srgan.evaluation import dataset_images, evaluate_images
    from srgan.zoo.registry import load_model

    model = load_model(name)
    cells = []
    for dataset in datasets:
        folder = DATASETS / dataset
        if not folder.is_dir():
            cells.append("(no dataset)")
            continue
        (table,) = evaluate_images([model], dataset_images(folder), int(model.scale))
        cells.append(f"{table.mean_psnr:.2f} / {table.mean_ssim:.4f}")
    return cells


def ncnn_difference(name: str) -> float:
    """srgan's module against the ncnn backend (the original file, same conventions)."""
    import torch
    from skimage import data

    from srgan.inference.backends import open_model
    from srgan.inference.backends.ncnn import NcnnRunner
    from srgan.zoo.ncnn_model import NcnnModel
    from srgan.zoo.registry import load_model

    x = data.astronaut()[200:264, 180:244].transpose(2, 0, 1).astype(np.float32)[None] / 255
    with torch.inference_mode():
        mine = load_model(name).module(torch.from_numpy(x)).numpy()
    model = open_model(name, None, "cpu", "fp32", "ncnn")
    assert isinstance(model, NcnnModel)
    theirs = NcnnRunner(model, threads=1)(x)
    return float(np.abs(mine - theirs).max())


def speed(name: str, backend: str, repeats: int, size: int = 256) -> float:
    from skimage import data

    from srgan.imaging.io import Image, ImageMeta
    from srgan.inference.backends import open_model
    from srgan.inference.upscaler import UpscaleOptions, make_runner, upscale_pixels

    pixels = np.ascontiguousarray(data.astronaut()[128 : 128 + size, 128 : 128 + size])
    image = Image(pixels, ImageMeta(bit_depth=8))
    model = open_model(name, None, "cpu", "fp32", backend)
    options = UpscaleOptions(tile=0)
    runner = make_runner(model, options, threads=os.cpu_count())
    upscale_pixels(model, image, options, runner=runner)  # warm-up (and ONNX export)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        upscale_pixels(model, image, options, runner=runner)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def defaults_first() -> list[str]:
    """Every variant; each family and scale's default (``family-xN``) before the others."""
    from srgan.zoo.ncnn_families import FAMILIES, find_variant, variant_names

    defaults = []
    for family in FAMILIES.values():
        for scale in family.scales:
            variant = find_variant(f"{family.name}-x{scale}")
            assert variant is not None
            defaults.append(variant.name)
    return defaults + [name for name in variant_names() if name not in defaults]


def main() -> None:
    from srgan.zoo.ncnn_families import find_variant

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=defaults_first())
    parser.add_argument("--datasets", nargs="*", default=["Set5", "Set14"])
    parser.add_argument("--backends", nargs="*", default=["torch", "onnxruntime", "ncnn"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()

    print(f"CPU: {cpu_model_name()}, {os.cpu_count()} cores; load average at start {load()}")
    print()
    speed_heads = [f"{b} s/256²" for b in args.backends] if not args.no_speed else []
    quality_heads = [f"{d} PSNR / SSIM" for d in args.datasets] if not args.no_quality else []
    heads = ["model", "scale", *quality_heads, "max Δ vs ncnn", *speed_heads, "load"]
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    timed: set[tuple[str, int]] = set()
    for name in args.models:
        variant = find_variant(name)
        assert variant is not None, name
        cells = [name, f"x{variant.scale}"]
        if not args.no_quality:
            cells += quality(name, args.datasets)
        cells.append(f"{ncnn_difference(name):.1e}")
        key = (variant.family.name, variant.scale)
        if not args.no_speed:
            if key in timed:
                cells += ["="] * len(args.backends)
            else:
                timed.add(key)
                cells += [f"{speed(name, b, args.repeats):.2f}" for b in args.backends]
        cells.append(load())
        print("| " + " | ".join(cells) + " |", flush=True)
    print()
    print("'=': timed on the first row of the same family and scale (denoise levels share")
    print("the graph).")
    print(f"load average at the end {load()}")


if __name__ == "__main__":
    main()
