"""Score images and models with the published protocol (Y channel, border crop)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from srgan import metrics
from srgan.defaults import DEFAULT_MAX_PIXELS
from srgan.errors import BadInputError
from srgan.imaging.io import Image, list_images, read_image
from srgan.imaging.transform import crop_to_multiple, resize_image
from srgan.inference.upscaler import UpscaleOptions, upscale_image
from srgan.zoo.descriptor import LoadedModel

Progress = Callable[[str], None]
SSIM_WINDOW = 11


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "psnr": self.psnr, "ssim": self.ssim}


@dataclass
class ScoreTable:
    """Per-image scores and their means."""

    images: list[ImageScore] = field(default_factory=list)

    @property
    def mean_psnr(self) -> float:
        return sum(s.psnr for s in self.images) / len(self.images)

    @property
    def mean_ssim(self) -> float:
        return sum(s.ssim for s in self.images) / len(self.images)

    def as_dict(self) -> dict[str, object]:
        return {
            "images": [s.as_dict() for s in self.images],
            "mean": {"psnr": self.mean_psnr, "ssim": self.mean_ssim},
        }


def score(
    name: str, image: Image, reference: Image, crop_border: int = 0, y_channel: bool = True
) -> ImageScore:
    """PSNR/SSIM of two decoded images as stored (their own bit depths)."""
    if (image.height, image.width) != (reference.height, reference.width):
        raise BadInputError(
            f"{name}: sizes differ ({image.width}x{image.height} vs "
            f"{reference.width}x{reference.height})"
        )
    if image.grayscale != reference.grayscale:
        kinds = ["gray" if i.grayscale else "colour" for i in (image, reference)]
        raise BadInputError(f"{name}: cannot compare a {kinds[0]} image with a {kinds[1]} one")
    if min(image.height, image.width) - 2 * crop_border < SSIM_WINDOW:
        raise BadInputError(
            f"{name}: {image.width}x{image.height} is too small: SSIM needs at least "
            f"{SSIM_WINDOW}x{SSIM_WINDOW} pixels after removing {crop_border} at each border"
        )
    bit_depth = max(image.meta.bit_depth, reference.meta.bit_depth)
    a, b = _colour_only(image), _colour_only(reference)
    return ImageScore(
        name,
        float(metrics.psnr(a, b, crop_border, y_channel, bit_depth)),
        float(metrics.ssim(a, b, crop_border, y_channel, bit_depth)),
    )


def _colour_only(image: Image) -> torch.Tensor:
    tensor = image.to_tensor()
    return tensor[:-1] if image.has_alpha else tensor


def pair_paths(first: Path, second: Path) -> list[tuple[str, Path, Path]]:
    """Two files, or two folders whose images are paired by file stem."""
    for path in (first, second):
        if not path.exists():
            raise BadInputError(f"{path}: no such file or folder")
    if first.is_dir() != second.is_dir():
        raise BadInputError(f"{first} and {second}: give two files or two folders")
    if not first.is_dir():
        return [(first.stem, first, second)]
    by_stem = {p.stem: p for p in list_images(second)}
    pairs, missing = [], []
    for path in list_images(first):
        partner = by_stem.get(path.stem)
        if partner is None:
            missing.append(path.name)
        else:
            pairs.append((path.stem, path, partner))
    if missing:
        raise BadInputError(
            f"{second}: no image with the stem of {', '.join(missing[:3])}"
            + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        )
    if not pairs:
        raise BadInputError(f"{first}: no images found")
    return pairs


def compare_paths(
    pairs: list[tuple[str, Path, Path]],
    crop_border: int = 0,
    y_channel: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> ScoreTable:
    table = ScoreTable()
    for name, a, b in pairs:
        table.images.append(
            score(
                name, read_image(a, max_pixels), read_image(b, max_pixels), crop_border, y_channel
            )
        )
        if progress:
            progress(name)
    return table


def dataset_images(dataset: Path) -> list[Path]:
    """The HR images of a benchmark folder, or BadInputError."""
    if not dataset.is_dir():
        raise BadInputError(f"{dataset}: not a folder of HR images")
    paths = list_images(dataset)
    if not paths:
        raise BadInputError(f"{dataset}: no images found")
    return paths


def evaluate_models(
    models: Sequence[LoadedModel],
    paths: Sequence[Path],
    scale: int,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> list[ScoreTable]:
    """The benchmark protocol: HR -> modcrop(scale) -> MATLAB-bicubic LR, saved as the HR's
    bit depth -> model -> quantized SR -> PSNR/SSIM on Y with `scale` pixels cropped."""
    for model in models:
        if model.scale != scale:
            raise BadInputError(f"model {model.name} upscales x{model.scale:g}, not x{scale}")
    tables = [ScoreTable() for _ in models]
    for path in paths:
        hr = crop_to_multiple(read_image(path, max_pixels), scale)
        if min(hr.height, hr.width) < scale * SSIM_WINDOW:
            raise BadInputError(f"{path}: too small to evaluate at x{scale}")
        if hr.has_alpha:
            hr = Image(hr.pixels[..., :-1], hr.meta)
        lr = resize_image(hr, scale=1 / scale)
        for model, table in zip(models, tables, strict=True):
            # Untiled, like the papers, on the device the model already lives on.
            sr = upscale_image(model, lr, UpscaleOptions(tile=0, device=str(model.device)))
            table.images.append(score(path.stem, sr, hr, crop_border=scale))
        if progress:
            progress(path.stem)
    return tables
