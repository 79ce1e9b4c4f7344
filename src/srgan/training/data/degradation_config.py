"""The settings of the Real-ESRGAN degradation: every probability and range, validated.

Defaults are those of Real-ESRGAN's x4plus training (`options/train_realesrnet_x4plus.yml`
and `train_realesrgan_x4plus.yml`, which agree on them). Key names follow those files,
grouped into a `first` and a `second` stage instead of the `...2` suffixes.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ResizeMode = Literal["area", "bilinear", "bicubic"]
KernelKind = Literal[
    "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"
]
RESIZE_MODES: tuple[ResizeMode, ...] = ("area", "bilinear", "bicubic")

Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# Upper bounds keep a hostile config from asking for absurd work or memory.
Sigma = Annotated[float, Field(gt=0, le=20, allow_inf_nan=False)]
Beta = Annotated[float, Field(gt=0, le=16, allow_inf_nan=False)]
ResizeFactor = Annotated[float, Field(gt=0, le=4, allow_inf_nan=False)]
NoiseSigma = Annotated[float, Field(ge=0, le=255, allow_inf_nan=False)]
PoissonScale = Annotated[float, Field(ge=0, le=20, allow_inf_nan=False)]
JpegQuality = Annotated[int, Field(ge=1, le=100)]
KernelSize = Annotated[int, Field(ge=3, le=41)]
MAX_KERNEL_SIZE = 41


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_range(name: str, low: float, high: float) -> None:
    if low > high:
        raise ValueError(f"{name}: the first value {low} is above the second {high}")


class KernelProbabilities(_Section):
    """Relative weights of the six blur kernel families (normalised when drawn)."""

    iso: Weight = 0.45
    aniso: Weight = 0.25
    generalized_iso: Weight = 0.12
    generalized_aniso: Weight = 0.03
    plateau_iso: Weight = 0.12
    plateau_aniso: Weight = 0.03

    @model_validator(mode="after")
    def _some_kernel(self) -> KernelProbabilities:
        if not math.fsum(self.weights()) > 0:
            raise ValueError("kernel_prob: at least one kernel needs a weight above 0")
        return self

    def kinds(self) -> tuple[KernelKind, ...]:
        return (
            "iso",
            "aniso",
            "generalized_iso",
            "generalized_aniso",
            "plateau_iso",
            "plateau_aniso",
        )

    def weights(self) -> tuple[float, ...]:
        return tuple(float(getattr(self, kind)) for kind in self.kinds())


class StageConfig(_Section):
    """One degradation stage: blur, random resize, noise, JPEG.

    In the second stage `jpeg_range` is the quality of the final JPEG, which Real-ESRGAN
    applies before or after the final resize and sinc filter (see DegradationConfig)."""

    blur_prob: Probability = 1.0  # Real-ESRGAN: always in the first stage, 0.8 in the second
    kernel_sizes: tuple[KernelSize, KernelSize] = (7, 21)  # odd sizes drawn uniformly
    kernel_prob: KernelProbabilities = KernelProbabilities()
    sinc_prob: Probability = 0.1  # a sinc (ringing) kernel instead of the mixture
    blur_sigma: tuple[Sigma, Sigma] = (0.2, 3.0)
    betag_range: tuple[Beta, Beta] = (0.5, 4.0)  # generalized Gaussian shape
    betap_range: tuple[Beta, Beta] = (1.0, 2.0)  # plateau shape
    resize_prob: tuple[Weight, Weight, Weight] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[ResizeFactor, ResizeFactor] = (0.15, 1.5)
    resize_modes: tuple[ResizeMode, ...] = RESIZE_MODES  # drawn uniformly
    gaussian_noise_prob: Probability = 0.5  # else Poisson noise
    noise_range: tuple[NoiseSigma, NoiseSigma] = (1.0, 30.0)  # Gaussian sigma, 8-bit levels
    poisson_scale_range: tuple[PoissonScale, PoissonScale] = (0.05, 3.0)
    gray_noise_prob: Probability = 0.4  # the same noise in the three channels
    jpeg_range: tuple[JpegQuality, JpegQuality] = (30, 95)

    @model_validator(mode="after")
    def _consistent(self) -> StageConfig:
        low, high = self.kernel_sizes
        if low % 2 == 0 or high % 2 == 0:
            raise ValueError(f"kernel_sizes: kernel sizes are odd, not {low} and {high}")
        for name in (
            "kernel_sizes",
            "blur_sigma",
            "betag_range",
            "betap_range",
            "resize_range",
            "noise_range",
            "poisson_scale_range",
            "jpeg_range",
        ):
            first, second = getattr(self, name)
            _check_range(name, first, second)
        up, down, keep = self.resize_prob
        if not up + down + keep > 0:
            raise ValueError("resize_prob: at least one of up, down, keep must be above 0")
        low_factor, high_factor = self.resize_range
        if (up > 0 and high_factor < 1) or (down > 0 and low_factor > 1):
            raise ValueError(
                "resize_range must reach below 1 for 'down' and above 1 for 'up' "
                f"(got {list(self.resize_range)} with resize_prob {list(self.resize_prob)})"
            )
        if not self.resize_modes:
            raise ValueError("resize_modes: name at least one of area, bilinear, bicubic")
        return self


# Where Real-ESRGAN's second stage differs from the first (its `...2` options).
SECOND_STAGE_DEFAULTS: dict[str, Any] = {
    "blur_prob": 0.8,
    "blur_sigma": (0.2, 1.5),
    "resize_prob": (0.3, 0.4, 0.3),
    "resize_range": (0.3, 1.2),
    "noise_range": (1.0, 25.0),
    "poisson_scale_range": (0.05, 2.5),
}


def _second_stage() -> StageConfig:
    return StageConfig(**SECOND_STAGE_DEFAULTS)


class UsmConfig(_Section):
    """Unsharp masking of the ground truth (BasicSR's USMSharp): sharpen = HR + weight x
    (HR - Gaussian blur), kept where |HR - blur| exceeds `threshold` 8-bit levels (soft
    mask). The Gaussian is `radius` wide (made odd) with OpenCV's sigma for that size."""

    weight: Annotated[float, Field(ge=0, le=4, allow_inf_nan=False)] = 0.5
    radius: Annotated[int, Field(ge=1, le=101)] = 50
    threshold: Annotated[float, Field(ge=0, le=255, allow_inf_nan=False)] = 10.0


class DegradationConfig(_Section):
    """The two-stage Real-ESRGAN degradation, then the final step: [resize to the LR
    size + sinc filter] and the final JPEG (quality `second.jpeg_range`), in random order.

    Draws that change the tensor size (resize factor and mode, the final order) are made
    once per chunk of `chunk_size` images (None: the whole batch, as Real-ESRGAN does);
    kernels, the blur skip, noise type and level, gray noise and JPEG quality per image.
    """

    first: StageConfig = StageConfig()
    second: StageConfig = Field(default_factory=_second_stage)
    final_sinc_prob: Probability = 0.8  # else no final filter; sizes from second.kernel_sizes
    final_resize_modes: tuple[ResizeMode, ...] = RESIZE_MODES
    final_jpeg_first_prob: Probability = 0.5  # JPEG, then resize + sinc (else the reverse)
    gt_usm: bool = True  # sharpen the HR target (the engine decides which losses use it)
    usm: UsmConfig = UsmConfig()
    chunk_size: Annotated[int, Field(gt=0)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _second_stage_keys_over_its_defaults(cls, data: Any) -> Any:
        # A partial [second] section keeps the second stage's defaults for the keys it
        # leaves out, not the first stage's.
        if isinstance(data, dict) and isinstance(data.get("second"), dict):
            data = {**data, "second": {**SECOND_STAGE_DEFAULTS, **data["second"]}}
        return data

    @model_validator(mode="after")
    def _some_final_mode(self) -> DegradationConfig:
        if not self.final_resize_modes:
            raise ValueError("final_resize_modes: name at least one of area, bilinear, bicubic")
        return self
