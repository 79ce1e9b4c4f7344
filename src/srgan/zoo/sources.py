"""What a model offers the backends, told without importing PyTorch where possible.

A `ModelSource` names a model (a named one or a file), identifies its weights (name + a
digest: the key of every cache built from them), gives its descriptor when that is known
without loading it, and lists the forms it can run in: a PyTorch loader, original ncnn
files, a ready ONNX file. The backends (`srgan.inference.backends`) decide from these
facts alone which of them can run the model; nothing there looks at a model's name.

A file's descriptor becomes known the first time PyTorch loads it; it is then kept in the
cache (`models/<identity>.descriptor.json`) so that later runs on ONNX Runtime or ncnn
start without PyTorch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from srgan.defaults import DEFAULT_BICUBIC_SCALE
from srgan.errors import BadInputError, SrganError
from srgan.zoo.cache import cache_dir
from srgan.zoo.descriptor import INTERPRETED_GRAPH, ModelDescriptor
from srgan.zoo.digests import file_digest
from srgan.zoo.ncnn_conventions import Conventions
from srgan.zoo.ncnn_families import FAMILIES, NcnnVariant, is_family_name, resolve
from srgan.zoo.pretrained import PRETRAINED, PretrainedModel, ncnn_files
from srgan.zoo.run_folders import generator_in

if TYPE_CHECKING:
    from srgan.zoo.descriptor import LoadedModel

WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".param", ".onnx")
KNOWN_MODELS = ("bicubic", *PRETRAINED, *FAMILIES)


@dataclass(frozen=True)
class ModelSource:
    """A model before it is loaded, as the backends see it."""

    name: str
    identity: str  # safe in file names; changes whenever the weights change
    descriptor: ModelDescriptor | None  # None: known once PyTorch has loaded the model
    load_torch: Callable[[], LoadedModel] | None = None  # imports PyTorch
    ncnn_files: tuple[Path, Path] | None = None  # (.param, .bin) for the ncnn runtime
    onnx_file: Path | None = None  # a ready ONNX file (instead of an export from PyTorch)
    onnx_precision: str = "fp32"  # the ready file's precision: "int8" once quantized
    # The sr-vulkan families (Real-CUGAN, waifu2x, RealSR): what their reference programs
    # do around the network (padding, crop), done by the ncnn and ONNX Runtime runners,
    # and the bare network as ONNX, exported once (True: its global pools' results as
    # inputs, see `global_stats`).
    conventions: Conventions | None = None
    onnx_export: Callable[[bool], Path] | None = None
    # a user's .param (with its .bin) that srgan's parser has not read yet: the ncnn
    # runtime gets it once `load_torch` (which parses and checks it) has run
    unchecked_ncnn: tuple[Path, Path] | None = None

    @property
    def is_network(self) -> bool:
        """A trained image network (not bicubic, not a video model): what ONNX and ncnn run."""
        d = self.descriptor
        return d is not None and d.in_channels in (1, 3) and not d.temporal

    def with_descriptor(self, descriptor: ModelDescriptor) -> ModelSource:
        from dataclasses import replace

        return replace(self, descriptor=descriptor)


def resolve_source(name_or_path: str, scale: float | None = None) -> ModelSource:
    """The source of a named model (`bicubic`, `natural`, ...) or of a weights file
    (.pth/.pt/.ckpt/.safetensors, an ncnn .param with its .bin, an .onnx file srgan wrote,
    or a training checkpoint/run folder). BadInputError for unknown names and bad scales."""
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise BadInputError(f"--scale must be a positive number, got {scale}")
    if name_or_path == "bicubic":
        return _bicubic_source(DEFAULT_BICUBIC_SCALE if scale is None else scale)
    if name_or_path in PRETRAINED:
        source = _pretrained_source(PRETRAINED[name_or_path], scale)
    elif is_family_name(name_or_path):  # the scale picks the family's file
        return family_source(resolve(name_or_path, scale))
    elif Path(name_or_path).suffix.lower() in WEIGHT_SUFFIXES or Path(name_or_path).exists():
        source = _file_source(Path(name_or_path), scale)
    else:
        known = ", ".join(KNOWN_MODELS)
        raise BadInputError(
            f"unknown model {name_or_path!r} (known: {known}, and variants such as "
            "anime-cugan-x3-denoise3 (srgan models); or a .pth/.safetensors/.param/.onnx file)"
        )
    if source.descriptor is not None:
        check_scale(source.descriptor, scale)
    return source


def check_scale(descriptor: ModelDescriptor, scale: float | None) -> None:
    if scale is not None and scale != descriptor.scale:
        raise BadInputError(
            f"model {descriptor.name} upscales x{descriptor.scale:g}; --scale {scale:g} does "
            "not match (use --outscale for other output sizes)"
        )


def _bicubic_source(scale: float) -> ModelSource:
    def load() -> LoadedModel:
        from srgan.zoo.bicubic import load_bicubic

        return load_bicubic(scale)

    return ModelSource("bicubic", f"bicubic-x{scale:g}", None, load)


def _pretrained_source(spec: PretrainedModel, scale: float | None) -> ModelSource:
    param, weights = ncnn_files(spec)
    descriptor = ModelDescriptor(
        name=spec.name,
        architecture=spec.architecture,
        scale=spec.scale,
        in_channels=3,
        supports_half=True,
        supports_bf16=True,
        memory_per_pixel=spec.memory_per_pixel,
    )

    def load() -> LoadedModel:
        from srgan.zoo.registry import load_model

        return load_model(spec.name, scale)

    identity = f"{spec.cache_key}-{file_digest(weights)[:12]}"
    return ModelSource(spec.name, identity, descriptor, load, (param, weights))


def family_source(variant: NcnnVariant) -> ModelSource:
    """A Real-CUGAN / waifu2x / RealSR model: its original ncnn files for ncnn, its PyTorch
    interpretation for torch, and that network exported once for ONNX Runtime, with the
    family's conventions around it."""
    param, weights = variant.files()
    identity = f"{variant.name}-{file_digest(weights)[:12]}"  # a new package exports again

    def load() -> LoadedModel:
        from srgan.zoo.ncnn_loader import load_variant

        return load_variant(variant)

    def export(with_statistics: bool) -> Path:
        from srgan.zoo.cache import cached_file
        from srgan.zoo.ncnn_loader import export_variant_onnx
        from srgan.zoo.onnx_model import EXPORT_SUFFIX, check_onnx_start

        kind = "-stats" if with_statistics else ""
        return cached_file(
            f"{identity}{kind}{EXPORT_SUFFIX}",
            lambda path: export_variant_onnx(variant, path, with_statistics),
            check_onnx_start,
        )

    return ModelSource(
        variant.name,
        identity,
        variant.descriptor(),
        load,
        (param, weights),
        conventions=variant.conventions(),
        onnx_export=export,
    )


def _file_source(path: Path, scale: float | None) -> ModelSource:
    if path.is_dir():
        path = generator_in(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from srgan.zoo.onnx_file import onnx_file_source

        return onnx_file_source(path)
    try:
        digest = file_digest(path)
        if suffix == ".param":
            weights = path.with_suffix(".bin")
            if not weights.is_file():
                raise BadInputError(f"{path}: its weights {weights.name} are not beside it")
            digest = f"{digest[:8]}{file_digest(weights)[:8]}"
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror})") from exc
    identity = f"file-{_slug(path.stem)}-{digest[:16]}"

    def load() -> LoadedModel:
        from srgan.zoo.registry import load_file

        loaded = load_file(path)
        remember_descriptor(identity, loaded.descriptor)
        return loaded

    descriptor = remembered_descriptor(identity)
    # The ncnn runtime (C++) reads a user's .param only once srgan's own parser has
    # accepted that very file (a remembered descriptor), never a file it has not checked.
    files = (path, path.with_suffix(".bin")) if suffix == ".param" else None
    checked = files if descriptor is not None and ncnn_runs_as_is(descriptor) else None
    return ModelSource(path.stem, identity, descriptor, load, checked, unchecked_ncnn=files)


def ncnn_runs_as_is(descriptor: ModelDescriptor) -> bool:
    """Whether the ncnn runtime can run a user's .param as it is: a recognised architecture
    (RRDBNet, SRVGGNetCompact), not a graph the interpreter pads and aligns around."""
    return descriptor.architecture != INTERPRETED_GRAPH


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:40] or "model"


def _descriptor_path(identity: str) -> Path:
    return cache_dir() / "models" / f"{identity}.descriptor.json"


def descriptor_from_dict(data: object) -> ModelDescriptor | None:
    """A descriptor from JSON written by srgan, or None if anything is off."""
    if not isinstance(data, dict):
        return None
    known = {f.name: f.type for f in fields(ModelDescriptor)}
    if set(data) - set(known) or not {"name", "architecture", "scale"} <= set(data):
        return None
    try:
        descriptor = ModelDescriptor(**data)
    except TypeError:
        return None
    numbers_ok = all(
        isinstance(getattr(descriptor, name), (int, float))
        and not isinstance(getattr(descriptor, name), bool)
        for name in ("scale", "in_channels", "size_multiple", "parameters", "memory_per_pixel")
    )
    if not numbers_ok or not isinstance(descriptor.name, str):
        return None
    if not (0 < descriptor.scale <= 16 and descriptor.in_channels in (0, 1, 3)):
        return None
    if not (1 <= descriptor.size_multiple <= 64 and 0 <= descriptor.memory_per_pixel < 1e7):
        return None
    return descriptor


def descriptor_to_dict(descriptor: ModelDescriptor) -> dict[str, object]:
    return asdict(descriptor)


def remembered_descriptor(identity: str) -> ModelDescriptor | None:
    try:
        return descriptor_from_dict(json.loads(_descriptor_path(identity).read_text()))
    except (OSError, ValueError):
        return None


def remember_descriptor(identity: str, descriptor: ModelDescriptor) -> None:
    """Keep a loaded file's descriptor (atomically); an unwritable cache only costs speed."""
    from srgan.imaging.io import write_bytes_atomically

    try:
        text = json.dumps(descriptor_to_dict(descriptor), indent=2)
        write_bytes_atomically(_descriptor_path(identity), text.encode())
    except (OSError, SrganError):
        pass
