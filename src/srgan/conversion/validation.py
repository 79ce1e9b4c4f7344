"""Run a model as a given format says, on a probe image, with that format's own runtime:
PyTorch for .pth/.safetensors, ONNX Runtime for .onnx, the `ncnn` package for ncnn files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srgan.conversion.formats import RUNTIME, ncnn_weights
from srgan.conversion.network import Network

PROBE_SIZE = 48
PROBE_FRAMES = 3
THREADS = 2


@dataclass(frozen=True)
class Difference:
    max_abs: float
    mean_abs: float


def probe(channels: int, size: int, multiple: int = 1, frames: int | None = None) -> np.ndarray:
    """A deterministic [1, C, s, s] float32 image in [0, 1] (gradients, edges, texture and
    a saturated patch), or [1, T, C, s, s] frames of it panning; s is `size` rounded up to
    a multiple of `multiple`."""
    side = -(-max(size, 8) // multiple) * multiple
    rng = np.random.default_rng(20240601)
    span = side + 2 * (frames or 1)
    y, x = np.mgrid[0:span, 0:span].astype(np.float32) / span
    planes = [
        0.5 + 0.4 * np.sin(7 * x + 3 * y + phase) * np.cos(5 * y - phase)
        for phase in (0.0, 1.3, 2.6)
    ]
    image = np.stack(planes)
    image[:, span // 4 : span // 2, span // 3 : span // 2] = np.array([0.95, 0.1, 0.05])[
        :, None, None
    ]
    image += rng.normal(0, 0.04, image.shape).astype(np.float32)
    image = np.clip(image, 0, 1)
    if channels == 1:
        image = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    if frames is None:
        return np.ascontiguousarray(image[None, :, :side, :side], dtype=np.float32)
    clip = [image[:, t : t + side, 2 * t : 2 * t + side] for t in range(frames)]
    return np.ascontiguousarray(np.stack(clip)[None], dtype=np.float32)


def run_format(fmt: str, path: Path | None, network: Network, x: np.ndarray) -> np.ndarray:
    """The output of the model in `fmt` on `x`: torch runs `network` (built from the file
    `path` was read into), ONNX Runtime and ncnn run the file at `path` itself."""
    runtime = RUNTIME[fmt]
    if runtime == "torch":
        return run_torch(network, x)
    assert path is not None
    if runtime == "onnxruntime":
        return run_onnx(path, x)
    return run_ncnn(path, ncnn_weights(path), x)


def run_torch(network: Network, x: np.ndarray) -> np.ndarray:
    import torch

    from srgan.inference.batch import torch_threads

    module = network.loaded.module
    with torch_threads(THREADS), torch.no_grad():
        return module(torch.from_numpy(x)).float().numpy()


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    dtype = np.float16 if first.type == "tensor(float16)" else np.float32
    (output,) = session.run(None, {first.name: x.astype(dtype)})
    return np.asarray(output, dtype=np.float32)


def run_ncnn(param: Path, weights: Path, x: np.ndarray) -> np.ndarray:
    from srgan.inference.backends.ncnn import NcnnRunner
    from srgan.zoo.descriptor import ModelDescriptor
    from srgan.zoo.ncnn_model import NcnnModel

    model = NcnnModel(ModelDescriptor(param.stem, "ncnn", 1), param, weights)
    return NcnnRunner(model, THREADS)(x)


def difference(reference: np.ndarray, result: np.ndarray) -> Difference:
    if reference.shape != result.shape:
        raise ValueError(f"outputs of shapes {reference.shape} and {result.shape}")
    delta = np.abs(reference.astype(np.float64) - result.astype(np.float64))
    if not np.isfinite(delta).all():
        return Difference(float("inf"), float("inf"))
    return Difference(float(delta.max()), float(delta.mean()))
