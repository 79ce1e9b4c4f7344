"""Tiling squeeze-excitation models: how far tiled output is from untiled, per scheme.

Real-CUGAN and waifu2x's CUNet scale their features by statistics pooled over the whole
image, so a tile that computes them from itself gives a different result. For each
model, an image is upscaled whole (the reference) and then in tiles of --tile pixels
(tile padding twice the network's context, so that only the statistics differ), with
the statistics from:

* per-tile: each tile's own (no first pass);
* ncnn-vulkan rough: realcugan-ncnn-vulkan's ``-c 2``: every tile's own statistics,
  averaged over the tiles (each tile padded by the reference ``prepadding``);
* ncnn-vulkan very rough: its default ``-c 3``: the same over 32x32 tiles, every third
  tile in each direction;
* low-res /F: the whole network once on the image shrunk F times (MATLAB bicubic);
* exact (srgan): the whole image's statistics, accumulated window by window
  (`srgan.zoo.global_stats.exact_statistics`, what `srgan upscale` does).

For each: the largest and mean absolute difference to the untiled output, in 8-bit
levels (outputs kept as 16-bit, so differences below one level show), the share of
pixels whose 8-bit value changes, and the seconds of the statistics pass and of the whole
tiled upscale. The 1-minute load average is printed per model.

    python benchmarks/tiled_se.py [--models anime-cugan-x2-denoise3 waifu2x-cunet-x2]
        [--image Set14/comic] [--tile 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from srgan.imaging.io import read_image  # noqa: E402
from srgan.inference.backends.torch import TorchRunner  # noqa: E402
from srgan.inference.machine import cpu_model_name  # noqa: E402
from srgan.inference.tiling import tiled_upscale  # noqa: E402
from srgan.zoo.global_stats import (  # noqa: E402
    exact_statistics,
    lowres_statistics,
)
from srgan.zoo.ncnn_graph import NcnnGraph  # noqa: E402
from srgan.zoo.ncnn_loader import ConventionModule  # noqa: E402
from srgan.zoo.registry import load_model  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
if not DATASETS.is_dir():
    DATASETS = Path("/work/shared/datasets")
Stats = dict[str, torch.Tensor]


def padded_input(module: ConventionModule, pixels: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32)[None] / 255)
    return module.pad(x)


def reference_average(
    module: ConventionModule, pixels: np.ndarray, tile: int, sparse: bool
) -> Stats:
    """realcugan-ncnn-vulkan's syncgap 2 (sparse=False) and 3 (sparse=True, 32x32 tiles,
    every third): each tile's own pooled values, the plain mean over tiles."""
    graph = module.graph
    assert isinstance(graph, NcnnGraph)
    c = module.conventions
    height, width = pixels.shape[:2]
    padded = padded_input(module, pixels)
    size = 32 if sparse else tile
    rows, cols = -(-height // size), -(-width // size)
    step = 3 if sparse else 1
    outputs = [pool.output for pool in graph.global_pools]
    found: list[Stats] = []
    for yi in range(0, rows - (2 if sparse else 0), step):
        for xi in range(0, cols - (2 if sparse else 0), step):
            h = min(size, height - yi * size)
            w = min(size, width - xi * size)
            # the tile plus prepadding of real neighbours (reflected at the image border),
            # plus the alignment of the tile's own size: a window of the padded image
            y0, x0 = yi * size, xi * size
            window = padded[:, :, y0 : y0 + h + 2 * c.pad + c.extra(h),
                            x0 : x0 + w + 2 * c.pad + c.extra(w)]  # fmt: skip
            with torch.inference_mode():
                found.append(graph.run(window, outputs))
    return {name: torch.stack([f[name] for f in found]).mean(0) for name in outputs}


def lowres(module: ConventionModule, pixels: np.ndarray, factor: int) -> Stats:
    from srgan.imaging.resize import imresize

    x = torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32)[None] / 255)
    small = imresize(x, scale=1 / factor).clamp(0, 1)
    graph = module.graph
    assert isinstance(graph, NcnnGraph)
    return lowres_statistics(graph, module.pad(small))


def exact(module: ConventionModule, pixels: np.ndarray, tile: int) -> Stats:
    graph = module.graph
    assert isinstance(graph, NcnnGraph)
    c = module.conventions
    rows, cols = c.axis_indices(pixels.shape[0]), c.axis_indices(pixels.shape[1])

    def window(r: np.ndarray, q: np.ndarray) -> np.ndarray:
        block = pixels[rows[r]][:, cols[q]]
        return np.ascontiguousarray(block.transpose(2, 0, 1).astype(np.float32)[None] / 255)

    return exact_statistics(graph, window, (len(rows), len(cols)), tile, c.multiple, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*",
                        default=["anime-cugan-x2-denoise3", "anime-cugan-x4-conservative",
                                 "waifu2x-cunet-x2-denoise1"])  # fmt: skip
    parser.add_argument("--image", default="Set14/comic")
    parser.add_argument("--tile", type=int, default=128)
    args = parser.parse_args()
    path = next((DATASETS / args.image).parent.glob(Path(args.image).name + ".*"))
    pixels = read_image(path).pixels[..., :3]
    print(f"CPU: {cpu_model_name()}, {os.cpu_count()} cores")
    print(f"image {path.name} {pixels.shape[1]}x{pixels.shape[0]}, tile {args.tile}")
    for name in args.models:
        measure(name, pixels, args.tile)


def measure(name: str, pixels: np.ndarray, tile: int) -> None:
    model = load_model(name)
    module = model.module
    assert isinstance(module, ConventionModule) and isinstance(module.graph, NcnnGraph)
    graph = module.graph
    run = TorchRunner(model, "cpu", "fp32")
    scale = int(model.scale)
    pad = 2 * model.descriptor.context

    def upscale(size: int) -> np.ndarray:
        return tiled_upscale(pixels, run, scale, size, pad, out_dtype=np.uint16)

    started = time.perf_counter()
    whole = upscale(0).astype(np.float64) / 257
    whole_s = time.perf_counter() - started
    print(f"\n{name} (x{scale}), untiled {whole_s:.1f} s, load {os.getloadavg()[0]:.1f}")
    print("| statistics | max Δ (levels) | mean Δ | pixels changed | stats s | total s |")
    print("|---|---|---|---|---|---|")
    schemes: list[tuple[str, Callable[[], Stats] | None]] = [
        ("per-tile (none)", None),
        ("ncnn-vulkan rough (-c 2)", lambda: reference_average(module, pixels, tile, False)),
        ("ncnn-vulkan very rough (-c 3)", lambda: reference_average(module, pixels, tile, True)),
        ("low-res /2", lambda: lowres(module, pixels, 2)),
        ("low-res /4", lambda: lowres(module, pixels, 4)),
        ("exact (srgan)", lambda: exact(module, pixels, tile)),
    ]
    for label, compute in schemes:
        started = time.perf_counter()
        fixed = compute() if compute else {}
        stats_s = time.perf_counter() - started
        graph.fixed = fixed
        try:
            tiled = upscale(tile).astype(np.float64) / 257
        finally:
            graph.fixed = {}
        total_s = time.perf_counter() - started
        delta = np.abs(tiled - whole)
        changed = np.mean(np.rint(tiled) != np.rint(whole)) * 100
        print(
            f"| {label} | {delta.max():.3f} | {delta.mean():.4f} | {changed:.2f} % | "
            f"{stats_s:.1f} | {total_s:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
