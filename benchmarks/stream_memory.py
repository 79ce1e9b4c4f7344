"""Peak memory of upscaling a large image with the output streamed to disk or not.

A WxH photo-like input is upscaled x4 (default 4000x4000 -> 16000x16000, a 768 MB RGB
result) in fresh processes, alternating the modes in each repeat:

- ``png streamed``: ``srgan upscale IN OUT.png`` (rows encoded as each band is blended);
- ``tif streamed``: the same to a TIFF (strips written as they complete);
- ``png whole``: the Python API, ``srgan.upscale`` then ``write_image``: the whole result
  in memory, then encoded (what every writer needed before streaming);
- ``jpg whole``: ``srgan upscale IN OUT.jpg``: JPEG cannot be streamed, so the result is
  collected and Pillow encodes its own copy.

Peak RSS is the child's own ``ru_maxrss`` (wait4). The machine's load average is printed
with the table: on a shared machine the times vary, the memory does not.

    python benchmarks/stream_memory.py [--size 4000x4000] [--model anime-video] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from srgan.imaging.io import Image, ImageMeta, write_image
from srgan.inference.devices import cpu_model_name

WHOLE = """
import sys
import srgan
from srgan.imaging.io import read_image, write_image
source, target, model, tile = sys.argv[1:5]
image = srgan.upscale(read_image(source), model, tile=int(tile) if tile != "auto" else None)
write_image(target, image)
"""


def make_input(path: Path, width: int, height: int) -> None:
    """A smooth gradient plus noise: compresses like a photo, not like a flat image."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256])
    noise = rng.integers(-12, 13, (3, height, width))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    write_image(path, Image(np.ascontiguousarray(pixels), ImageMeta()))


# The child's ru_maxrss would include the pages of the process it was forked from (Linux
# records the old memory's high-water mark at exec): a small launcher forks the command
# and reports that child's own peak, untouched by this script's big input arrays.
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def measure(command: list[str], folder: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of a child process."""
    peak_file = folder / "peak.txt"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(peak_file), *command],
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode:
        print(f"  exit {result.returncode}: {result.stderr.strip()[-300:]}", file=sys.stderr)
    peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    return seconds, peak, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", default="4000x4000", metavar="WxH")
    parser.add_argument("--model", default="anime-video")
    parser.add_argument("--tile", default="auto", help="tile side, or auto")
    parser.add_argument(
        "--backend", default="torch", help="the CLI's backend (torch: the API's, for a fair race)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--modes", nargs="+", default=["png-streamed", "png-whole", "tif-streamed", "jpg-whole"]
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    srgan = [sys.executable, "-m", "srgan", "-q", "upscale"]
    tile = [] if args.tile == "auto" else ["--tile", args.tile]
    tile += ["--backend", args.backend] if args.model != "bicubic" else []
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in args.modes}
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.png"
        make_input(source, width, height)
        for _ in range(args.repeats):
            for mode in args.modes:
                ext, how = mode.split("-")
                target = Path(folder) / f"out.{ext}"
                if how == "whole" and ext == "png":
                    command = [sys.executable, "-c", WHOLE, str(source), str(target)]
                    command += [args.model, args.tile]
                else:
                    command = [*srgan, str(source), str(target), "-m", args.model, *tile]
                seconds, peak, code = measure(command, Path(folder))
                if code == 0:
                    results[mode].append((seconds, peak))
                print(f"  {mode}: {seconds:.0f} s, {peak:.0f} MB, exit {code}", flush=True)
                target.unlink(missing_ok=True)
    output_mb = width * 4 * height * 4 * 3 / 1e6
    print(f"{width}x{height} RGB -> x4 {width * 4}x{height * 4} ({output_mb:.0f} MB of pixels)")
    print(f"model {args.model} ({args.backend}), tile {args.tile}")
    print(f"CPU: {cpu_model_name()} ({os.cpu_count()} cores)")
    print(f"load average before/after: {LOAD_BEFORE} / {os.getloadavg()[0]:.1f}")
    print("| output | written | wall s | peak RSS MB |")
    print("|---|---|---:|---:|")
    for mode, runs in results.items():
        ext, how = mode.split("-")
        label = "band by band" if how == "streamed" else "whole image in memory"
        if not runs:
            print(f"| {ext} | {label} | failed | - |")
            continue
        wall = min(s for s, _ in runs)
        peak = max(p for _, p in runs)
        print(f"| {ext} | {label} | {wall:.0f} | {peak:.0f} |")


LOAD_BEFORE = f"{os.getloadavg()[0]:.1f}"

if __name__ == "__main__":
    main()
