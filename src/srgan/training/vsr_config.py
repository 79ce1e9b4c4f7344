"""The video super-resolution training configuration: one validated object per run.

Same rules as the SRGAN configuration (`training/config.py`): TOML, YAML or JSON files,
unknown keys and bad values are errors naming the key, `--set section.key=value`
overrides checked the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from srgan.training.config import Section, load_model_config

TERMS = ("l1", "multiscale", "gradient")


class VSRDataConfig(Section):
    train: Path | None = None  # folder of clip folders / videos, or one video file
    train_lr: Path | None = None  # optional paired LR clips (same clip and frame names)
    val: Path | None = None  # validation clips (HR frames; LR made by MATLAB bicubic)
    scale: Literal[2, 3, 4] = 3
    frames: int = Field(5, gt=0)  # frames per training window
    crop: int = Field(96, gt=0)  # HR crop side (LR crop = crop / scale)
    batch_size: int = Field(8, gt=0)  # windows per forward pass
    accumulation: int = Field(1, gt=0)  # forward passes per optimizer step
    workers: int = Field(0, ge=0)
    samples_per_clip: int = Field(8, gt=0)  # random windows per clip and epoch
    augment: bool = True  # flips and 90-degree rotations, the same for every frame
    temporal_reverse: bool = True  # play half the windows backwards
    cache_mb: int = Field(512, ge=0)  # decoded frames kept per data worker
    val_frames: int = Field(7, gt=0)  # centre frames of each validation clip
    val_crop: int = Field(0, ge=0)  # centre crop (HR pixels) of validation frames; 0: whole
    scene_aware: bool = True  # windows never span a scene cut and skip held frames

    @model_validator(mode="after")
    def _crop_fits_scale(self) -> VSRDataConfig:
        if self.crop % self.scale:
            raise ValueError(f"crop {self.crop} must be a multiple of scale {self.scale}")
        if self.val_crop % self.scale:
            raise ValueError(f"val_crop {self.val_crop} must be a multiple of scale {self.scale}")
        return self

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.accumulation


class VSRModelConfig(Section):
    num_features: int = Field(32, gt=0)
    num_blocks: int = Field(4, ge=0)
    # how propagated features are aligned to each frame: a flow network trained with the
    # model ("learned"), OpenCV DIS flow on the LR frames ("dis"), or not at all ("none")
    alignment: Literal["none", "learned", "dis"] = "learned"
    flow_levels: int = Field(3, gt=0)  # learned flow: pyramid levels
    flow_features: int = Field(16, gt=0)  # learned flow: channels per level


class VSROptimConfig(Section):
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.9, gt=0, lt=1)
    beta2: float = Field(0.99, gt=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)


class VSRScheduleConfig(Section):
    """Linear warmup, then half a cosine from `optim.lr` down to `floor` over
    `cosine_steps` (default: the rest of the run), then `floor`; times a factor halved
    when validation PSNR stops improving."""

    warmup_steps: int = Field(100, ge=0)
    cosine_steps: int | None = Field(None, gt=0)
    floor: float = Field(1e-6, ge=0)
    plateau_patience: int = Field(3, ge=0)  # validations without a new best; 0: off
    plateau_factor: float = Field(0.5, gt=0, lt=1)


class VSRLossConfig(Section):
    """Hybrid loss: l1 * L1 + multiscale * pyramid L1 + gradient * finite-difference L1."""

    l1: float = Field(1.0, ge=0)
    multiscale: float = Field(0.5, ge=0)
    gradient: float = Field(0.5, ge=0)
    levels: int = Field(3, gt=0)  # pyramid levels (2x average pooling each)
    # learned flow only: weight of its own loss (photometric error of the LR frames warped
    # by it + flow_smoothness x its first differences), fixed (not adaptive)
    flow: float = Field(0.1, ge=0)
    flow_smoothness: float = Field(0.05, ge=0)
    flow_warmup_steps: int = Field(200, ge=0)  # steps in which only its own loss trains it

    @model_validator(mode="after")
    def _some_term(self) -> VSRLossConfig:
        if not any(getattr(self, term) > 0 for term in TERMS):
            raise ValueError("at least one loss weight must be positive")
        return self

    def weights(self) -> dict[str, float]:
        return {term: float(getattr(self, term)) for term in TERMS}


class AdaptiveConfig(Section):
    """Loss weights kept so that each term's weighted share of the total stays near
    `shares`, from moving averages of the terms; bounded to [min_factor, max_factor]
    times the configured weight and to a change of `max_change` per update."""

    enabled: bool = True
    interval: int = Field(50, gt=0)  # steps between weight updates
    momentum: float = Field(0.9, ge=0, lt=1)  # moving average of each term's magnitude
    shares: dict[str, float] = Field(
        default_factory=lambda: {"l1": 0.5, "multiscale": 0.3, "gradient": 0.2}
    )
    min_factor: float = Field(0.1, gt=0, le=1)
    max_factor: float = Field(10.0, ge=1)
    max_change: float = Field(2.0, gt=1)  # at most x2 or /2 per update

    @model_validator(mode="after")
    def _shares_name_terms(self) -> AdaptiveConfig:
        unknown = set(self.shares) - set(TERMS)
        if unknown:
            raise ValueError(f"unknown loss terms {sorted(unknown)}: use {', '.join(TERMS)}")
        if any(share < 0 for share in self.shares.values()):
            raise ValueError("shares must not be negative")
        return self


class ClipConfig(Section):
    percentile: float | None = Field(95.0, gt=0, le=100)  # of the recent gradient norms
    window: int = Field(200, gt=1)
    min_history: int = Field(20, gt=0)
    max_norm: float | None = Field(None, gt=0)  # a fixed limit as well


class CheckpointConfig(Section):
    """Regular checkpoints every `interval` steps (all kept). The best checkpoint is the
    one with the highest validation PSNR among validations at steps in
    [best_from, best_until] and, when `best_last` is set, no older than `best_last`
    steps before the newest validation."""

    interval: int = Field(1000, gt=0)
    best_from: int = Field(0, ge=0)
    best_until: int | None = Field(None, ge=0)
    best_last: int | None = Field(None, gt=0)


class AutotuneConfig(Section):
    """Try (batch, crop, accumulation) with batch x accumulation fixed, largest batch
    and crop first; keep the first whose training step fits in `budget_fraction` of the
    memory available (GPU memory, or RAM for the CPU)."""

    enabled: bool = True
    budget_fraction: float = Field(0.8, gt=0, le=1)
    memory_budget_mb: float | None = Field(None, gt=0)  # instead of measuring what is free
    crops: list[int] = Field(default_factory=list)  # HR crops; default: crop, 3/4, 1/2 of it
    probe_timeout_s: float = Field(300, gt=0)


class VSRTrainConfig(Section):
    data: VSRDataConfig = VSRDataConfig()
    model: VSRModelConfig = VSRModelConfig()
    optim: VSROptimConfig = VSROptimConfig()
    schedule: VSRScheduleConfig = VSRScheduleConfig()
    loss: VSRLossConfig = VSRLossConfig()
    adaptive: AdaptiveConfig = AdaptiveConfig()
    clip: ClipConfig = ClipConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    autotune: AutotuneConfig = AutotuneConfig()
    steps: int = Field(20_000, gt=0)
    output_dir: Path = Path("runs/vsr")
    seed: int = 0
    device: str = "auto"
    log_interval: int = Field(10, gt=0)
    status_interval: int = Field(5, gt=0)  # steps between training_status.txt rewrites
    val_interval: int = Field(500, gt=0)
    val_images: int = Field(2, ge=0)  # clips in the bicubic | SR | HR comparison image
    tensorboard: bool = True

    @model_validator(mode="after")
    def _crops_fit_scale(self) -> VSRTrainConfig:
        for crop in self.autotune.crops:
            if crop <= 0 or crop % self.data.scale:
                raise ValueError(f"autotune crop {crop} must be a positive multiple of scale")
        return self


def load_vsr_config(path: Path | None = None, overrides: list[str] | None = None) -> VSRTrainConfig:
    """Defaults, then the file, then the overrides; one validation at the edge."""
    return load_model_config(VSRTrainConfig, path, overrides)


EXAMPLE_VSR_CONFIG = """\
# srgan video super-resolution training (TOML). Override any key on the command line with
# --set section.key=value; `srgan train-vsr --print-config` shows the resolved values.

output_dir = "runs/vsr"        # checkpoints/, training.log, training_status.txt, tensorboard/
steps = 20000                  # optimizer steps
seed = 0
device = "auto"                # auto, cpu, cuda, cuda:N
log_interval = 10              # steps between training.log lines (and TensorBoard points)
status_interval = 5            # steps between training_status.txt rewrites
val_interval = 500             # steps between validations on data.val
val_images = 2                 # clips in the bicubic | SR | HR image (centre frame)
tensorboard = true             # `tensorboard --logdir runs/vsr/tensorboard`

[data]
train = "clips/train"          # made by: srgan dataset clips photos/ clips/ --frames 7
# train_lr = "clips/train_LR"  # optional paired LR clips instead of MATLAB bicubic
val = "clips/val"
scale = 3                      # 2, 3 or 4
frames = 5                     # frames per training window
crop = 96                      # HR crop side; the LR crop is crop / scale
batch_size = 8                 # windows per forward pass (autotune may lower it)
accumulation = 1               # forward passes per step: batch_size x accumulation is fixed
workers = 0                    # data loader processes
samples_per_clip = 8           # random windows per clip and epoch
augment = true                 # flips / 90-degree rotations, same for all frames
temporal_reverse = true        # half the windows played backwards
val_frames = 7                 # centre frames of each validation clip
val_crop = 0                   # centre crop of validation frames (HR px); 0: whole frames
scene_aware = true             # windows never span a scene cut and skip held frames

[model]
num_features = 32
num_blocks = 4
alignment = "learned"          # learned flow network, "dis" (OpenCV DIS on LR), or "none"
flow_levels = 3                # learned flow: pyramid levels
flow_features = 16             # learned flow: channels per level

[optim]                        # Adam
lr = 2e-4
beta1 = 0.9
beta2 = 0.99

[schedule]                     # linear warmup, cosine to floor, halving on plateaus
warmup_steps = 100
# cosine_steps = 15000         # default: the rest of the run
floor = 1e-6
plateau_patience = 3           # halve after 3 validations without a new best; 0: off
plateau_factor = 0.5

[loss]                         # initial weights of the hybrid loss
l1 = 1.0
multiscale = 0.5               # L1 on 2x, 4x, 8x average-pooled copies
gradient = 0.5                 # L1 between horizontal and vertical differences
levels = 3
flow = 0.1                     # learned flow: photometric + smoothness loss weight
flow_smoothness = 0.05         #   weight of the smoothness term inside it
flow_warmup_steps = 200        #   steps before the SR loss also trains the flow

[adaptive]                     # loss weights follow the terms' magnitudes
enabled = true
interval = 50                  # steps between updates (each logged)
momentum = 0.9
shares = { l1 = 0.5, multiscale = 0.3, gradient = 0.2 }
min_factor = 0.1               # weights stay within [0.1, 10] x their initial value
max_factor = 10.0
max_change = 2.0

[clip]                         # gradient clipping
percentile = 95                # at the 95th percentile of the last `window` norms
window = 200
min_history = 20

[checkpoint]
interval = 1000                # regular checkpoints (all kept)
best_from = 0                  # best = highest val PSNR among validations in
# best_until = 20000           #   [best_from, best_until] and within the last
# best_last = 5000             #   best_last steps of the newest validation

[autotune]                     # pick batch/crop/accumulation that fit in memory
enabled = true
budget_fraction = 0.8
# memory_budget_mb = 4000      # instead of the free memory measured
# crops = [96, 72, 48]         # default: crop, 3/4 and 1/2 of it
"""
