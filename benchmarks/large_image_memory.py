"""Peak RSS and wall time of `srgan upscale` on a large photo with anime-video, per tile size.

The input is scikit-image's coffee photo (600x400) resized with Pillow LANCZOS to WxH
(default 3000x2000, the issue's case) and saved as PNG in a temporary folder. Before
timing, a child loads the model once so the conversion cache (``$SRGAN_CACHE``, as the
user has it) is warm. Then, for each tile size T, a fresh child runs

    srgan -q upscale big.png out.png --model anime-video --tile T

and the output PNG's size is checked (12000x8000 by default) from its header.

Peak RSS: the child is a one-line launcher doing what the ``srgan`` console script does
(``from srgan.cli.main import run; run(argv)``) inside ``try/finally``; at exit it
writes its own ``VmHWM`` (peak resident set, from ``/proc/self/status``) to a JSON
file, with its ``VmRSS`` after the imports (interpreter, torch, srgan) as a baseline.
That is exact and per run, unlike ``ru_maxrss`` (a maximum over all children, or on
Linux including the forked parent's pages before ``exec``). Wall time is measured
around the whole child: start-up, PNG decode, tiles, PNG encode.

The table also lists theoretical buffers: the uint8 input and output arrays, and a
float32 copy of the output, which a peak well under it shows was never made. The
issue's target is a peak RSS under 3 GB (3072 MB; MB are MiB, 2**20 bytes). Linux only.

On 2 CPU cores one 3000x2000 run takes about 3-4 minutes, so both default tile sizes
(128, 256) fit in roughly 8 minutes.

    SRGAN_CACHE=/tmp/cache python benchmarks/large_image_memory.py [--tiles 128 256]
        [--size 3000x2000] [--tile-pad 16]
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1024 * 1024
MODEL = "anime-video"
SCALE = 4
CHANNELS = 3
TARGET_BYTES = 3 * 1024**3

LAUNCHER = """\
import json, sys
report, argv, baseline = sys.argv[1], sys.argv[2:], 0
def status():
    return dict(line.split(':', 1) for line in open('/proc/self/status'))
try:
    from srgan.cli.main import run
    baseline = int(status()['VmRSS'].split()[0]) * 1024
    run(argv)
finally:
    peak = int(status()['VmHWM'].split()[0]) * 1024
    with open(report, 'w') as fh:
        json.dump({'peak': peak, 'baseline': baseline}, fh)
"""


def parse_size(text: str) -> tuple[int, int]:
    """'3000x2000' -> (3000, 2000)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"expected a positive WxH, got {text!r}")
    return width, height


def make_photo(path: Path, width: int, height: int) -> None:
    """Save scikit-image's coffee, resized with LANCZOS to width x height, as a PNG."""
    from PIL import Image as PILImage
    from skimage import data

    photo = PILImage.fromarray(data.coffee())
    photo.resize((width, height), PILImage.Resampling.LANCZOS).save(path)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, without decoding it."""
    with path.open("rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG")
    return struct.unpack(">II", head[16:24])


def run_cli(cli_args: list[str], report: Path) -> tuple[float, dict]:
    """Run `srgan CLI_ARGS` through the launcher; return (wall seconds, its report)."""
    report.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", LAUNCHER, str(report), *cli_args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"srgan {' '.join(cli_args)} exited {proc.returncode}:\n{proc.stderr}")
    return seconds, json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", nargs="+", type=int, default=[128, 256], metavar="T")
    parser.add_argument("--size", type=parse_size, default=(3000, 2000), metavar="WxH")
    parser.add_argument("--tile-pad", type=int, default=16)
    args = parser.parse_args()
    width, height = args.size

    in_bytes = width * height * CHANNELS
    out_bytes = in_bytes * SCALE * SCALE
    total_start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="srgan-bench-") as tmp:
        folder = Path(tmp)
        source, target, report = folder / "big.png", folder / "out.png", folder / "report.json"
        make_photo(source, width, height)
        warm = f"from srgan.zoo import load_model; load_model({MODEL!r})"
        subprocess.run([sys.executable, "-c", warm], check=True)
        for tile in args.tiles:
            target.unlink(missing_ok=True)
            cli_args = ["-q", "upscale", str(source), str(target), "--model", MODEL]
            cli_args += ["--tile", str(tile), "--tile-pad", str(args.tile_pad)]
            seconds, result = run_cli(cli_args, report)
            size = png_size(target)
            ok = size == (width * SCALE, height * SCALE)
            rows.append((tile, seconds, result, size, ok, target.stat().st_size))
            print(f"  tile {tile}: {seconds:.0f} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - total_start

    print(
        f"srgan upscale --model {MODEL}, {width}x{height} RGB PNG (coffee, LANCZOS) -> "
        f"x{SCALE}, tile pad {args.tile_pad}"
    )
    print(
        f"buffers: input uint8 {in_bytes / MB:.1f} MB, output uint8 {out_bytes / MB:.1f} MB, "
        f"output as float32 {out_bytes * 4 / MB:.1f} MB"
    )
    print(f"target: peak RSS < {TARGET_BYTES / MB:.0f} MB (3 GB)")
    print()
    print(
        "| tile | wall s | RSS after imports MB | peak RSS MB | peak - imports MB "
        "| output size | output PNG MB | < 3 GB |"
    )
    print("|---:|---:|---:|---:|---:|---|---:|---|")
    for tile, seconds, result, size, ok, png_bytes in rows:
        peak, base = result["peak"], result["baseline"]
        shape = f"{size[0]}x{size[1]}" + ("" if ok else " (WRONG)")
        verdict = "yes" if peak < TARGET_BYTES else "NO"
        print(
            f"| {tile} | {seconds:.1f} | {base / MB:.0f} | {peak / MB:.0f} "
            f"| {(peak - base) / MB:.0f} | {shape} | {png_bytes / MB:.1f} | {verdict} |"
        )
    print()
    print(f"total benchmark time: {total:.0f} s")


if __name__ == "__main__":
    main()
