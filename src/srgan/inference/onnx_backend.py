"""Running exported models with ONNX Runtime on the CPU, without importing PyTorch."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from srgan.zoo.ncnn_conventions import wrap_forward
from srgan.zoo.onnx_model import OnnxModel


class OrtRunner:
    """One ONNX Runtime session; each call runs a [1, C, h, w] float32 tile in fp32.

    The model's conventions are applied around the network; while whole-image pool results
    are set for this thread, a second export that takes them as inputs runs instead."""

    def __init__(self, model: OnnxModel, threads: int | None = None) -> None:
        self.model = model
        self.threads = threads or os.cpu_count() or 1
        self.session = self._session(model.path)
        self.input_name = self.session.get_inputs()[0].name
        self._with_statistics = None
        self._lock = threading.Lock()
        self._forward = (
            wrap_forward(model.conventions, self._network) if model.conventions else self._network
        )

    def _session(self, path: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return self._forward(tile)

    def _network(self, tile: np.ndarray) -> np.ndarray:
        feed = {self.input_name: np.ascontiguousarray(tile)}
        pooled = self.model.statistics.get(threading.get_ident())
        session = self.session
        if pooled:
            session = self._statistics_session()
            feed.update({k: np.ascontiguousarray(v, np.float32)[None] for k, v in pooled.items()})
        (output,) = session.run(None, feed)
        return np.asarray(output)

    def _statistics_session(self):
        with self._lock:
            if self._with_statistics is None:
                from srgan.zoo.ncnn_families import find_variant
                from srgan.zoo.selection import variant_onnx_file

                variant = find_variant(self.model.name)
                if variant is None:
                    raise ValueError(f"{self.model.name}: no export with pool inputs")
                self._with_statistics = self._session(variant_onnx_file(variant, True))
            return self._with_statistics
