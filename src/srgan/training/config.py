"""The training configuration: one validated object for a whole SRGAN run.

Files may be TOML, YAML or JSON. Unknown keys and bad values are errors that name the
key (`gan.lr: Input should be greater than 0`). Any key can be overridden with a dotted
assignment (`--set gan.steps=500`), checked the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from srgan.config_files import invalid_config, parse_override, read_config_file
from srgan.errors import BadInputError


class Section(BaseModel):
    # Non-finite floats are refused here too (the file reader refuses them already), as
    # strings such as "inf" would otherwise become floats in validation.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(Section):
    train_hr: Path | None = None  # HR folder: LR made on the fly with MATLAB bicubic
    train_lr: Path | None = None  # optional paired LR folder (same file stems as train_hr)
    val_hr: Path | None = None  # validation HR folder (scored on Y, border = scale)
    scale: Literal[2, 3, 4, 8] = 4
    hr_size: int = Field(96, gt=0)  # HR patch side (LR patch = hr_size / scale)
    batch_size: int = Field(16, gt=0)
    workers: int = Field(2, ge=0)
    samples_per_image: int = Field(16, gt=0)
    augment: bool = True

    @model_validator(mode="after")
    def _patch_fits_scale(self) -> DataConfig:
        if self.hr_size % self.scale:
            raise ValueError(f"hr_size {self.hr_size} must be a multiple of scale {self.scale}")
        return self


class ModelConfig(Section):
    num_features: int = Field(64, gt=0)
    num_blocks: int = Field(16, gt=0)
    discriminator_features: int = Field(64, gt=0)


class ScheduleConfig(Section):
    """The learning rate over a stage: optional linear warmup, then constant, cosine
    (down to `floor`) or steps (times `gamma` at each milestone); optionally halved when
    validation PSNR stops improving."""

    decay: Literal["constant", "cosine", "steps"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    milestones: list[float] = []  # "steps": fractions of the stage's steps after warmup
    gamma: float = Field(0.1, gt=0, le=1)
    floor: float = Field(0.0, ge=0)  # "cosine": the last learning rate
    plateau_patience: int = Field(0, ge=0)  # validations without a new best; 0: off
    plateau_factor: float = Field(0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _milestones_are_fractions(self) -> ScheduleConfig:
        if any(not 0 < m < 1 for m in self.milestones):
            raise ValueError("milestones are fractions of the stage, between 0 and 1")
        if sorted(self.milestones) != self.milestones:
            raise ValueError("milestones must be in increasing order")
        return self


class PretrainConfig(Section):
    steps: int = Field(1_000_000, ge=0)  # the paper: 10^6 updates of SRResNet with MSE
    lr: float = Field(1e-4, gt=0)
    loss: Literal["mse", "l1"] = "mse"
    schedule: ScheduleConfig = ScheduleConfig()


def _paper_gan_schedule() -> ScheduleConfig:
    return ScheduleConfig(decay="steps", milestones=[0.5], gamma=0.1)


class GanConfig(Section):
    steps: int = Field(200_000, ge=0)  # 10^5 at 1e-4, then 10^5 at 1e-5
    lr: float = Field(1e-4, gt=0)
    schedule: ScheduleConfig = Field(default_factory=_paper_gan_schedule)
    content_loss: Literal["vgg", "mse"] = "vgg"
    vgg_layer: str = "relu5_4"
    vgg_weights: Path | None = None  # torchvision's vgg19-dcbb9e9d.pth; or $SRGAN_VGG19
    adversarial_weight: float = Field(1e-3, ge=0)


class TrainConfig(Section):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    gan: GanConfig = GanConfig()
    output_dir: Path = Path("runs/srgan")
    seed: int = 0
    device: str = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"  # mixed precision on GPU
    channels_last: bool | Literal["auto"] = "auto"  # auto: on CUDA only (slower on CPUs here)
    grad_clip: float | None = Field(None, gt=0)  # max gradient norm
    adaptive_clip_percentile: float | None = Field(None, gt=0, le=100)  # of recent norms
    adaptive_clip_window: int = Field(200, gt=1)  # how many recent norms
    ema_decay: float | None = Field(None, gt=0, lt=1)  # e.g. 0.999; checkpoints hold the EMA
    adam_beta1: float = Field(0.9, gt=0, lt=1)
    hr_range: Literal["symmetric", "unit"] = "symmetric"  # the paper: HR targets in [-1, 1]
    checkpoint_interval: int = Field(1000, gt=0)
    val_interval: int = Field(1000, gt=0)
    log_interval: int = Field(50, gt=0)
    tensorboard: bool = True  # event files in output_dir/tensorboard
    val_images: int = Field(3, ge=0)  # comparison crops logged at each validation


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` assignments (values parsed as JSON when possible)."""
    for item in overrides:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise BadInputError(f"--set {item!r}: expected key=value, e.g. gan.steps=500")
        target = data
        *parents, leaf = key.strip().split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise BadInputError(f"--set {item!r}: {parent} is not a section")
        target[leaf] = parse_override(key.strip(), value.strip())
    return data


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then the file, then the overrides; one validation at the edge."""
    return load_model_config(TrainConfig, path, overrides)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def load_model_config(
    model: type[ConfigT], path: Path | None = None, overrides: list[str] | None = None
) -> ConfigT:
    """`load_config` for any configuration model (the video trainer's uses it too)."""
    data = read_config_file(path) if path else {}
    data = apply_overrides(data, overrides or [])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_config(exc, path) from exc


EXAMPLE_CONFIG = """\
# srgan training configuration (TOML). Every key can be overridden on the command line
# with --set section.key=value; `srgan train --print-config` shows the resolved values.

output_dir = "runs/srresnet"   # checkpoints/, training.log, status.json go here
seed = 0
device = "auto"                # auto, cpu, cuda, cuda:N
channels_last = "auto"         # NHWC activations: on for CUDA, off on the CPU (slower there)
hr_range = "symmetric"         # HR targets in [-1, 1] as in the paper ("unit": [0, 1])
checkpoint_interval = 1000     # steps between checkpoints (plus the last step)
val_interval = 1000            # steps between validations on data.val_hr
log_interval = 50
tensorboard = true             # `tensorboard --logdir runs/srresnet/tensorboard`
val_images = 3                 # bicubic | model | HR crops logged at each validation
amp = "none"                   # "bf16" or "fp16" mixed precision (for GPUs)
# grad_clip = 1.0              # fixed limit on the gradient norm
# adaptive_clip_percentile = 95  # clip at this percentile of the last 200 norms
# ema_decay = 0.999            # checkpoints then hold the moving average of G

[data]
train_hr = "data/train/HR"     # made by: srgan dataset prepare photos/ data/
# train_lr = "data/train/LR_x4"  # optional paired LR folder instead of on-the-fly bicubic
val_hr = "data/val/HR"
scale = 4
hr_size = 96                   # HR patch; the LR patch is hr_size / scale = 24
batch_size = 16
workers = 2
samples_per_image = 16         # random patches per image and epoch

[model]
num_features = 64
num_blocks = 16

[pretrain]                     # SRResNet with a pixel loss (the paper: 10^6 steps)
steps = 100000
lr = 1e-4
loss = "mse"

[pretrain.schedule]            # the learning rate over this stage
decay = "constant"             # constant, cosine (to floor) or steps (x gamma at milestones)
warmup_steps = 0               # linear ramp first
# floor = 1e-6
plateau_patience = 0           # halve after this many validations without a new best

[gan]                          # SRGAN: generator and discriminator alternate
steps = 100000
lr = 1e-4
content_loss = "vgg"           # VGG54 feature loss; "mse" needs no VGG weights
vgg_layer = "relu5_4"
# vgg_weights = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG19 (or $SRGAN_VGG19)
adversarial_weight = 1e-3

[gan.schedule]                 # the paper: 1e-4, then 1e-5 for the second half
decay = "steps"
milestones = [0.5]
gamma = 0.1
"""
