"""The ONNX Runtime backend: CPU, fp32 (an export from PyTorch, cached) or int8 (that
export statically quantized, cached; see `int8`). Runs without importing PyTorch once
the cache holds the file."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan.zoo.ncnn_conventions import wrap_forward
from srgan.zoo.onnx_generic import GenericOnnx
from srgan.zoo.onnx_model import OnnxModel

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import onnxruntime

    from srgan.inference.backends.base import AnyModel, Runner
    from srgan.zoo.sources import ModelSource

PRECISIONS = ("fp32", "int8")


class OnnxBackend:
    name: str = "onnxruntime"
    modules: tuple[str, ...] = ("onnxruntime", "onnx")  # onnx: to export and quantize
    packages: tuple[str, ...] = ("onnxruntime", "onnx")
    shares_threads: bool = True
    half_activations: bool = False  # fp32 and int8 only

    def refusal(self, source: ModelSource, device: str, precision: str) -> str | None:
        if device != "cpu":
            return f"onnxruntime runs on the CPU here, not {device}"
        if precision not in PRECISIONS:
            return f"onnxruntime runs fp32 and int8, not {precision} (use --backend torch)"
        if source.onnx_export is not None:
            return None if precision == "fp32" else f"onnxruntime runs {source.name} in fp32 only"
        if source.onnx_file is not None and source.conventions is not None and precision != "fp32":
            return f"onnxruntime runs {source.name} (a converted family model) in fp32 only"
        if source.onnx_file is not None:
            return None  # an int8 file runs in int8 whatever the precision asked
        if source.load_torch is None or not source.is_network:
            return f"{source.name} cannot be exported to ONNX (not an image network)"
        return None

    def prepare(self, source: ModelSource, device: str, precision: str) -> AnyModel:
        from srgan.zoo.onnx_model import exported_onnx

        assert source.descriptor is not None
        if source.onnx_export is not None:  # an sr-vulkan family: the runner pads and crops
            export = source.onnx_export
            return OnnxModel(
                source.descriptor,
                export(False),
                conventions=source.conventions,
                with_statistics=lambda: export(True),
            )
        if source.onnx_file is not None and precision in (source.onnx_precision, "fp32"):
            return OnnxModel(
                source.descriptor,
                source.onnx_file,
                source.onnx_precision,
                conventions=source.conventions,  # a converted Real-CUGAN / waifu2x / RealSR
            )
        fp32 = source.onnx_file or exported_onnx(source)
        if precision == "int8":
            from srgan.inference.backends.int8 import quantized_model

            return OnnxModel(source.descriptor, quantized_model(source, fp32), "int8")
        return OnnxModel(source.descriptor, fp32)

    def runner(
        self, model: AnyModel, threads: int, device: str, precision: str, spinning: bool = True
    ) -> Runner:
        if isinstance(model, GenericOnnx):
            from srgan.inference.onnx_generic import GenericOnnxRunner

            return GenericOnnxRunner(model, threads, spinning)
        assert isinstance(model, OnnxModel)
        return OrtRunner(model, threads, spinning)

    def owns(self, model: AnyModel) -> bool:
        return isinstance(model, OnnxModel | GenericOnnx)  # srgan's exports, any ONNX file


class OrtRunner:
    """One ONNX Runtime session; each call runs a [1, C, h, w] float32 tile. Sessions are
    safe to call from several threads at once (parallel images share one).

    ONNX Runtime's graph optimisations (fusions, and the blocked NCHWc layout for this
    CPU's vector width) take longer than the rest of the start-up, so the optimised graph
    is cached per CPU and ONNX Runtime version and later sessions load it as it is.

    The model's conventions are applied around the network; while whole-image pool results
    are set for this thread, a second export that takes them as inputs runs instead."""

    def __init__(self, model: OnnxModel, threads: int | None = None, spinning: bool = True) -> None:
        # Not the model itself: callers drop a model's runner when the model goes.
        self._name = model.name
        self._statistics = model.statistics
        self._statistics_file = model.with_statistics
        self.threads = threads or os.cpu_count() or 1
        self.spinning = spinning
        self.session = self._session(model.path)
        self.input_name = self.session.get_inputs()[0].name
        self._with_statistics: onnxruntime.InferenceSession | None = None
        self._lock = threading.Lock()
        self._forward = (
            wrap_forward(model.conventions, self._network) if model.conventions else self._network
        )

    def _session(self, model_path: Path) -> onnxruntime.InferenceSession:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        if not self.spinning:  # idle threads sleep: the cores go to other stages (video)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        path = optimized_graph(model_path)
        if path is not None:
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        return onnxruntime.InferenceSession(
            str(path or model_path), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return self._forward(tile)

    def _network(self, tile: np.ndarray) -> np.ndarray:
        feed = {self.input_name: np.ascontiguousarray(tile)}
        pooled = self._statistics.get(threading.get_ident())
        session = self.session
        if pooled:
            session = self._statistics_session()
            feed.update({k: np.ascontiguousarray(v, np.float32)[None] for k, v in pooled.items()})
        (output,) = session.run(None, feed)
        return np.asarray(output)

    def _statistics_session(self) -> onnxruntime.InferenceSession:
        with self._lock:
            if self._with_statistics is None:
                if self._statistics_file is None:
                    raise ValueError(f"{self._name}: no export with pool inputs")
                self._with_statistics = self._session(self._statistics_file())
            return self._with_statistics


def optimized_graph(path: Path) -> Path | None:
    """`path` as ONNX Runtime optimises it for this CPU, cached; None if it cannot be."""
    import onnxruntime

    from srgan.errors import SrganError
    from srgan.inference.machine import cpu_signature
    from srgan.zoo.cache import cached_file
    from srgan.zoo.digests import file_digest

    def build(target: Path) -> None:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.optimized_model_filepath = str(target)
        onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    name = f"{path.stem[:80]}-{file_digest(path)[:12]}"
    try:
        return cached_file(f"{name}.ort{onnxruntime.__version__}-{cpu_signature()}.onnx", build)
    except (OSError, SrganError) as exc:
        log.info("optimised ONNX graph not cached (%s)", exc)
        return None
