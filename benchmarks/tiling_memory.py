"""Peak memory of `tiled_upscale` (MATLAB bicubic x4) on synthetic images of growing size.

Each row runs in a fresh subprocess. Its peak RSS (VmHWM from /proc/self/status) is
compared with its RSS just before the call (interpreter, torch and the source image):
the difference should be the output array plus about one float32 band, never a float32
copy of the whole output. The rest is the tile's activations inside ``forward`` and
memory glibc's malloc keeps after freeing them (less with MALLOC_MMAP_THRESHOLD_=131072).

    python benchmarks/tiling_memory.py [--tile 256] [--pad 4] [--sizes 1000x750 2000x1500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

MB = 1024 * 1024
DEFAULT_SIZES = ("1000x750", "2000x1500", "3000x2000")
SCALE = 4
CHANNELS = 3


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def child(width: int, height: int, tile: int, pad: int) -> None:
    """Run one measurement and print it as JSON."""
    import numpy as np

    from srgan.inference.backends.torch import bicubic_forward
    from srgan.inference.tiling import tiled_upscale

    forward = bicubic_forward(SCALE)

    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (height, width, CHANNELS), dtype=np.uint8)
    tiled_upscale(source[:64, :64], forward, SCALE, 32, pad)  # warm up: kernels, pools
    reset = _reset_peak()
    before = _status_kb("VmRSS") * 1024
    start = time.perf_counter()
    out = tiled_upscale(source, forward, SCALE, tile, pad)
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM") * 1024
    result = {
        "before": before,
        "peak": peak,
        "reset": reset,
        "seconds": seconds,
        "out_bytes": out.nbytes,
    }
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--pad", type=int, default=4)
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), metavar="WxH")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.tile, args.pad)
        return

    tile, pad = args.tile, args.pad
    print(f"tiled_upscale, MATLAB bicubic x{SCALE}, {CHANNELS} channels uint8, pad {pad}")
    header = (
        f"{'image':>10} {'tile':>5} {'in MB':>7} {'out MB':>7} {'band MB':>8} "
        f"{'f32 out MB':>10} {'RSS before':>10} {'peak RSS':>9} {'peak-before':>11} "
        f"{'- out':>7} {'time s':>7}"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        cmd = [sys.executable, __file__, "--child", str(width), str(height)]
        cmd += ["--tile", str(tile), "--pad", str(pad)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        in_bytes = width * height * CHANNELS
        band = (tile + 2 * pad) * SCALE * width * SCALE * CHANNELS * 4
        grown = r["peak"] - r["before"]
        print(
            f"{size:>10} {tile:>5} {in_bytes / MB:7.1f} {r['out_bytes'] / MB:7.1f} "
            f"{band / MB:8.1f} {r['out_bytes'] * 4 / MB:10.1f} {r['before'] / MB:10.1f} "
            f"{r['peak'] / MB:9.1f} {grown / MB:11.1f} {(grown - r['out_bytes']) / MB:7.1f} "
            f"{r['seconds']:7.1f}"
        )
        if not r["reset"]:
            print("  (could not reset VmHWM: peak includes start-up)")
    print(
        "band MB = (tile + 2*pad)*scale rows x W*scale x C x 4 bytes; "
        "'- out' = peak - before - output array"
    )


if __name__ == "__main__":
    main()
