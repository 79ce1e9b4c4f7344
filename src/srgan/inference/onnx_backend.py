"""Running exported models with ONNX Runtime on the CPU, without importing PyTorch."""

from __future__ import annotations

import os

import numpy as np

from srgan.zoo.onnx_model import OnnxModel


class OrtRunner:
    """One ONNX Runtime session; each call runs a [1, C, h, w] float32 tile in fp32."""

    def __init__(self, model: OnnxModel, threads: int | None = None, spinning: bool = True) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        if not spinning:  # idle threads sleep: the cores go to other stages (video)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(
            str(model.path), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        (output,) = self.session.run(None, {self.input_name: np.ascontiguousarray(tile)})
        return output
