"""The ncnn backend: a model's original ncnn files on the CPU, in fp32 or with int8
convolutions (see `srgan.zoo.ncnn_int8`), without PyTorch."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from srgan.zoo.ncnn_conventions import wrap_forward
from srgan.zoo.ncnn_model import NcnnModel

if TYPE_CHECKING:
    from srgan.inference.backends.base import AnyModel, Runner
    from srgan.zoo.sources import ModelSource


class NcnnBackend:
    name: str = "ncnn"
    modules: tuple[str, ...] = ("ncnn",)
    packages: tuple[str, ...] = ("ncnn",)
    shares_threads: bool = False
    half_activations: bool = False

    def refusal(self, source: ModelSource, device: str, precision: str) -> str | None:
        if device != "cpu":
            return f"ncnn runs on the CPU here, not {device}"
        if precision not in ("fp32", "fp16", "int8"):
            return f"ncnn runs fp32, fp16 and int8 here, not {precision}"
        if source.ncnn_files is None and source.unchecked_ncnn is not None:
            return (
                f"{source.name} is an ncnn graph that srgan's interpreter pads and aligns; the "
                "ncnn runtime runs only recognised architectures' files (RRDBNet, SRVGG) as "
                "they are: use --backend torch or onnxruntime"
            )
        if source.ncnn_files is None or not source.is_network:
            return f"{source.name} has no ncnn files (named models and checked .param files do)"
        if source.conventions is not None and precision == "int8":
            return f"ncnn runs {source.name} in fp32 and fp16 only"
        return None

    def prepare(self, source: ModelSource, device: str, precision: str) -> AnyModel:
        assert source.ncnn_files is not None and source.descriptor is not None
        if precision == "int8":
            from srgan.inference.backends.int8 import ncnn_int8_files

            param, weights = ncnn_int8_files(source)
            return NcnnModel(source.descriptor, param, weights, "int8")
        param, weights = source.ncnn_files
        return NcnnModel(
            source.descriptor, param, weights, precision, conventions=source.conventions
        )

    def runner(
        self, model: AnyModel, threads: int, device: str, precision: str, spinning: bool = True
    ) -> Runner:
        assert isinstance(model, NcnnModel)
        return NcnnRunner(model, threads, spinning)

    def owns(self, model: AnyModel) -> bool:
        return isinstance(model, NcnnModel)


class NcnnRunner:
    """One loaded ncnn network; each call runs a [1, C, h, w] float32 tile.

    In fp32, ncnn's fp16 storage and arithmetic are turned off so that results match
    PyTorch's fp32 ones (within 1e-5 here); an fp16 model keeps them on, as ncnn's own
    programs do (weights and activations stored in fp16 where the CPU has the instructions
    for it: F16C on x86; less memory traffic, results within about 1e-3). An int8 model's
    convolutions run in int8 (their weights quantized by ncnn as it loads them). The
    model's conventions (padding, crop: `zoo.ncnn_conventions`) are applied around the
    network, and whole-image pool results, when set for this thread, are fed in place of
    the network's own.
    """

    def __init__(self, model: NcnnModel, threads: int | None = None, spinning: bool = True) -> None:
        import ncnn

        self._ncnn = ncnn
        self._statistics = model.statistics  # not the model: its runner goes with it
        self._forward = (
            wrap_forward(model.conventions, self._network) if model.conventions else self._network
        )
        self.net = ncnn.Net()
        options = self.net.opt
        options.use_vulkan_compute = False
        half = model.precision == "fp16"
        options.use_fp16_storage = half
        options.use_fp16_packed = half
        options.use_fp16_arithmetic = half
        options.use_bf16_storage = False
        options.use_int8_inference = model.precision == "int8"
        options.num_threads = threads or os.cpu_count() or 1
        if not spinning:  # idle OpenMP threads sleep at once instead of after 20 ms
            options.openmp_blocktime = 0
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
        pooled = self._statistics.get(threading.get_ident(), {})
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


def blob_maxima(
    model: NcnnModel, blobs: Mapping[str, str], tiles: Sequence[np.ndarray], threads: int
) -> dict[str, float]:
    """The largest magnitude of each named blob ({key: blob}) over fp32 runs on `tiles`."""
    runner = NcnnRunner(model, threads)
    maxima = dict.fromkeys(blobs, 0.0)
    for tile in tiles:
        planar = np.ascontiguousarray(tile[0], dtype=np.float32)
        with runner.net.create_extractor() as extractor:
            extractor.input(runner.input_name, runner._ncnn.Mat(planar))
            for key, blob in blobs.items():
                status, value = extractor.extract(blob)
                if status != 0:
                    raise RuntimeError(f"ncnn could not compute {blob} (status {status})")
                maxima[key] = max(maxima[key], float(np.abs(np.array(value)).max()))
    return maxima
