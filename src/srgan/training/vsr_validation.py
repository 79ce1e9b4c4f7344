"""Scoring a video model on clips: PSNR and SSIM on Y with border = scale (the published
protocol), for the model and for MATLAB bicubic, and a bicubic | SR | HR image of each
clip's centre frame.

Each clip is read whole (at most `max_frames` centre frames, optionally a centre crop),
cropped to a multiple of the scale, shrunk with MATLAB bicubic and rounded to 8 bits,
then upscaled by the model in one pass per scene (`frames_per_pass=None`: the clip is
split at scene cuts and held frames are run once, `imaging.scene_cuts`, as `srgan video`
does) or in independent chunks of `frames_per_pass` frames (1: frame by frame, as a
single-image model sees it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from srgan import metrics
from srgan.errors import BadInputError
from srgan.imaging.io import tensor_to_pixels
from srgan.imaging.resize import imresize
from srgan.imaging.scene_cuts import plan_segments, run_in_segments, transitions
from srgan.training.validation import side_by_side, stack_rows
from srgan.training.vsr_clips import Clip
from srgan.training.vsr_data import frames_to_tensor, shrink


@dataclass(frozen=True)
class ClipScore:
    name: str
    frames: int
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float


@dataclass
class ClipScores:
    clips: list[ClipScore] = field(default_factory=list)
    centre_frames: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(
        default_factory=list
    )  # (bicubic, SR, HR) of the first clips' centre frames

    def mean(self, key: str) -> float:
        return float(np.mean([getattr(score, key) for score in self.clips]))

    def comparison_image(self, gap: int = 4) -> np.ndarray:
        """One row per clip: bicubic | SR | HR of its centre frame, as HWC uint8."""
        rows = [
            side_by_side([tensor_to_pixels(t) for t in frames], gap)
            for frames in self.centre_frames
        ]
        return stack_rows(rows, gap)


def load_frames(clip: Clip, max_frames: int, scale: int, crop: int = 0) -> torch.Tensor:
    """The centre `max_frames` frames of a clip as [T, 3, H, W], H and W multiples of
    `scale` (cropped to the centre `crop` pixels when crop > 0)."""
    count = min(len(clip), max_frames)
    start = (len(clip) - count) // 2
    frames = frames_to_tensor(clip.read(start, count))
    height, width = frames.shape[-2:]
    side_h = min(height, crop) if crop else height
    side_w = min(width, crop) if crop else width
    side_h, side_w = side_h - side_h % scale, side_w - side_w % scale
    top, left = (height - side_h) // 2, (width - side_w) // 2
    return frames[..., top : top + side_h, left : left + side_w]


@torch.no_grad()
def upscale_frames(
    model: nn.Module, lr: torch.Tensor, frames_per_pass: int | None = None
) -> torch.Tensor:
    """[T, C, h, w] LR frames -> [T, C, H, W], clamped to [0, 1]."""
    device = next(model.parameters()).device
    if frames_per_pass is None:
        pixels = [tensor_to_pixels(frame) for frame in lr]
        return run_in_segments(
            lr,
            plan_segments(transitions(pixels)),
            lambda part: model(part.unsqueeze(0).to(device)).squeeze(0).clamp_(0, 1).cpu(),
            torch.cat,
        )
    chunk = frames_per_pass
    outputs = []
    for first in range(0, lr.shape[0], chunk):
        part = lr[first : first + chunk].to(device)
        if chunk == 1:
            outputs.append(model(part.unsqueeze(1)).squeeze(1))
        else:
            outputs.append(model(part.unsqueeze(0)).squeeze(0))
    return torch.cat(outputs).clamp_(0, 1).cpu()


def evaluate_clips(
    model: nn.Module,
    clips: Sequence[Clip],
    scale: int,
    max_frames: int = 7,
    crop: int = 0,
    frames_per_pass: int | None = None,
    keep_centre: int = 0,
) -> ClipScores:
    """Scores of `model` and of bicubic on each clip (means over its frames)."""
    was_training = model.training
    model.eval()
    scores = ClipScores()
    try:
        for index, clip in enumerate(clips):
            hr = load_frames(clip, max_frames, scale, crop)
            if min(hr.shape[-2:]) - 2 * scale < 11:
                raise BadInputError(f"{clip.name}: frames too small to score (SSIM needs 11 px)")
            lr = shrink(hr, scale)
            bicubic = imresize(lr, size=tuple(hr.shape[-2:])).clamp_(0, 1)
            sr = upscale_frames(model, lr, frames_per_pass)
            scores.clips.append(
                ClipScore(
                    clip.name,
                    hr.shape[0],
                    float(metrics.psnr(sr, hr, scale).mean()),
                    float(metrics.ssim(sr, hr, scale).mean()),
                    float(metrics.psnr(bicubic, hr, scale).mean()),
                    float(metrics.ssim(bicubic, hr, scale).mean()),
                )
            )
            if index < keep_centre:
                centre = hr.shape[0] // 2
                scores.centre_frames.append((bicubic[centre], sr[centre], hr[centre]))
    finally:
        model.train(was_training)
    return scores
