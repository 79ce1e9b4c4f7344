"""Turn a model name or file into a ready `LoadedModel`."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from srgan.defaults import DEFAULT_BICUBIC_SCALE
from srgan.errors import BadInputError
from srgan.zoo.architectures import BY_NAME, Hyperparameters, detect
from srgan.zoo.bicubic import load_bicubic
from srgan.zoo.cache import CachedWeights
from srgan.zoo.descriptor import LoadedModel, ModelDescriptor
from srgan.zoo.ncnn_families import is_family_name, resolve
from srgan.zoo.pretrained import PRETRAINED, load_pretrained_weights
from srgan.zoo.run_folders import generator_in
from srgan.zoo.sources import KNOWN_MODELS, WEIGHT_SUFFIXES
from srgan.zoo.weight_files import read_state_dict

log = logging.getLogger(__name__)


def load_model(
    name_or_path: str, scale: float | None = None, device: str | torch.device = "cpu"
) -> LoadedModel:
    """A named model (`bicubic`, `natural`, `anime`, `anime-video`, `anime-cugan`,
    `waifu2x-cunet`, ... or a variant such as `anime-cugan-x3-denoise3`) or a weights file
    (.pth, .safetensors, or an ncnn .param with its .bin beside it).

    `scale` picks the factor of scale-free models (bicubic, default 4), the file of the
    families with several scales, and must match the scale of other trained ones. The
    denoise level of a family is chosen by its variant name (see `ncnn_families.resolve`)."""
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise BadInputError(f"--scale must be a positive number, got {scale}")
    if name_or_path == "bicubic":
        chosen = DEFAULT_BICUBIC_SCALE if scale is None else scale
        return load_bicubic(chosen)
    if name_or_path in PRETRAINED:
        spec = PRETRAINED[name_or_path]
        built: list[LoadedModel] = []

        def builds(entry: CachedWeights) -> None:  # a cache entry that does not is damaged
            built.append(
                build(spec.name, entry.architecture, entry.hyperparameters, entry.state_dict)
            )

        load_pretrained_weights(spec, builds)
        loaded = built[-1]
    elif is_family_name(name_or_path):  # Real-CUGAN, waifu2x, RealSR: the scale picks the file
        from srgan.zoo.ncnn_loader import load_variant

        loaded = load_variant(resolve(name_or_path, scale))
    elif Path(name_or_path).suffix.lower() in WEIGHT_SUFFIXES or Path(name_or_path).exists():
        loaded = load_file(Path(name_or_path))
    else:
        known = ", ".join(KNOWN_MODELS)
        raise BadInputError(
            f"unknown model {name_or_path!r} (known: {known}, and variants such as "
            "anime-cugan-x3-denoise3 (srgan models); or a .pth/.safetensors/.param/.onnx file)"
        )
    if scale is not None and scale != loaded.scale:
        raise BadInputError(
            f"model {loaded.name} upscales x{loaded.scale:g}; --scale {scale:g} does not match "
            "(use --outscale for other output sizes)"
        )
    loaded.module.to(device)
    return loaded


def build(
    name: str,
    architecture: str,
    hyperparameters: Hyperparameters,
    state_dict: dict,
    source: str | Path | None = None,
) -> LoadedModel:
    """The eval-mode network of `architecture` with `state_dict`'s weights. Its
    hyper-parameters and the file's keys and shapes are checked before anything is
    allocated; BadInputError names `source` (default `name`) and what is wrong."""
    arch = BY_NAME[architecture]
    where = source or name
    implausible = arch.out_of_range(hyperparameters)
    if implausible:
        raise BadInputError(f"{where}: not a plausible {architecture} ({implausible})")
    in_channels, out_channels = (
        arch.in_channels(hyperparameters),
        arch.out_channels(hyperparameters),
    )
    if in_channels != out_channels or in_channels not in (1, 3):
        raise BadInputError(
            f"{where}: a {architecture} with {in_channels} input and {out_channels} output "
            "channels; srgan runs gray (1 -> 1) and colour (3 -> 3) models"
        )
    try:
        module = arch.load(state_dict, hyperparameters)
    except ValueError as exc:  # keys or shapes that do not fit
        raise BadInputError(f"{where}: looks like {architecture} but {exc}") from exc
    except RuntimeError as exc:  # e.g. a dtype that does not convert
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) < 300 else detail[:297] + "..."
        raise BadInputError(
            f"{where}: looks like {architecture} but does not load ({detail})"
        ) from exc
    module.eval().requires_grad_(False)
    descriptor = ModelDescriptor(
        name=name,
        architecture=architecture,
        scale=arch.scale(hyperparameters),
        in_channels=in_channels,
        size_multiple=arch.size_multiple(hyperparameters),
        parameters=sum(p.numel() for p in module.parameters()),
        memory_per_pixel=arch.memory_per_pixel(hyperparameters),
        temporal=arch.temporal,
    )
    return LoadedModel(module, descriptor)


def load_file(path: Path) -> LoadedModel:
    if path.is_dir():
        path = generator_in(path)
    if not path.is_file():
        if path.exists():  # a FIFO or a device would block or never end
            raise BadInputError(f"{path}: not a regular file (a model is a weights file)")
        raise BadInputError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        raise BadInputError(f"{path}: an ONNX file runs on onnxruntime, not PyTorch")
    if suffix == ".param":
        from srgan.zoo.ncnn_loader import load_ncnn_file

        weights = path.with_suffix(".bin")
        if not weights.is_file():
            raise BadInputError(f"{path}: its weights {weights.name} are not beside it")
        return load_ncnn_file(path, weights)
    state = read_state_dict(path)
    found = detect(state)
    if found is None:
        names = ", ".join(BY_NAME)
        raise BadInputError(f"{path}: weights match no supported architecture ({names})")
    arch, hyperparameters = found
    log.info("%s: recognised %s %s", path, arch.name, hyperparameters)
    return build(path.stem, arch.name, hyperparameters, state, source=path)
