"""Video training data: random windows of consecutive frames from clips, as (LR, HR) pairs.

Each item is `(lr, hr)`, float tensors in [0, 1] of shapes [T, 3, crop/scale, crop/scale]
and [T, 3, crop, crop]: T consecutive frames of one clip, the same random crop, flip and
90-degree rotation for every frame, and (when enabled) played backwards half the time.
LR frames are MATLAB-bicubic shrunk and rounded to 8 bits, as a saved LR file would be;
or they come from a paired LR clip set (same clip names, same frame counts).

Like `training/data/patches.py`, randomness comes from `numpy.random.default_rng([seed, epoch,
index])`: an item depends only on those numbers, whatever the workers or the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from srgan.errors import BadInputError
from srgan.imaging.clips import Clip, FrameCache
from srgan.imaging.resize import imresize
from srgan.training.data.patches import apply_flips, pixels_to_unit_tensor


@dataclass(frozen=True)
class WindowSettings:
    scale: int = 3
    frames: int = 5
    crop: int = 96  # HR crop side; the LR crop is crop / scale
    augment: bool = True
    temporal_reverse: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.crop % self.scale:
            raise ValueError(f"crop {self.crop} must be a multiple of scale {self.scale}")
        if self.frames < 1:
            raise ValueError("a window needs at least one frame")


def shrink(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB-bicubic LR frames of [..., H, W] frames, rounded to 8 bits."""
    lr = imresize(hr, scale=1 / scale).clamp_(0, 1)
    return torch.round(lr * 255) / 255


def frames_to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) uint8 frames as one [T, 3, H, W] float tensor in [0, 1]."""
    return torch.stack([pixels_to_unit_tensor(np.ascontiguousarray(frame)) for frame in frames])


class ClipWindowDataset(Dataset):
    """`samples_per_clip` random windows per clip and epoch; index i uses clip i % clips."""

    def __init__(
        self,
        clips: list[Clip],
        settings: WindowSettings = WindowSettings(),
        samples_per_clip: int = 1,
        lr_clips: list[Clip] | None = None,
        cache_bytes: int = 512 * 2**20,
    ) -> None:
        self.settings = settings
        usable = [i for i, clip in enumerate(clips) if len(clip) >= settings.frames]
        if not usable:
            raise BadInputError(f"no clip has the {settings.frames} frames a window needs")
        self.clips = [clips[i] for i in usable]
        self.lr_clips: list[Clip] | None = None
        if lr_clips is not None:
            by_name = {clip.name: clip for clip in lr_clips}
            missing = [clip.name for clip in self.clips if clip.name not in by_name]
            if missing:
                raise BadInputError(f"no LR clip for {', '.join(missing[:3])}")
            self.lr_clips = [by_name[clip.name] for clip in self.clips]
        self.samples_per_clip = samples_per_clip
        self.epoch = 0
        self._hr_cache = FrameCache(cache_bytes)
        self._lr_cache = FrameCache(cache_bytes // 4)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips) * self.samples_per_clip

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.settings
        rng = np.random.default_rng([s.seed, self.epoch, index])
        clip_id = index % len(self.clips)
        clip = self.clips[clip_id]
        start = int(rng.integers(0, len(clip) - s.frames + 1))
        hr_frames = self._hr_cache.frames(clip_id, clip, start, s.frames)
        if self.lr_clips is None:
            hr_frames = self._crop(hr_frames, s.crop, rng, clip.name)
            lr_frames = None
        else:
            lr_clip = self.lr_clips[clip_id]
            lr_frames = self._lr_cache.frames(clip_id, lr_clip, start, s.frames)
            lr_frames, hr_frames = self._paired_crop(lr_frames, hr_frames, rng, clip.name)
        flips = rng.random(3)  # drawn always: the stream does not depend on the flags
        reverse = bool(rng.random() < 0.5)
        if s.augment:
            hr_frames = apply_flips(hr_frames, flips)
            if lr_frames is not None:
                lr_frames = apply_flips(lr_frames, flips)
        if s.temporal_reverse and reverse:
            hr_frames = hr_frames[::-1]
            lr_frames = lr_frames[::-1] if lr_frames is not None else None
        hr = frames_to_tensor(hr_frames)
        lr = frames_to_tensor(lr_frames) if lr_frames is not None else shrink(hr, s.scale)
        return lr, hr

    def _crop(
        self, frames: list[np.ndarray], side: int, rng: np.random.Generator, name: str
    ) -> list[np.ndarray]:
        top, left = _origin(frames, side, rng, name)
        return [frame[top : top + side, left : left + side] for frame in frames]

    def _paired_crop(
        self,
        lr_frames: list[np.ndarray],
        hr_frames: list[np.ndarray],
        rng: np.random.Generator,
        name: str,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        s = self.settings
        height, width = lr_frames[0].shape[:2]
        if any(frame.shape[:2] != (height * s.scale, width * s.scale) for frame in hr_frames):
            raise BadInputError(f"{name}: HR frames are not {s.scale}x the LR frames")
        side = s.crop // s.scale
        top, left = _origin(lr_frames, side, rng, name)
        lr = [frame[top : top + side, left : left + side] for frame in lr_frames]
        top, left = top * s.scale, left * s.scale
        hr = [frame[top : top + s.crop, left : left + s.crop] for frame in hr_frames]
        return lr, hr


def _origin(
    frames: list[np.ndarray], side: int, rng: np.random.Generator, name: str
) -> tuple[int, int]:
    height, width = frames[0].shape[:2]
    if any(frame.shape[:2] != (height, width) for frame in frames):
        raise BadInputError(f"{name}: frames of different sizes")
    if height < side or width < side:
        raise BadInputError(f"{name}: {width}x{height} frames are smaller than the crop {side}")
    return int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
