"""The configuration of `srgan train`: the shared sections (`training/config.py`) plus
the two phases of the SRGAN recipe, pixel pre-training and the GAN phase."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from srgan.archs.unet_discriminator import UNetDiscriminatorSN
from srgan.training.config import (
    IMAGE_ARCHS,
    DataConfig,
    ModelConfig,
    RunConfig,
    ScheduleConfig,
    Section,
    load_config_as,
)
from srgan.training.loss_config import (
    AdversarialConfig,
    DiscriminatorName,
    LossConfig,
    PerceptualLossConfig,
    PerceptualPreset,
    PixelLossConfig,
    Weight,
)
from srgan.training.losses import PixelLossName


class SrganPixel(PixelLossConfig):
    kind: PixelLossName = "mse"
    weight: Weight = 0.0  # the paper's GAN phase has no pixel term


class SrganPerceptual(PerceptualLossConfig):
    preset: PerceptualPreset = "srgan"  # VGG54: relu5_4 features / 12.75, MSE


class SrganAdversarial(AdversarialConfig):
    discriminator: DiscriminatorName = "srgan"
    weight: Weight = 1e-3


class GanLossConfig(LossConfig):
    """The generator's objective in the GAN phase (SRGAN's by default: VGG54 content +
    1e-3 x adversarial with the SRGAN discriminator; Real-ESRGAN's: pixel l1 1, preset
    realesrgan 1, discriminator unet 0.1)."""

    pixel: SrganPixel = SrganPixel()
    perceptual: SrganPerceptual = SrganPerceptual()
    adversarial: SrganAdversarial = SrganAdversarial()


class PretrainConfig(Section):
    """Phase 1: the generator alone with a pixel loss. `lr` and `schedule` replace
    `optim.lr` and `[schedule]` for this phase when set (a phase's own schedule replaces
    the shared one whole: unset keys take their defaults, not [schedule]'s)."""

    steps: int = Field(default=1_000_000, ge=0)  # the paper: 10^6 updates of SRResNet with MSE
    lr: float | None = Field(default=None, gt=0)
    schedule: ScheduleConfig | None = None
    loss: PixelLossName = "mse"  # the pixel loss of this phase: mse, l1, charbonnier


class GanScheduleConfig(ScheduleConfig):
    """The paper's GAN schedule by default: the rate x 0.1 half way."""

    decay: Literal["constant", "cosine", "steps"] = "steps"
    milestones: list[float] = Field(default_factory=lambda: [0.5])


class GanConfig(Section):
    """Phase 2: generator and discriminator alternate (content + adversarial loss). Its
    schedule is the paper's step decay unless set (`gan.schedule = null`: [schedule])."""

    steps: int = Field(default=200_000, ge=0)  # 10^5 at 1e-4, then 10^5 at 1e-5
    lr: float | None = Field(default=None, gt=0)
    schedule: GanScheduleConfig | None = GanScheduleConfig()


# the HR patch sides the discriminators accept: SRGAN's halves four times
DISCRIMINATOR_MULTIPLES = {"srgan": 16, "unet": UNetDiscriminatorSN.size_multiple}


class ImageModelConfig(ModelConfig):
    arch: Literal["srresnet", "rrdbnet", "srvgg"] = "srresnet"


class ImageTrainConfig(RunConfig):
    data: DataConfig = DataConfig()
    model: ImageModelConfig = ImageModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    gan: GanConfig = GanConfig()
    loss: GanLossConfig = GanLossConfig()
    output_dir: Path = Path("runs/srgan")
    # "symmetric": HR targets in [-1, 1] as in the paper (SRResNet from scratch only);
    # "auto": symmetric for SRResNet from scratch, [0, 1] otherwise
    hr_range: Literal["auto", "symmetric", "unit"] = "auto"

    @model_validator(mode="after")
    def _ranges_and_sizes(self) -> ImageTrainConfig:
        if self.hr_range == "symmetric" and (
            self.model.arch != "srresnet" or self.model.init is not None
        ):
            raise ValueError(
                'hr_range "symmetric" is for SRResNet trained from scratch: use "unit"'
            )
        if self.gan.steps and self.data.crop % DISCRIMINATOR_MULTIPLES[self.discriminator]:
            multiple = DISCRIMINATOR_MULTIPLES[self.discriminator]
            raise ValueError(f"data.crop must be a multiple of {multiple} for the discriminator")
        assert self.model.arch in IMAGE_ARCHS
        return self

    @property
    def discriminator(self) -> str:
        return self.loss.adversarial.discriminator

    @property
    def symmetric(self) -> bool:
        if self.hr_range == "auto":
            return self.model.arch == "srresnet" and self.model.init is None
        return self.hr_range == "symmetric"


def load_image_config(
    path: Path | None = None, overrides: list[str] | None = None
) -> ImageTrainConfig:
    return load_config_as(ImageTrainConfig, path, overrides)


EXAMPLE_CONFIG = """\
# srgan train: SRGAN (pixel pre-training, then generator + discriminator), TOML.
# Override any key on the command line with --set section.key=value;
# `srgan train --print-config` shows the resolved values.

output_dir = "runs/srresnet"   # checkpoints/, training.log, status files, tensorboard/
seed = 0
device = "auto"                # auto, cpu, cuda, cuda:N
amp = "none"                   # "bf16" or "fp16" mixed precision (for GPUs)
channels_last = "auto"         # NHWC activations: on for CUDA, off on the CPU (slower there)
# ema_decay = 0.999            # checkpoints then hold the moving average of G
hr_range = "auto"              # symmetric ([-1, 1], the paper) for SRResNet from scratch
log_interval = 50
status_interval = 10           # training_status.txt rewrites
val_interval = 1000            # validations on data.val
val_images = 3                 # bicubic | model | HR crops logged at each validation
tensorboard = true             # `tensorboard --logdir runs/srresnet/tensorboard`

[data]
train = "data/train/HR"        # made by: srgan dataset prepare photos/ data/
# train_lr = "data/train/LR_x4"  # optional paired LR folder instead of on-the-fly bicubic
val = "data/val/HR"
scale = 4
crop = 96                      # HR patch; the LR patch is crop / scale = 24
batch_size = 16                # per forward pass (per process under torchrun)
accumulation = 1               # forward passes per step: batch_size x accumulation
workers = 2
samples_per_source = 16        # random patches per image and epoch
degradation = "bicubic"        # LR = MATLAB bicubic of HR; "realesrgan": blur, resize,
                               # noise, JPEG twice (settings in [data.realesrgan])
# val_lr = "data/val/LR"       # validate on given LR images (same names as data.val)

[model]
arch = "srresnet"              # srresnet, rrdbnet, srvgg
# init = "anime-video"         # fine-tune: natural, anime, anime-video or a weights/run path
num_features = 64
num_blocks = 16
# freeze = ["body.0"]          # parameter-name prefixes left as they are

[optim]                        # Adam, for G and D
lr = 1e-4
beta1 = 0.9
beta2 = 0.999
# lr_factors = { "body.0" = 0.1 }   # a lower rate for these parameters

[schedule]                     # each phase's rate, unless the phase has its own
decay = "constant"             # constant, cosine (to floor) or steps (x gamma at milestones)
warmup_steps = 0
plateau_patience = 0           # halve after this many validations without a new best

[clip]
# max_norm = 1.0               # fixed limit on the gradient norm
# percentile = 95              # clip at this percentile of the last `window` norms
window = 200

[checkpoint]
interval = 1000                # regular checkpoints (all kept), plus the last step
# best_last = 5000             # best = highest val PSNR among the last 5000 steps

[autotune]                     # pick batch/crop/accumulation that fit in memory first
enabled = false

[pretrain]                     # phase 1: G with a pixel loss (the paper: 10^6 steps)
steps = 100000
loss = "mse"                   # mse or l1
# lr = 1e-4                    # instead of optim.lr

[gan]                          # phase 2: G and D alternate
steps = 100000

[gan.schedule]                 # the paper: 1e-4, then 1e-5 for the second half
decay = "steps"
milestones = [0.5]
gamma = 0.1

[loss.pixel]                   # the GAN phase's generator loss: a weighted sum
kind = "mse"                   # l1, mse, charbonnier
weight = 0.0                   # the paper has no pixel term here (Real-ESRGAN: l1, 1.0)

[loss.perceptual]              # VGG19 features of output and HR
preset = "srgan"               # relu5_4 / 12.75, MSE; "realesrgan": 5 layers, L1
weight = 1.0                   # 0: no VGG19 needed (then set loss.pixel.weight)
# vgg_weights = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG19 (or $SRGAN_VGG19)

[loss.adversarial]
discriminator = "srgan"        # or "unet" (Real-ESRGAN's, spectral norm)
weight = 1e-3                  # Real-ESRGAN: 0.1
num_features = 64
"""
