"""Choose how a model runs: PyTorch (any device, any weights), ONNX Runtime (CPU, the named
models exported once to ONNX) or the ncnn runtime (CPU, the named models' original files).
The last two never import PyTorch once set up, which saves start-up time."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from srgan.errors import BadInputError, SrganError
from srgan.zoo.cache import cached_file
from srgan.zoo.descriptor import ModelDescriptor
from srgan.zoo.ncnn_families import NcnnVariant, is_family_name, resolve
from srgan.zoo.ncnn_model import NcnnModel
from srgan.zoo.onnx_generic import GenericOnnx, OnnxHints
from srgan.zoo.onnx_model import ONNX_OPSET, OnnxModel, export_onnx
from srgan.zoo.pretrained import PRETRAINED, PretrainedModel, ncnn_files

if TYPE_CHECKING:
    from srgan.zoo.descriptor import LoadedModel

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "ncnn")
# `auto` tries them in this order. Measured here (benchmarks/ncnn_ratio.py, srgan
# benchmark): ONNX Runtime is clearly faster on RRDBNet, the two are close on the compact
# model, and both beat PyTorch on the CPU.
CPU_BACKENDS = ("onnxruntime", "ncnn")
_PACKAGES = {"onnxruntime": ("onnxruntime", "onnx"), "ncnn": ("ncnn",)}  # onnx: to export


def installed(backend: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in _PACKAGES[backend])


def ncnn_installed() -> bool:
    return installed("ncnn")


def choose_backend(name: str, device: str, precision: str, backend: str) -> str:
    """`auto` runs named models (the sr-vulkan families too) on the CPU in fp32 with ONNX
    Runtime, else ncnn, when installed; everything else with PyTorch. Explicit choices are
    checked."""
    if backend not in BACKENDS:
        raise BadInputError(f"--backend {backend!r}: use {', '.join(BACKENDS)}")
    if backend == "torch":
        return "torch"
    if backend == "auto":
        named = name in PRETRAINED or is_family_name(name)
        if named and device == "cpu" and precision == "fp32":
            return next((b for b in CPU_BACKENDS if installed(b)), "torch")
        return "torch"
    if name not in PRETRAINED and not is_family_name(name):
        raise BadInputError(
            f"--backend {backend} runs the named models ({', '.join(PRETRAINED)}, and the "
            f"Real-CUGAN, waifu2x and RealSR families), not {name!r}"
        )
    if device != "cpu":
        raise BadInputError(f"--backend {backend} runs on the CPU, not {device}")
    if precision != "fp32":
        raise BadInputError(f"--backend {backend} runs in fp32: drop --half/--bf16")
    if not installed(backend):
        packages = " ".join(_PACKAGES[backend])
        raise BadInputError(f"--backend {backend} needs: pip install {packages}")
    return backend


def open_model(
    name_or_path: str,
    scale: float | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    backend: str = "auto",
    onnx: OnnxHints | None = None,
) -> LoadedModel | NcnnModel | OnnxModel | GenericOnnx:
    """A model ready for `srgan.inference.upscaler`, on the backend `choose_backend` picks;
    an .onnx file runs as it is with ONNX Runtime, whatever its architecture (`onnx`: what
    the user says about its input)."""
    if is_onnx_file(name_or_path):
        return open_onnx_file(Path(name_or_path), scale, device, precision, backend, onnx)
    chosen = choose_backend(name_or_path, device, precision, backend)
    if chosen == "torch":
        from srgan.zoo.registry import load_model

        return load_model(name_or_path, scale, device)
    if name_or_path not in PRETRAINED:
        return _open_variant(resolve(name_or_path, scale), chosen)
    spec = PRETRAINED[name_or_path]
    if scale is not None and scale != spec.scale:
        raise BadInputError(
            f"model {spec.name} upscales x{spec.scale}; --scale {scale:g} does not match "
            "(use --outscale for other output sizes)"
        )
    descriptor = ModelDescriptor(
        name=spec.name,
        architecture=spec.architecture,
        scale=spec.scale,
        in_channels=3,
        supports_half=False,
        supports_bf16=False,
        memory_per_pixel=spec.memory_per_pixel,
    )
    if chosen == "onnxruntime":
        try:
            return OnnxModel(descriptor, onnx_file(spec))
        except SrganError as exc:
            if backend != "auto":
                raise
            log.warning("%s; running without ONNX Runtime", exc)
            if not installed("ncnn"):
                from srgan.zoo.registry import load_model

                return load_model(name_or_path, scale, device)
    param, weights = ncnn_files(spec)
    return NcnnModel(descriptor, param, weights)


def _open_variant(variant: NcnnVariant, backend: str) -> NcnnModel | OnnxModel:
    """A Real-CUGAN / waifu2x / RealSR model on ncnn (its original files) or ONNX Runtime
    (the PyTorch network exported once), with its family's conventions around it."""
    descriptor = variant.descriptor()
    conventions = variant.conventions()
    if backend == "onnxruntime":
        return OnnxModel(descriptor, variant_onnx_file(variant), conventions)
    param, weights = variant.files()
    return NcnnModel(descriptor, param, weights, conventions)


def variant_onnx_file(variant: NcnnVariant, with_statistics: bool = False) -> Path:
    """The bare network of a family model as ONNX in the cache, exported on first use; with
    ``with_statistics`` its global pools' results are inputs (see `global_stats`)."""
    from srgan.zoo.cache import sha256_file

    _, weights = variant.files()
    digest = sha256_file(weights)[:12]  # a new package version exports again
    kind = "-stats" if with_statistics else ""

    def build(path: Path) -> None:
        from srgan.zoo.ncnn_loader import export_variant_onnx

        export_variant_onnx(variant, path, with_statistics)

    return cached_file(f"{variant.name}-{digest}{kind}-opset{ONNX_OPSET}.onnx", build, check_onnx)


def is_onnx_file(name_or_path: str) -> bool:
    return name_or_path not in PRETRAINED and Path(name_or_path).suffix.lower() == ".onnx"


def open_onnx_file(
    path: Path,
    scale: float | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    backend: str = "auto",
    hints: OnnxHints | None = None,
) -> GenericOnnx:
    """An ONNX file of any single-image architecture, checked and measured for ONNX Runtime."""
    from srgan.zoo.onnx_generic import open_generic_onnx

    if backend not in ("auto", "onnxruntime"):
        raise BadInputError(f"{path}: an ONNX file runs with ONNX Runtime, not --backend {backend}")
    if precision != "fp32":
        raise BadInputError(
            f"{path}: an ONNX file runs in the precision it was saved in: drop --half/--bf16 "
            "(srgan convert --fp16 makes a half-precision file)"
        )
    if not installed("onnxruntime"):
        raise BadInputError(f"{path}: ONNX files need: pip install onnxruntime onnx")
    if not path.is_file():
        raise BadInputError(f"{path}: no such model file")
    if _srgan_video_network(path):
        return _video_network_from_onnx(path, scale, device)  # type: ignore[return-value]
    if device != "cpu":
        log.warning("%s: ONNX files run on the CPU with ONNX Runtime, not on %s", path, device)
    hints = hints or OnnxHints()
    model = open_generic_onnx(path, hints.layout, hints.value_range, hints.channel_order)
    if scale is not None and scale != model.scale:
        raise BadInputError(
            f"model {model.name} upscales x{model.scale:g}; --scale {scale:g} does not match "
            "(use --outscale for other output sizes)"
        )
    return model


def _srgan_video_network(path: Path) -> bool:
    """An srgan-written ONNX file of its video network (`srgan convert --frames N`)."""
    from srgan.zoo.onnx_weights import load_onnx, metadata

    return metadata(load_onnx(path)).get("srgan.layout") == "NTCHW"


def _video_network_from_onnx(path: Path, scale: float | None, device: str) -> LoadedModel:
    """srgan's video network takes windows of any length, which its ONNX export (a fixed
    number of frames) cannot: it runs in PyTorch from the weights the file carries."""
    from srgan.zoo.onnx_weights import onnx_to_state_dict
    from srgan.zoo.registry import build

    architecture, hyperparameters, state = onnx_to_state_dict(path)
    loaded = build(path.stem, architecture, hyperparameters, state)
    if scale is not None and scale != loaded.scale:
        raise BadInputError(
            f"model {loaded.name} upscales x{loaded.scale:g}; --scale {scale:g} does not match"
        )
    log.info("%s: srgan's video network, run in PyTorch from the file's weights", path)
    loaded.module.to(device)
    return loaded


def onnx_file(spec: PretrainedModel) -> Path:
    """The named model as ONNX in the cache, exported from PyTorch on first use."""

    def build(path: Path) -> None:
        from srgan.zoo.registry import load_model

        export_onnx(load_model(spec.name).module, path)

    return cached_file(f"{spec.cache_key}-opset{ONNX_OPSET}.onnx", build, check_onnx)


def check_onnx(path: Path) -> None:
    """Raise unless `path` is a well-formed ONNX model (as fast as hashing it)."""
    import onnx

    onnx.checker.check_model(str(path))
