"""`--model FILE.onnx`: an ONNX file srgan wrote (its export or `srgan quantize`, with
srgan's descriptor in the metadata) is a model source like any weights file, on the
backend chosen by measurement (`srgan.zoo.onnx_file`); any other single-image ONNX model
runs as it is with ONNX Runtime, its conventions read from the graph or measured
(`srgan.zoo.onnx_generic`)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from srgan.errors import BadInputError
from srgan.zoo.onnx_generic import GenericOnnx, OnnxHints
from srgan.zoo.onnx_model import DESCRIPTOR_KEY, PRECISION_KEY
from srgan.zoo.pretrained import PRETRAINED

if TYPE_CHECKING:
    from srgan.zoo.descriptor import LoadedModel

log = logging.getLogger(__name__)

_VIDEO_LAYOUT_KEY = "srgan.layout"


def is_onnx_file(name_or_path: str) -> bool:
    return name_or_path not in PRETRAINED and Path(name_or_path).suffix.lower() == ".onnx"


def onnx_metadata(path: Path) -> dict[str, str]:
    """The file's metadata, read without its tensors' external data; {} when there is no
    readable file or no `onnx` package (the opener that follows says why)."""
    if importlib.util.find_spec("onnx") is None or not path.is_file():
        return {}
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # protobuf's DecodeError and friends
        return {}
    return {prop.key: prop.value for prop in model.metadata_props}


def is_srgan_image_onnx(metadata: dict[str, str]) -> bool:
    """Metadata of an fp32 or int8 image-model ONNX file with srgan's descriptor (srgan's
    own export, `srgan quantize`, `srgan convert`): a model source whose memory and scale
    are known."""
    return (
        DESCRIPTOR_KEY in metadata
        and metadata.get(PRECISION_KEY, "fp32") in ("fp32", "int8")
        and metadata.get(_VIDEO_LAYOUT_KEY) != "NTCHW"
    )


def open_onnx_file(
    path: Path,
    scale: float | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    backend: str = "auto",
    hints: OnnxHints | None = None,
    metadata: dict[str, str] | None = None,
) -> GenericOnnx | LoadedModel:
    """An ONNX file of any single-image architecture, checked and measured for ONNX Runtime
    (`metadata`: the file's, when the caller has read it already)."""
    from srgan.zoo.onnx_generic import open_generic_onnx

    if backend not in ("auto", "onnxruntime"):
        raise BadInputError(f"{path}: an ONNX file runs with ONNX Runtime, not --backend {backend}")
    if precision != "fp32":
        raise BadInputError(
            f"{path}: an ONNX file runs in the precision it was saved in: drop --half/--bf16 "
            "(srgan convert --fp16 makes a half-precision file)"
        )
    if any(importlib.util.find_spec(name) is None for name in ("onnxruntime", "onnx")):
        raise BadInputError(f"{path}: ONNX files need: pip install onnxruntime onnx")
    if not path.is_file():
        raise BadInputError(f"{path}: no such model file")
    if metadata is None:
        metadata = onnx_metadata(path)
    if metadata.get(_VIDEO_LAYOUT_KEY) == "NTCHW":
        return _video_network_from_onnx(path, scale, device)
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
