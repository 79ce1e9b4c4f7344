"""Folders: how close the wall time comes to N x compute when reading and writing overlap.

A folder of N photos (crops of scikit-image's sample photos, PNG) is upscaled twice with
the same model and runner, in one process, alternately: once one stage after the other
(read, compute, write, next file), once through srgan's pipeline (`srgan batch-process`:
the next file is read and the previous one encoded and written while the network
computes). The table gives the wall times, the summed compute time, and wall / compute
(1.00 would be perfect overlap).

    python benchmarks/folder_overlap.py [--files 8] [--size 320x240] [--model anime-video]
        [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from srgan.imaging.io import Image, ImageMeta, encode_image, read_image, write_bytes_atomically
from srgan.inference.backends import backend_of, open_model
from srgan.inference.batch import plan, run_batch
from srgan.inference.machine import describe_cpu, load_average
from srgan.inference.pipeline import Stages, Timings
from srgan.inference.upscaler import UpscaleOptions, make_runner, upscale_image


def make_folder(folder: Path, count: int, width: int, height: int) -> None:
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(0)
    folder.mkdir()
    for index in range(count):
        photo = photos[index % len(photos)]
        top = int(rng.integers(0, photo.shape[0] - height + 1))
        left = int(rng.integers(0, photo.shape[1] - width + 1))
        crop = np.ascontiguousarray(photo[top : top + height, left : left + width])
        write_bytes_atomically(
            folder / f"{index:03d}.png", encode_image(Image(crop, ImageMeta()), "PNG")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--model", default="anime-video")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    options = UpscaleOptions(tile=0)
    model = open_model(args.model)
    runner = make_runner(model, options)
    print(f"CPU: {describe_cpu()}; {os.cpu_count()} threads; load average {load_average()}")
    print(f"{args.files} files of {width}x{height}, {args.model} on {backend_of(model).name}\n")

    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "in"
        make_folder(source, args.files, width, height)
        upscale_image(model, read_image(source / "000.png"), options, runner=runner)  # warm-up

        def stages(timings: Timings) -> Stages:
            def read(path: Path) -> Image:
                with timings.measure("read"):
                    return read_image(path)

            def compute(image: Image) -> Image:
                with timings.measure("compute"):
                    return upscale_image(model, image, options, runner=runner)

            def write(result: Image, target: Path) -> None:
                with timings.measure("write"):
                    write_bytes_atomically(target, encode_image(result, "PNG"))

            return Stages(read, compute, write)

        walls: dict[str, list[float]] = {"one after the other": [], "pipelined": []}
        computes: dict[str, list[float]] = {key: [] for key in walls}
        for repeat in range(args.repeats):
            for key in walls:
                jobs = plan(source, Path(work) / f"out-{key[:3]}-{repeat}")
                timings = Timings()
                steps = stages(timings)

                def sequential(src: Path, dst: Path, steps: Stages = steps) -> None:
                    steps.write(steps.compute(steps.read(src)), dst)

                started = time.perf_counter()
                run_batch(jobs, steps if key == "pipelined" else sequential)
                walls[key].append(time.perf_counter() - started)
                computes[key].append(timings.seconds["compute"])
                if key == "pipelined":
                    print(f"  pipelined run {repeat + 1}: {timings.describe()}")
    print("\n| run | wall s | compute s (sum) | wall / compute |")
    print("|---|---:|---:|---:|")
    for key in walls:
        wall, compute = statistics.median(walls[key]), statistics.median(computes[key])
        print(f"| {key} | {wall:.2f} | {compute:.2f} | {wall / compute:.2f} |")
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
