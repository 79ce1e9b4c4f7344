"""The training configuration shared by every recipe: sections with the same keys in
`srgan train` and `srgan train-vsr`, validated once at the edge.

Files may be TOML, YAML or JSON. Unknown keys and bad values are errors that name the
key (`optim.lr: Input should be greater than 0`); a key that was renamed names its new
name. Any key can be overridden with a dotted assignment (`--set optim.lr=2e-4`), checked
the same way. The recipes add their own sections (`training/recipes/*_config.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from srgan.config_files import invalid_config, parse_override, read_config_file
from srgan.errors import BadInputError
from srgan.training.data.degradation_config import DegradationConfig

Arch = Literal["srresnet", "rrdbnet", "srvgg", "vsr"]
IMAGE_ARCHS = ("srresnet", "rrdbnet", "srvgg")
ARCH_SCALES: dict[str, tuple[int, ...]] = {
    "srresnet": (2, 3, 4, 8),
    "rrdbnet": (1, 2, 4),
    "srvgg": (1, 2, 3, 4, 8),
    "vsr": (2, 3, 4),
}
NAMED_MODELS = ("natural", "anime", "anime-video")

# Keys of earlier versions and their names now: a config that uses an old name gets a
# one-line error naming the new one (never silently ignored).
RENAMED: dict[str, str] = {
    "data.train_hr": "data.train",
    "data.val_hr": "data.val",
    "data.hr_size": "data.crop",
    "data.samples_per_image": "data.samples_per_source",
    "data.samples_per_clip": "data.samples_per_source",
    "model.discriminator_features": "loss.adversarial.num_features",
    "gan.discriminator_features": "loss.adversarial.num_features",
    "gan.vgg_weights": "loss.perceptual.vgg_weights",
    "gan.adversarial_weight": "loss.adversarial.weight",
    "gan.vgg_layer": "loss.perceptual.layer_weights (e.g. { relu5_4 = 1.0 })",
    "gan.content_loss": (
        'loss.perceptual and loss.pixel (content_loss = "mse": loss.perceptual.weight = 0 '
        "and loss.pixel.weight = 1)"
    ),
    "adam_beta1": "optim.beta1",
    "grad_clip": "clip.max_norm",
    "adaptive_clip_percentile": "clip.percentile",
    "adaptive_clip_window": "clip.window",
    "checkpoint_interval": "checkpoint.interval",
    "schedule.cosine_steps": "schedule.decay_steps",
}


class Section(BaseModel):
    # Non-finite floats are refused here too (the file reader refuses them already), as
    # strings such as "inf" would otherwise become floats in validation.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(Section):
    """Where the training pairs come from and how they are batched."""

    train: Path | None = None  # HR images / clips; LR made on the fly (data.degradation)
    train_lr: Path | None = None  # optional paired LR images / clips (same names)
    val: Path | None = None  # validation HR images / clips (scored on Y, border = scale)
    val_lr: Path | None = None  # images only: paired validation LR (else bicubic of val)
    scale: int = Field(default=4, ge=1, le=8)
    # Upper bounds: a typo must not ask for absurd memory before anything is checked.
    crop: int = Field(default=96, gt=0, le=8192)  # HR crop side; the LR crop is crop / scale
    batch_size: int = Field(default=16, gt=0, le=65536)  # samples per forward pass, per process
    accumulation: int = Field(default=1, gt=0, le=4096)  # forward passes per optimizer step
    workers: int = Field(default=2, ge=0, le=256)  # data loader processes
    samples_per_source: int = Field(default=16, gt=0, le=100_000)  # crops per image (clip), epoch
    augment: bool = True  # flips and 90-degree rotations
    # how LR is made from HR: MATLAB bicubic, or Real-ESRGAN's degradations ([data.realesrgan])
    degradation: Literal["bicubic", "realesrgan"] = "bicubic"
    realesrgan: DegradationConfig = DegradationConfig()
    val_crop: int = Field(default=0, ge=0)  # centre crop (HR px) of validation images; 0: whole

    @model_validator(mode="after")
    def _crops_fit_scale(self) -> DataConfig:
        for name in ("crop", "val_crop"):
            if getattr(self, name) % self.scale:
                raise ValueError(f"{name} {getattr(self, name)} must be a multiple of scale")
        if self.degradation != "bicubic" and self.train_lr is not None:
            raise ValueError("train_lr gives the LR images: drop it or degradation")
        return self

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.accumulation


class ModelConfig(Section):
    """The network: an architecture and its hyper-parameters, from scratch or from
    pretrained weights (`init`: a named model or a weights file, checkpoint or run folder).
    Unset hyper-parameters take the architecture's defaults, or the pretrained model's."""

    arch: Arch = "srresnet"
    init: str | None = None  # natural, anime, anime-video, or a path
    # Upper bounds keep a config from sizing a network that exhausts memory.
    num_features: int | None = Field(default=None, gt=0, le=1024)  # channels of the trunk
    num_blocks: int | None = Field(default=None, ge=0, le=256)  # blocks (srvgg: conv layers)
    growth_channels: int | None = Field(default=None, gt=0, le=512)  # rrdbnet only
    # vsr only: how propagated features are aligned to each frame: a flow network trained
    # with the model ("learned", the default), OpenCV DIS flow on the LR frames ("dis"),
    # or not at all ("none"); and the learned flow's pyramid levels and channels per level
    alignment: Literal["none", "learned", "dis"] | None = None
    flow_levels: int | None = Field(default=None, gt=0, le=8)
    flow_features: int | None = Field(default=None, gt=0, le=256)
    # vsr, aligned only: also feed each recurrent cell the per-pixel error of the flow
    # (the current LR frame against the previous one warped by it)
    warp_error: bool | None = None
    freeze: list[str] = Field(default_factory=list)  # parameter-name prefixes not trained

    @model_validator(mode="after")
    def _arch_fields(self) -> ModelConfig:
        if self.growth_channels is not None and self.arch != "rrdbnet":
            raise ValueError("growth_channels is a rrdbnet hyper-parameter")
        for name in ("alignment", "flow_levels", "flow_features", "warp_error"):
            if getattr(self, name) is not None and self.arch != "vsr":
                raise ValueError(f"{name} is a vsr hyper-parameter")
        if self.warp_error and self.alignment == "none":
            raise ValueError("warp_error measures the flow: set alignment to learned or dis")
        if self.init is not None and not self.init.strip():
            raise ValueError("init: give a model name or a path, or leave it out")
        return self


class OptimConfig(Section):
    """Adam for every network. `lr_factors` multiplies the rate of the parameters whose
    names start with a prefix (the longest matching prefix wins), e.g. a lower rate for
    the first layers of a pretrained model: {"body.0" = 0.1}."""

    lr: float = Field(default=1e-4, gt=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.999, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    lr_factors: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _factors_positive(self) -> OptimConfig:
        for prefix, factor in self.lr_factors.items():
            if not prefix or not factor > 0:
                raise ValueError(f"lr_factors: {prefix!r} needs a positive factor")
        return self


class ScheduleConfig(Section):
    """The learning rate over a phase: optional linear warmup, then constant, cosine (down
    to `floor` over `decay_steps`, default the rest of the phase) or steps (times `gamma`
    at each milestone, fractions of the decay); times a factor halved when validation PSNR
    stops improving for `plateau_patience` validations."""

    decay: Literal["constant", "cosine", "steps"] = "constant"
    warmup_steps: int = Field(default=0, ge=0)
    decay_steps: int | None = Field(default=None, gt=0)
    milestones: list[float] = Field(default_factory=list)
    gamma: float = Field(default=0.1, gt=0, le=1)
    floor: float = Field(default=0.0, ge=0)
    plateau_patience: int = Field(default=0, ge=0)  # 0: off
    plateau_factor: float = Field(default=0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _milestones_are_fractions(self) -> ScheduleConfig:
        if any(not 0 < m < 1 for m in self.milestones):
            raise ValueError("milestones are fractions of the decay, between 0 and 1")
        if sorted(self.milestones) != self.milestones:
            raise ValueError("milestones must be in increasing order")
        return self


class ClipConfig(Section):
    """Gradient clipping at `max_norm` and/or the `percentile` of the last `window`
    gradient norms (once `min_history` are known), whichever is lower."""

    max_norm: float | None = Field(default=None, gt=0)
    percentile: float | None = Field(default=None, gt=0, le=100)
    window: int = Field(default=200, gt=1)
    min_history: int = Field(default=20, gt=0)


class CheckpointConfig(Section):
    """Regular checkpoints every `interval` steps (all kept). Best = the highest
    validation PSNR among validations at steps in [best_from, best_until] and, when
    `best_last` is set, no older than `best_last` steps before the newest validation."""

    interval: int = Field(default=1000, gt=0)
    best_from: int = Field(default=0, ge=0)
    best_until: int | None = Field(default=None, ge=0)
    best_last: int | None = Field(default=None, gt=0)


class AutotuneConfig(Section):
    """Try (batch, crop, accumulation) with batch x accumulation fixed, largest batch and
    crop first; keep the first whose training step fits in `budget_fraction` of the memory
    available (GPU memory, or RAM for the CPU)."""

    enabled: bool = False
    budget_fraction: float = Field(default=0.8, gt=0, le=1)
    memory_budget_mb: float | None = Field(default=None, gt=0)  # instead of measuring what is free
    crops: list[int] = Field(default_factory=list)  # HR crops; default: crop, 3/4, 1/2 of it
    probe_timeout_s: float = Field(default=300, gt=0)


class RunConfig(Section):
    """What every training run has, whatever its recipe."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    clip: ClipConfig = ClipConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    autotune: AutotuneConfig = AutotuneConfig()
    output_dir: Path = Path("runs/train")
    seed: int = 0
    device: str = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"  # mixed precision (fp16 with a scaler)
    channels_last: bool | Literal["auto"] = "auto"  # auto: on CUDA only (slower on CPUs here)
    ema_decay: float | None = Field(
        default=None, gt=0, lt=1
    )  # e.g. 0.999; checkpoints hold the EMA
    log_interval: int = Field(default=50, gt=0)
    status_interval: int = Field(default=10, gt=0)  # steps between training_status.txt rewrites
    val_interval: int = Field(default=1000, gt=0)
    val_images: int = Field(default=3, ge=0)  # rows of the bicubic | model | HR validation image
    tensorboard: bool = True  # event files in output_dir/tensorboard

    @model_validator(mode="after")
    def _model_fits(self) -> RunConfig:
        arch, scale = self.model.arch, self.data.scale
        if scale not in ARCH_SCALES[arch]:
            supported = ", ".join(str(s) for s in ARCH_SCALES[arch])
            raise ValueError(f"data.scale {scale}: {arch} is built for scales {supported}")
        for crop in self.autotune.crops:
            if crop % scale:
                raise ValueError(f"autotune crop {crop} must be a positive multiple of scale")
        return self


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` assignments (values parsed as JSON when possible)."""
    for item in overrides:
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise BadInputError(f"--set {item!r}: expected key=value, e.g. optim.lr=2e-4")
        target = data
        *parents, leaf = key.strip().split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise BadInputError(f"--set {item!r}: {parent} is not a section")
        target[leaf] = parse_override(key.strip(), value.strip())
    return data


def _keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        keys.append(name)
        if isinstance(value, dict):
            keys += _keys(value, f"{name}.")
    return keys


def check_renamed(data: dict[str, Any], source: Path | None) -> None:
    for key in _keys(data):
        if key in RENAMED:
            where = f"{source}: " if source else ""
            raise BadInputError(f"{where}{key} was renamed: use {RENAMED[key]}")


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def load_config_as(
    model: type[ConfigT], path: Path | None = None, overrides: list[str] | None = None
) -> ConfigT:
    """Defaults, then the file, then the overrides; one validation at the edge."""
    data = read_config_file(path) if path else {}
    check_renamed(data, path)
    extra = apply_overrides({}, overrides or [])
    check_renamed(extra, None)
    data = apply_overrides(data, overrides or [])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_config(exc, path) from exc
