"""The ONNX Runtime backend: CPU, fp32 (an export from PyTorch, cached) or int8 (that
export statically quantized, cached; see `int8`). Runs without importing PyTorch once
the cache holds the file."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from srgan.zoo.onnx_model import OnnxModel

if TYPE_CHECKING:
    from srgan.inference.backends.base import AnyModel, Runner
    from srgan.zoo.sources import ModelSource

PRECISIONS = ("fp32", "int8")


class OnnxBackend:
    name = "onnxruntime"
    modules = ("onnxruntime", "onnx")  # onnx: to export and quantize
    packages = ("onnxruntime", "onnx")
    shares_threads = True

    def refusal(self, source: ModelSource, device: str, precision: str) -> str | None:
        if device != "cpu":
            return f"onnxruntime runs on the CPU here, not {device}"
        if precision not in PRECISIONS:
            return f"onnxruntime runs fp32 and int8, not {precision} (use --backend torch)"
        if source.onnx_file is not None:
            return None  # an int8 file runs in int8 whatever the precision asked
        if source.load_torch is None or not source.is_network:
            return f"{source.name} cannot be exported to ONNX (not an image network)"
        return None

    def prepare(self, source: ModelSource, device: str, precision: str) -> AnyModel:
        from srgan.zoo.onnx_model import exported_onnx

        assert source.descriptor is not None
        if source.onnx_file is not None and precision in (source.onnx_precision, "fp32"):
            return OnnxModel(source.descriptor, source.onnx_file, source.onnx_precision)
        fp32 = source.onnx_file or exported_onnx(source)
        if precision == "int8":
            from srgan.inference.backends.int8 import quantized_model

            return OnnxModel(source.descriptor, quantized_model(source, fp32), "int8")
        return OnnxModel(source.descriptor, fp32)

    def runner(self, model: AnyModel, threads: int, device: str, precision: str) -> Runner:
        assert isinstance(model, OnnxModel)
        return OrtRunner(model, threads)

    def owns(self, model: AnyModel) -> bool:
        return isinstance(model, OnnxModel)


class OrtRunner:
    """One ONNX Runtime session; each call runs a [1, C, h, w] float32 tile. Sessions are
    safe to call from several threads at once (parallel images share one)."""

    def __init__(self, model: OnnxModel, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(
            str(model.path), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        (output,) = self.session.run(None, {self.input_name: np.ascontiguousarray(tile)})
        return output
