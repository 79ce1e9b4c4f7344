"""The protocol every backend follows, and what the rest of srgan knows of a backend."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    from srgan.inference.tiling import Forward
    from srgan.zoo.descriptor import LoadedModel
    from srgan.zoo.ncnn_model import NcnnModel
    from srgan.zoo.onnx_generic import GenericOnnx
    from srgan.zoo.onnx_model import OnnxModel
    from srgan.zoo.sources import ModelSource

AnyModel: TypeAlias = "LoadedModel | NcnnModel | OnnxModel | GenericOnnx"
Runner: TypeAlias = "Forward"
"""[1, C, h, w] float32 tile in [0, 1] -> [1, C, h*s, w*s]: what tiling calls."""


class Backend(Protocol):
    """A way to run models: PyTorch, ONNX Runtime, ncnn.

    `refusal` decides from a model's source alone (its descriptor and the forms it
    offers) whether this backend can run it; `prepare` makes the model ready (it may
    export or quantize it once, into the cache); `runner` makes the tile forward.
    """

    name: str
    modules: tuple[str, ...]  # importable modules it needs
    packages: tuple[str, ...]  # what `pip install` needs for them
    shares_threads: bool  # one runner's thread pool serves all parallel images
    # activations really are 16-bit in fp16/bf16 (ncnn's fp16 storage may keep some
    # layers in fp32, so its memory plan stays the fp32 one)
    half_activations: bool

    def refusal(self, source: ModelSource, device: str, precision: str) -> str | None:
        """Why this backend cannot run the model so; None when it can."""
        ...

    def prepare(self, source: ModelSource, device: str, precision: str) -> AnyModel: ...

    def runner(
        self, model: AnyModel, threads: int, device: str, precision: str, spinning: bool = True
    ) -> Runner:
        """`spinning`: idle threads wait busily (fastest alone; False leaves the cores to
        other stages, as in video)."""
        ...

    def owns(self, model: AnyModel) -> bool: ...


def installed(backend: Backend) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in backend.modules)


def version(backend: Backend) -> str | None:
    """The installed version of the backend's runtime (its first package), None if absent.
    Read from the package metadata: nothing is imported."""
    if not installed(backend):
        return None
    try:
        return importlib.metadata.version(backend.packages[0])
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
