"""Measure models x backends x input sizes x threads: time, throughput, FLOP/s, memory.

Each configuration runs in a fresh child process, so that its peak memory (ru_maxrss) and
its thread settings are its own. The child upscales a synthetic photo-like image through
the same tiling path as `srgan upscale` (one tile: the whole image).
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from srgan.inference.memory_profile import peak_rss_bytes

CHILD_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Config:
    model: str
    backend: str
    width: int
    height: int
    threads: int
    repeats: int = 3
    device: str = "cpu"
    precision: str = "fp32"


@dataclass(frozen=True)
class Measurement:
    config: Config
    backend: str  # the backend that ran (auto resolved)
    seconds: float  # median per image, after one warm-up run
    megapixels_per_s: float  # output megapixels per second
    gflop_per_s: float  # multiply-adds x 2 of the network per second
    peak_rss_mb: float
    peak_gpu_mb: float | None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self.config), **{k: v for k, v in asdict(self).items() if k != "config"}}


def network_flops(name: str, height: int, width: int) -> float:
    """FLOPs (2 x multiply-adds) of a model's convolutions on one image (needs PyTorch)."""
    import torch

    from srgan.zoo.registry import load_model

    model = load_model(name)
    total = 0.0

    def count(module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        weight = module.weight
        assert isinstance(weight, torch.Tensor)  # hooks are set on convolutions only
        per_output = weight.shape[1] * weight.shape[2] * weight.shape[3]
        total += 2.0 * per_output * output.numel()

    hooks = [
        m.register_forward_hook(count)
        for m in model.module.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    try:
        with torch.inference_mode():
            model.module(torch.zeros(1, 3, 32, 32))
    finally:
        for hook in hooks:
            hook.remove()
    return total * (height * width) / (32 * 32)


def synthetic_photo(height: int, width: int) -> np.ndarray:
    """A smooth, textured RGB image (deterministic) so that timings resemble real photos."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 8, (height, width, 3)).astype(np.float32)
    base = np.stack(
        [
            128 + 100 * np.sin(x / 23.0) * np.cos(y / 31.0),
            128 + 90 * np.sin((x + y) / 17.0),
            128 + 80 * np.cos(x / 11.0 - y / 29.0),
        ],
        axis=2,
    )
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _child(config: Config, flops: float, queue: multiprocessing.Queue) -> None:
    try:
        queue.put(_measure(config, flops))
    except Exception as exc:  # reported as a row, the other configurations go on
        queue.put({"error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"})


def _measure(config: Config, flops: float) -> dict[str, object]:
    import os

    from srgan.imaging.io import Image, ImageMeta
    from srgan.inference.backends import open_model
    from srgan.inference.upscaler import (
        UpscaleOptions,
        backend_name,
        make_runner,
        upscale_pixels,
    )

    os.environ["OMP_NUM_THREADS"] = str(config.threads)
    options = UpscaleOptions(tile=0, device=config.device, precision=config.precision)  # type: ignore[arg-type]
    model = open_model(
        config.model, None, config.device, config.precision, config.backend, config.threads
    )
    if backend_name(model) == "torch":
        import torch

        torch.set_num_threads(config.threads)
    runner = make_runner(model, options, threads=config.threads)
    image = Image(synthetic_photo(config.height, config.width), ImageMeta())
    upscale_pixels(model, image, options, runner=runner)  # warm-up
    times = []
    for _ in range(config.repeats):
        started = time.perf_counter()
        upscale_pixels(model, image, options, runner=runner)
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    out_mp = config.height * config.width * model.scale**2 / 1e6
    gpu = None
    if config.device.startswith("cuda"):
        import torch

        gpu = torch.cuda.max_memory_allocated() / 2**20
    return {
        "backend": backend_name(model),
        "seconds": seconds,
        "megapixels_per_s": out_mp / seconds,
        "gflop_per_s": flops / seconds / 1e9,
        "peak_rss_mb": peak_rss_bytes() / 2**20,
        "peak_gpu_mb": gpu,
    }


def run_config(config: Config, flops: float) -> Measurement:
    """Measure one configuration in a fresh process (spawned: no inherited memory)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(config, flops, queue))
    process.start()
    try:
        result = queue.get(timeout=CHILD_TIMEOUT_S)  # before join: the child may block on put
    except Exception:  # queue.Empty: the child died or hung
        result = {"error": f"no result (exit code {process.exitcode})"}
    process.join(timeout=10)
    if process.is_alive():
        process.kill()
    if "error" in result:
        nan = float("nan")
        return Measurement(config, config.backend, nan, nan, nan, nan, None, result["error"])
    return Measurement(config=config, **result)  # type: ignore[arg-type]


def to_json(measurements: list[Measurement]) -> str:
    return json.dumps([m.as_dict() for m in measurements], indent=2)
