"""Training data: random HR/LR patch pairs from an HR folder (LR made on the fly with
MATLAB bicubic) or from paired LR/HR folders, with flips and 90-degree rotations.

Randomness comes from `numpy.random.default_rng([seed, epoch, index])`, so a sample
depends only on those three numbers: the same for any number of workers, in any order,
and after resuming a run mid-epoch.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from srgan.errors import BadInputError
from srgan.imaging.clips import as_rgb
from srgan.imaging.io import list_images, read_image
from srgan.imaging.resize import imresize


@dataclass(frozen=True)
class PatchSettings:
    scale: int = 4
    crop: int = 96  # HR patch side; the LR patch is crop / scale (24 by default)
    augment: bool = True  # horizontal/vertical flips and 90-degree rotations
    seed: int = 0
    lr: bool = True  # make the bicubic LR patch; else items are (HR, [epoch, index])

    def __post_init__(self) -> None:
        if self.crop % self.scale:
            raise ValueError(f"crop {self.crop} must be a multiple of scale {self.scale}")


def augment_together(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random flip/rotation for every (H, W, C) array."""
    return apply_flips(arrays, rng.random(3))


def apply_flips(arrays: list[np.ndarray], draws: np.ndarray) -> list[np.ndarray]:
    """Horizontal flip, vertical flip, transpose: each where its draw is below 1/2."""
    hflip, vflip, transpose = draws < 0.5
    out = []
    for a in arrays:
        if hflip:
            a = a[:, ::-1]
        if vflip:
            a = a[::-1]
        if transpose:
            a = a.transpose(1, 0, 2)
        out.append(np.ascontiguousarray(a))
    return out


def pixels_to_unit_tensor(pixels: np.ndarray) -> torch.Tensor:
    peak = float(np.iinfo(pixels.dtype).max)
    return torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32) / peak)


class _ImageCache:
    """Decoded RGB images, least recently used dropped first (one cache per worker)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, path: Path) -> np.ndarray:
        if path in self.items:
            self.items.move_to_end(path)
            return self.items[path]
        pixels = as_rgb(read_image(path).pixels)
        if self.capacity:
            self.items[path] = pixels
            while len(self.items) > self.capacity:
                self.items.popitem(last=False)
        return pixels


class _PatchDataset(Dataset):
    """Shared bookkeeping: settings, the epoch that seeds the randomness, the image cache."""

    def __init__(self, sources: int, settings: PatchSettings, samples: int, cache: int) -> None:
        self.sources = sources
        self.settings = settings
        self.samples_per_image = samples
        self.epoch = 0
        self._cache = _ImageCache(cache)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.sources * self.samples_per_image

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.settings.seed, self.epoch, index])


class HRFolderDataset(_PatchDataset):
    """Random HR patches from a folder of images; the LR patch is MATLAB-bicubic shrunk
    and rounded to 8 bits, as a saved LR file would be. Items: (lr, hr) float tensors in
    [0, 1], shapes (3, crop/scale, crop/scale) and (3, crop, crop)."""

    def __init__(
        self,
        folder: Path,
        settings: PatchSettings = PatchSettings(),
        samples_per_image: int = 1,
        cache_images: int = 128,
    ) -> None:
        self.paths = list_images(folder)
        if not self.paths:
            raise BadInputError(f"{folder}: no training images found")
        super().__init__(len(self.paths), settings, samples_per_image, cache_images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.settings
        rng = self._rng(index)
        hr_image = self._cache.get(self.paths[index % len(self.paths)])
        height, width = hr_image.shape[:2]
        if height < s.crop or width < s.crop:
            raise BadInputError(f"{self.paths[index % len(self.paths)]}: smaller than a patch")
        top = int(rng.integers(0, height - s.crop + 1))
        left = int(rng.integers(0, width - s.crop + 1))
        hr = hr_image[top : top + s.crop, left : left + s.crop]
        if s.augment:
            (hr,) = augment_together([hr], rng)
        hr_tensor = pixels_to_unit_tensor(hr)
        if not s.lr:  # the LR is made later, from the batch (training.data.degradations)
            return hr_tensor, torch.tensor([self.epoch, index], dtype=torch.int64)
        lr = imresize(hr_tensor, scale=1 / s.scale).clamp_(0, 1)
        lr = torch.round(lr * 255) / 255
        return lr, hr_tensor


class PairedFolderDataset(_PatchDataset):
    """Random aligned patches from LR and HR folders whose images share file stems."""

    def __init__(
        self,
        lr_folder: Path,
        hr_folder: Path,
        settings: PatchSettings = PatchSettings(),
        samples_per_image: int = 1,
        cache_images: int = 128,
    ) -> None:
        hr_by_stem = {p.stem: p for p in list_images(hr_folder)}
        self.pairs = [
            (p, hr_by_stem[p.stem]) for p in list_images(lr_folder) if p.stem in hr_by_stem
        ]
        if not self.pairs:
            raise BadInputError(f"{lr_folder} and {hr_folder}: no images with matching names")
        super().__init__(len(self.pairs), settings, samples_per_image, cache_images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.settings
        lr_path, hr_path = self.pairs[index % len(self.pairs)]
        rng = self._rng(index)
        lr_image, hr_image = self._cache.get(lr_path), self._cache.get(hr_path)
        lr_size = s.crop // s.scale
        height, width = lr_image.shape[:2]
        if hr_image.shape[:2] != (height * s.scale, width * s.scale):
            raise BadInputError(f"{hr_path}: not {s.scale}x the size of {lr_path.name}")
        if height < lr_size or width < lr_size:
            raise BadInputError(f"{lr_path}: smaller than a patch")
        top = int(rng.integers(0, height - lr_size + 1))
        left = int(rng.integers(0, width - lr_size + 1))
        lr = lr_image[top : top + lr_size, left : left + lr_size]
        hr_top, hr_left = top * s.scale, left * s.scale
        hr = hr_image[hr_top : hr_top + s.crop, hr_left : hr_left + s.crop]
        if s.augment:
            lr, hr = augment_together([lr, hr], rng)
        return pixels_to_unit_tensor(lr), pixels_to_unit_tensor(hr)
