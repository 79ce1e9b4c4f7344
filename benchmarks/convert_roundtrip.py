"""Round trips of every named model through every format, against the ncnn runtime.

For each named model: `srgan convert NAME a.pth`, `a.pth -> a.onnx`, `a.onnx -> a.param`,
`a.param -> a.safetensors` (each validated by `srgan convert` itself: source and result
on its probe with their own runtimes), then the final `.safetensors` (PyTorch) and the
intermediate `.onnx` (ONNX Runtime) and `.param` (ncnn) against the ncnn runtime running
the model's original files on a probe image. Prints a table of the differences (max and
mean absolute, on outputs in [0, 1]) and the time of each step, with the CPU and the load
average. The RRDBNet models take minutes on a small CPU: this is why it is a benchmark.

    python benchmarks/convert_roundtrip.py [--models anime-video natural anime] [--probe 32]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from srgan.conversion.validation import probe, run_ncnn, run_onnx
    from srgan.inference.devices import cpu_model_name
    from srgan.zoo.pretrained import PRETRAINED, ncnn_files

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(PRETRAINED))
    parser.add_argument("--probe", type=int, default=32, help="probe image side")
    args = parser.parse_args()
    print(f"CPU: {cpu_model_name()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            base = Path(folder) / name
            chain = [name, *(base.with_suffix(s) for s in (".pth", ".onnx", ".param"))]
            chain.append(base.with_suffix(".safetensors"))
            steps = []
            for source, target in itertools.pairwise(chain):
                started = time.monotonic()
                subprocess.run(
                    [sys.executable, "-m", "srgan", "convert", str(source), str(target),
                     "--probe-size", str(args.probe), "-q"],
                    check=True,
                )  # fmt: skip
                steps.append(time.monotonic() - started)
            param, weights = ncnn_files(PRETRAINED[name])
            x = probe(3, args.probe)
            original = run_ncnn(param, weights, x)
            import torch

            from srgan.zoo.registry import load_model

            with torch.no_grad():
                final = load_model(str(chain[-1])).module(torch.from_numpy(x)).numpy()
            outputs = {
                "safetensors (torch)": final,
                "onnx (onnxruntime)": run_onnx(base.with_suffix(".onnx"), x),
                "param (ncnn)": run_ncnn(base.with_suffix(".param"), base.with_suffix(".bin"), x),
            }
            for label, output in outputs.items():
                delta = np.abs(output.astype(np.float64) - original)
                rows.append((name, label, delta.max(), delta.mean(), sum(steps)))
            print(f"{name}: steps " + ", ".join(f"{s:.1f} s" for s in steps), flush=True)
    print(f"\nagainst the ncnn runtime on the original files, probe {args.probe}x{args.probe}")
    print("| model | round-tripped file | max abs diff | mean abs diff | 4 conversions s |")
    print("|---|---|---:|---:|---:|")
    for name, label, largest, mean, seconds in rows:
        print(f"| {name} | {label} | {largest:.2e} | {mean:.2e} | {seconds:.0f} |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
