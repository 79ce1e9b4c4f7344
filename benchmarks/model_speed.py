"""Forward time, CLI wall time and peak RSS of each named model on one small photo.

The input is a SIZE x SIZE RGB crop from the centre of scikit-image's astronaut
(``astronaut()[128:384, 128:384]`` at the default 256; larger sizes resize the whole
photo with Pillow LANCZOS). For each model, in this order:

1. a warm-up child loads the model once, so the conversion cache (``$SRGAN_CACHE``, as
   the user has it) is filled before anything is timed;
2. an API child (a fresh ``python`` running this file with ``--child``) loads the model,
   runs ``upscale_image(..., UpscaleOptions(tile=0))`` once to warm up, then REPEATS
   times; the table shows the median. Torch keeps its default thread count (the cores);
3. a CLI child runs ``srgan -q upscale in.png out.png --model NAME --tile 0`` once, timed
   from outside: interpreter start-up, imports, cached model load, PNG read and write.

Peak RSS: every child reports its own ``VmHWM`` (peak resident set) from
``/proc/self/status`` just before it exits, written to a small JSON file. The CLI child
is a one-line launcher doing what the ``srgan`` console script does (``from
srgan.cli.main import run; run(argv)``) inside ``try/finally``, so the report is written
even though the CLI ends with ``SystemExit``. This is per process and exact, unlike
``ru_maxrss`` of ``RUSAGE_CHILDREN`` (a maximum over all children, not per run) or of
``wait4`` (on Linux it also counts the forked parent's pages before ``exec``).
MB are MiB (2**20 bytes). Linux only.

    SRGAN_CACHE=/tmp/cache python benchmarks/model_speed.py [--models natural anime]
        [--size 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from srgan.inference.machine import cpu_model_name

MB = 1024 * 1024
MODELS = ("bicubic", "natural", "anime", "anime-video")
SCALE = 4

LAUNCHER = """\
import json, sys
report, argv = sys.argv[1], sys.argv[2:]
try:
    from srgan.cli.main import run
    run(argv)
finally:
    status = dict(line.split(':', 1) for line in open('/proc/self/status'))
    with open(report, 'w') as fh:
        json.dump({'peak': int(status['VmHWM'].split()[0]) * 1024}, fh)
"""


def peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM), in bytes."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not in /proc/self/status")


def source_pixels(size: int):
    """A size x size uint8 RGB crop of the astronaut (resized when larger than 512)."""
    import numpy as np
    from PIL import Image as PILImage
    from skimage import data

    photo = data.astronaut()
    height, width = photo.shape[:2]
    if size <= min(height, width):
        top, left = (height - size) // 2, (width - size) // 2
        return np.ascontiguousarray(photo[top : top + size, left : left + size])
    resized = PILImage.fromarray(photo).resize((size, size), PILImage.Resampling.LANCZOS)
    return np.asarray(resized)


def child(model_name: str, input_path: str, repeats: int, report: str) -> None:
    """Time the in-process forward pass and write the result as JSON to `report`."""
    import numpy as np
    import torch
    from PIL import Image as PILImage

    from srgan.imaging import Image, ImageMeta
    from srgan.inference.upscaler import UpscaleOptions, upscale_image
    from srgan.zoo import load_model

    pixels = np.asarray(PILImage.open(input_path).convert("RGB"))
    image = Image(pixels, ImageMeta())
    start = time.perf_counter()
    model = load_model(model_name)
    load_seconds = time.perf_counter() - start
    options = UpscaleOptions(tile=0)
    out = upscale_image(model, image, options)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = upscale_image(model, image, options)
        times.append(time.perf_counter() - start)
    expected = (image.height * SCALE, image.width * SCALE, 3)
    result = {
        "parameters": model.descriptor.parameters,
        "load": load_seconds,
        "times": times,
        "shape": list(out.pixels.shape),
        "shape_ok": tuple(out.pixels.shape) == expected,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "peak": peak_rss_bytes(),
    }
    Path(report).write_text(json.dumps(result))


def run_child(args: list[str], report: Path) -> tuple[float, dict]:
    """Run `python ARGS`, wall-timed; return (seconds, the JSON it wrote to `report`)."""
    report.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"child {args[:1]}... exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return seconds, json.loads(report.read_text())


def run_cli(cli_args: list[str], report: Path) -> tuple[float, dict]:
    """Run `srgan CLI_ARGS` through the launcher; return (wall seconds, its report)."""
    return run_child(["-c", LAUNCHER, str(report), *cli_args], report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), metavar="NAME")
    parser.add_argument("--size", type=int, default=256, help="side of the square input")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up")
    parser.add_argument(
        "--child", nargs=3, metavar=("MODEL", "INPUT", "REPORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.repeats, args.child[2])
        return
    if args.repeats < 1 or args.size < 1:
        parser.error("--size and --repeats must be positive")

    from PIL import Image as PILImage

    total_start = time.perf_counter()
    rows = []
    info: dict = {}
    with tempfile.TemporaryDirectory(prefix="srgan-bench-") as tmp:
        folder = Path(tmp)
        source, target, report = folder / "in.png", folder / "out.png", folder / "report.json"
        PILImage.fromarray(source_pixels(args.size)).save(source)
        for name in args.models:
            warm = f"from srgan.zoo import load_model; load_model({name!r})"
            subprocess.run([sys.executable, "-c", warm], check=True)
            api_args = [__file__, "--child", name, str(source), str(report)]
            _, api = run_child([*api_args, "--repeats", str(args.repeats)], report)
            if not api["shape_ok"]:
                raise RuntimeError(f"{name}: output shape {api['shape']}, expected x{SCALE}")
            cli_args = ["-q", "upscale", str(source), str(target), "--model", name, "--tile", "0"]
            cli_seconds, cli = run_cli(cli_args, report)
            info = info or api
            rows.append((name, api, cli_seconds, cli))
            print(f"  {name}: done", file=sys.stderr, flush=True)
    total = time.perf_counter() - total_start

    print(f"torch {info['torch']}, {info['threads']} threads, CPU: {cpu_model_name()}")
    print(f"input: {args.size}x{args.size} RGB astronaut crop, x{SCALE}, whole image (tile 0)")
    print(f"forward: median of {args.repeats} after 1 warm-up; CLI: one run, cache warm")
    print()
    print(
        "| model | parameters | forward s (median) | CLI wall s | peak RSS MB (API) "
        "| peak RSS MB (CLI) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, api, cli_seconds, cli in rows:
        params = f"{api['parameters'] / 1e6:.2f}M" if api["parameters"] else "-"
        forward = statistics.median(api["times"])
        print(
            f"| {name} | {params} | {forward:.3f} | {cli_seconds:.2f} "
            f"| {api['peak'] / MB:.0f} | {cli['peak'] / MB:.0f} |"
        )
    print()
    print(f"total benchmark time: {total:.0f} s")


if __name__ == "__main__":
    main()
