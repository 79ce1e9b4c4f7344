"""What int8 costs in quality and gains in speed, for every named model, on Set14 x4.

For each HR image: crop to a multiple of 4, make the LR input with MATLAB bicubic
(`srgan.imaging.transform.resize_image`, as `srgan eval` does), upscale it untiled with
the fp32 model on ONNX Runtime and with its int8 version (`--precision int8`: quantized
once on the sample photos, cached; ONNX Runtime or ncnn, as `auto` measures), and
score on the Y channel with 4 pixels cropped:
int8 against fp32, fp32 against HR, int8 against HR (mean PSNR over the images). The
speed columns are the summed compute times (same threads, same inputs) of int8 over
fp32 ONNX Runtime, and over the fp32 backend that `--backend auto` picks here.

    python benchmarks/int8_quality.py [--dataset ../shared/datasets/Set14] [--images N]
        [--models natural anime anime-video]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from srgan.evaluation.scores import score
from srgan.imaging.io import list_images, read_image
from srgan.imaging.transform import crop_to_multiple, resize_image
from srgan.inference.backends import backend_of, open_model
from srgan.inference.machine import describe_cpu, load_average
from srgan.inference.upscaler import UpscaleOptions, make_runner, upscale_image
from srgan.zoo.pretrained import INT8_VISIBLE_LOSS_DB, PRETRAINED

DEFAULT_DATASET = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "Set14"


def timed_upscale(model, image, runner):
    started = time.perf_counter()
    result = upscale_image(model, image, UpscaleOptions(tile=0), runner=runner)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--images", type=int, default=0, help="only the first N images")
    parser.add_argument("--models", nargs="+", default=list(PRETRAINED))
    args = parser.parse_args()
    paths = list_images(args.dataset)[: args.images or None]
    if not paths:
        raise SystemExit(f"{args.dataset}: no images (see ../shared/datasets/README.md)")
    print(f"CPU: {describe_cpu()}; {os.cpu_count()} threads; load average {load_average()}")
    print(f"{args.dataset.name} x4, {len(paths)} images, PSNR (dB) on Y, border 4\n")
    print(
        "| model | int8 vs fp32 | min int8 vs fp32 | fp32 vs HR | int8 vs HR | int8 backend "
        "| int8 / fp32 ORT time | auto fp32 backend | int8 / auto fp32 time |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---|---:|")
    for name in args.models:
        fp32 = open_model(name, backend="onnxruntime")
        int8 = open_model(name, precision="int8")
        auto = open_model(name)
        same = backend_of(auto).name == "onnxruntime"  # auto's fp32 is the ORT one: run once
        variants = (("fp32", fp32), ("int8", int8)) + (() if same else (("auto", auto),))
        runners = {key: make_runner(m, UpscaleOptions()) for key, m in variants}
        vs_fp32, fp32_hr, int8_hr = [], [], []
        seconds = {"fp32": 0.0, "int8": 0.0, "auto": 0.0}
        warm_up = resize_image(crop_to_multiple(read_image(paths[0]), 4), scale=1 / 4)
        for key, model in variants:
            timed_upscale(model, warm_up, runners[key])
        for path in paths:
            hr = crop_to_multiple(read_image(path), 4)
            lr = resize_image(hr, scale=1 / 4)
            results = {}
            for key, model in variants:
                results[key], spent = timed_upscale(model, lr, runners[key])
                seconds[key] += spent
            vs_fp32.append(score(path.stem, results["int8"], results["fp32"], 4).psnr)
            fp32_hr.append(score(path.stem, results["fp32"], hr, 4).psnr)
            int8_hr.append(score(path.stem, results["int8"], hr, 4).psnr)
        if same:
            seconds["auto"] = seconds["fp32"]
        mean = statistics.mean(vs_fp32)
        flag = " (visible loss)" if mean < INT8_VISIBLE_LOSS_DB else ""
        print(
            f"| {name} | {mean:.2f}{flag} | {min(vs_fp32):.2f} | {statistics.mean(fp32_hr):.2f} "
            f"| {statistics.mean(int8_hr):.2f} | {backend_of(int8).name} "
            f"| {seconds['int8'] / seconds['fp32']:.2f} "
            f"| {backend_of(auto).name} | {seconds['int8'] / seconds['auto']:.2f} |",
            flush=True,
        )
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
