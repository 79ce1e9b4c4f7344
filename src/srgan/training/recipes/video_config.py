"""The configuration of `srgan train-vsr`: the shared sections (`training/config.py`, with
defaults for video) plus the hybrid loss and its adaptive weights."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from srgan.training.config import (
    Arch,
    AutotuneConfig,
    ClipConfig,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    Section,
    load_config_as,
)

TERMS = ("l1", "multiscale", "gradient")
FLOW_TERMS = ("flow_photometric", "flow_smoothness")  # logged when a learned flow trains


class VideoDataConfig(DataConfig):
    scale: int = Field(default=3, ge=1, le=8)
    batch_size: int = Field(default=8, gt=0, le=65536)  # windows per forward pass
    workers: int = Field(default=0, ge=0, le=256)
    samples_per_source: int = Field(default=8, gt=0, le=100_000)  # windows per clip and epoch
    frames: int = Field(default=5, gt=0, le=256)  # frames per training window
    temporal_reverse: bool = True  # play half the windows backwards
    cache_mb: int = Field(default=512, ge=0)  # decoded frames kept per data worker
    val_frames: int = Field(default=7, gt=0)  # centre frames of each validation clip
    scene_aware: bool = True  # windows never span a scene cut and skip held frames


class VideoModelConfig(ModelConfig):
    arch: Arch = "vsr"  # image architectures upscale each frame alone


class LossConfig(Section):
    """Hybrid loss: l1 * L1 + multiscale * pyramid L1 + gradient * finite-difference L1."""

    l1: float = Field(default=1.0, ge=0)
    multiscale: float = Field(default=0.5, ge=0)
    gradient: float = Field(default=0.5, ge=0)
    levels: int = Field(default=3, gt=0)  # pyramid levels (2x average pooling each)
    # learned flow only (model.alignment = "learned"): weight of its own loss (photometric
    # error of the LR frames warped by it + flow_smoothness x its first differences),
    # fixed (not adaptive), and the steps in which only that loss trains the flow
    flow: float = Field(default=0.1, ge=0)
    flow_smoothness: float = Field(default=0.05, ge=0)
    flow_warmup_steps: int = Field(default=200, ge=0)

    @model_validator(mode="after")
    def _some_term(self) -> LossConfig:
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
    interval: int = Field(default=50, gt=0)  # steps between weight updates
    momentum: float = Field(default=0.9, ge=0, lt=1)  # moving average of each term's magnitude
    shares: dict[str, float] = Field(
        default_factory=lambda: {"l1": 0.5, "multiscale": 0.3, "gradient": 0.2}
    )
    min_factor: float = Field(default=0.1, gt=0, le=1)
    max_factor: float = Field(default=10.0, ge=1)
    max_change: float = Field(default=2.0, gt=1)  # at most x2 or /2 per update

    @model_validator(mode="after")
    def _shares_name_terms(self) -> AdaptiveConfig:
        unknown = set(self.shares) - set(TERMS)
        if unknown:
            raise ValueError(f"unknown loss terms {sorted(unknown)}: use {', '.join(TERMS)}")
        if any(share < 0 for share in self.shares.values()):
            raise ValueError("shares must not be negative")
        return self


# The shared sections with video defaults (subclasses, so that a file setting one key of
# a section keeps the others' video defaults).
class VideoOptimConfig(OptimConfig):
    lr: float = Field(default=2e-4, gt=0)
    beta2: float = Field(default=0.99, ge=0, lt=1)


class VideoScheduleConfig(ScheduleConfig):
    decay: Literal["constant", "cosine", "steps"] = "cosine"
    warmup_steps: int = Field(default=100, ge=0)
    floor: float = Field(default=1e-6, ge=0)
    plateau_patience: int = Field(default=3, ge=0)


class VideoClipConfig(ClipConfig):
    percentile: float | None = Field(default=95.0, gt=0, le=100)


class VideoAutotuneConfig(AutotuneConfig):
    enabled: bool = True


class VideoTrainConfig(RunConfig):
    data: VideoDataConfig = VideoDataConfig()
    model: VideoModelConfig = VideoModelConfig()
    optim: VideoOptimConfig = VideoOptimConfig()
    schedule: VideoScheduleConfig = VideoScheduleConfig()
    clip: VideoClipConfig = VideoClipConfig()
    autotune: VideoAutotuneConfig = VideoAutotuneConfig()
    loss: LossConfig = LossConfig()
    adaptive: AdaptiveConfig = AdaptiveConfig()
    steps: int = Field(default=20_000, gt=0)
    output_dir: Path = Path("runs/vsr")
    log_interval: int = Field(default=10, gt=0)
    status_interval: int = Field(default=5, gt=0)
    val_interval: int = Field(default=500, gt=0)
    val_images: int = Field(default=2, ge=0)


def load_video_config(
    path: Path | None = None, overrides: list[str] | None = None
) -> VideoTrainConfig:
    return load_config_as(VideoTrainConfig, path, overrides)


EXAMPLE_VIDEO_CONFIG = """\
# srgan train-vsr: video super-resolution training (TOML). Override any key on the command
# line with --set section.key=value; `srgan train-vsr --print-config` shows the resolved values.

output_dir = "runs/vsr"        # checkpoints/, training.log, status files, tensorboard/
steps = 20000                  # optimizer steps
seed = 0
device = "auto"                # auto, cpu, cuda, cuda:N
amp = "none"                   # "bf16" or "fp16" mixed precision (for GPUs)
# ema_decay = 0.999            # checkpoints then hold the moving average of the network
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
samples_per_source = 8         # random windows per clip and epoch
augment = true                 # flips / 90-degree rotations, same for all frames
temporal_reverse = true        # half the windows played backwards
val_frames = 7                 # centre frames of each validation clip
val_crop = 0                   # centre crop of validation frames (HR px); 0: whole frames
scene_aware = true             # windows never span a scene cut and skip held frames

[model]
arch = "vsr"                   # the recurrent network; srvgg/rrdbnet/srresnet: frame by frame
num_features = 32
num_blocks = 4
alignment = "learned"          # learned flow network, "dis" (OpenCV DIS on LR), or "none"
flow_levels = 3                # learned flow: pyramid levels
flow_features = 16             # learned flow: channels per level
warp_error = false             # aligned: also feed each cell the flow's per-pixel error
# init = "runs/vsr_old"        # start from a trained run or weights file

[optim]                        # Adam
lr = 2e-4
beta1 = 0.9
beta2 = 0.99

[schedule]                     # linear warmup, cosine to floor, halving on plateaus
decay = "cosine"
warmup_steps = 100
# decay_steps = 15000          # default: the rest of the run
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
