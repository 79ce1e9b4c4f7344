"""Choose how a model runs: PyTorch (any device, any weights) or the ncnn runtime (CPU,
the named models' original files; no PyTorch import, faster start-up and inference)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from srgan.errors import BadInputError
from srgan.zoo.descriptor import ModelDescriptor
from srgan.zoo.ncnn_model import NcnnModel
from srgan.zoo.pretrained import PRETRAINED, ncnn_files

if TYPE_CHECKING:
    from srgan.zoo.descriptor import LoadedModel

BACKENDS = ("auto", "torch", "ncnn")


def ncnn_installed() -> bool:
    return importlib.util.find_spec("ncnn") is not None


def uses_ncnn(name: str, device: str, precision: str, backend: str) -> bool:
    """`auto` takes ncnn for named models on the CPU in fp32 when the runtime is there."""
    if backend not in BACKENDS:
        raise BadInputError(f"--backend {backend!r}: use {', '.join(BACKENDS)}")
    if backend == "torch":
        return False
    if backend == "auto":
        return name in PRETRAINED and device == "cpu" and precision == "fp32" and ncnn_installed()
    if name not in PRETRAINED:
        raise BadInputError(
            f"--backend ncnn runs the named models ({', '.join(PRETRAINED)}), not {name!r}"
        )
    if device != "cpu":
        raise BadInputError(f"--backend ncnn runs on the CPU, not {device}")
    if precision != "fp32":
        raise BadInputError("--backend ncnn runs in fp32: drop --half/--bf16")
    if not ncnn_installed():
        raise BadInputError("--backend ncnn needs the ncnn package: pip install ncnn")
    return True


def open_model(
    name_or_path: str,
    scale: float | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    backend: str = "auto",
) -> LoadedModel | NcnnModel:
    """A model ready for `srgan.inference.upscaler`, on the backend chosen by `uses_ncnn`."""
    if not uses_ncnn(name_or_path, device, precision, backend):
        from srgan.zoo.registry import load_model

        return load_model(name_or_path, scale, device)
    spec = PRETRAINED[name_or_path]
    if scale is not None and scale != spec.scale:
        raise BadInputError(
            f"model {spec.name} upscales x{spec.scale}; --scale {scale:g} does not match "
            "(use --outscale for other output sizes)"
        )
    param, weights = ncnn_files(spec)
    descriptor = ModelDescriptor(
        name=spec.name,
        architecture=spec.architecture,
        scale=spec.scale,
        in_channels=3,
        supports_half=False,
        supports_bf16=False,
        memory_per_pixel=spec.memory_per_pixel,
    )
    return NcnnModel(descriptor, param, weights)
