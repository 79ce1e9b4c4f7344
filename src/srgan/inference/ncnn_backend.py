"""Running the original ncnn files with the ncnn runtime, without importing PyTorch."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from srgan.zoo.ncnn_conventions import wrap_forward
from srgan.zoo.ncnn_model import NcnnModel


class NcnnRunner:
    """One loaded ncnn network; each call runs a [1, C, h, w] float32 tile in fp32.

    fp16 storage and arithmetic are turned off so that results match PyTorch's fp32 ones
    (within 1e-5 here); on x86 they brought no speed. The model's conventions (padding,
    crop: `zoo.ncnn_conventions`) are applied around the network, and whole-image pool
    results, when set for this thread, are fed in place of the network's own.
    """

    def __init__(self, model: NcnnModel, threads: int | None = None) -> None:
        import ncnn

        self._ncnn: Any = ncnn  # a binary module without type information
        self.model = model
        self._forward = (
            wrap_forward(model.conventions, self._network) if model.conventions else self._network
        )
        self.net = self._ncnn.Net()
        options = self.net.opt
        options.use_vulkan_compute = False
        options.use_fp16_storage = False
        options.use_fp16_packed = False
        options.use_fp16_arithmetic = False
        options.use_bf16_storage = False
        options.num_threads = threads or os.cpu_count() or 1
        if self.net.load_param(str(model.param)) != 0 or self.net.load_model(str(model.bin)) != 0:
            raise RuntimeError(f"ncnn could not load {model.param}")
        (self.input_name,) = self.net.input_names()
        (self.output_name,) = self.net.output_names()

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return self._forward(tile)

    def _network(self, tile: np.ndarray) -> np.ndarray:
        # ncnn.Mat wraps `planar` without copying: it must stay referenced during the run,
        # and the output is copied out before the extractor that owns it is released.
        planar = np.ascontiguousarray(tile[0], dtype=np.float32)
        pooled = self.model.statistics.get(threading.get_ident(), {})
        with self.net.create_extractor() as extractor:
            extractor.input(self.input_name, self._ncnn.Mat(planar))
            given = [np.ascontiguousarray(v, dtype=np.float32) for v in pooled.values()]
            for name, value in zip(pooled, given, strict=True):
                extractor.input(name, self._ncnn.Mat(value))
            status, output = extractor.extract(self.output_name)
            if status != 0:
                raise RuntimeError(f"ncnn failed on a tile (status {status})")
            result = np.array(output, dtype=np.float32, copy=True)
        return result[None]
