"""Score images and models with the published protocol (Y channel, border crop)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from srgan import metrics
from srgan.defaults import DEFAULT_MAX_PIXELS
from srgan.errors import BadInputError
from srgan.imaging.io import Image, list_images, read_image
from srgan.imaging.transform import crop_to_multiple, resize_image
from srgan.inference.image_job import read_within
from srgan.inference.job_memory import memory_limit
from srgan.inference.upscaler import AnyModel, UpscaleOptions, upscale_image
from srgan.inference.vsr import DEFAULT_WINDOWS, TemporalWindows, upscale_frames
from srgan.zoo.descriptor import LoadedModel

Progress = Callable[[str], None]
SSIM_WINDOW = 11
_METRIC_BYTES = 64  # per pixel: float copies, the Y channel and the SSIM maps of one image


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "psnr": self.psnr, "ssim": self.ssim}


@dataclass(frozen=True)
class ClipScore(ImageScore):
    """A clip's scores: the means over its frames."""

    frames: int = 0

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "frames": self.frames}


@dataclass
class ScoreTable:
    """Per-image (or per-clip: `unit` "clips") scores and their means."""

    images: list[ImageScore] = field(default_factory=list)
    unit: str = "images"

    @property
    def mean_psnr(self) -> float:
        return sum(s.psnr for s in self.images) / len(self.images)

    @property
    def mean_ssim(self) -> float:
        return sum(s.ssim for s in self.images) / len(self.images)

    def as_dict(self) -> dict[str, object]:
        return {
            self.unit: [s.as_dict() for s in self.images],
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
    limit = memory_limit()
    for name, a, b in pairs:
        first = read_within(a, max_pixels, limit // 2, _METRIC_BYTES, "compare it")
        second = read_within(b, max_pixels, limit // 2, _METRIC_BYTES, "compare it")
        table.images.append(score(name, first, second, crop_border, y_channel))
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
    models: Sequence[AnyModel],
    paths: Sequence[Path],
    scale: int,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> list[ScoreTable]:
    """The benchmark protocol: HR -> modcrop(scale) -> MATLAB-bicubic LR, saved as the HR's
    bit depth -> model -> quantized SR -> PSNR/SSIM on Y with `scale` pixels cropped."""
    _check_scales(models, scale)
    tables = [ScoreTable() for _ in models]
    # The HR image, its LR copy, the SR result and their float copies, and the largest
    # model's activations on the whole LR image (the protocol runs untiled).
    activations = max(m.descriptor.memory_per_pixel for m in models) / scale**2
    work = _METRIC_BYTES + activations + 2 * _METRIC_BYTES
    limit = memory_limit()
    for path in paths:
        hr = _reference(path, scale, max_pixels, limit, work)
        lr = resize_image(hr, scale=1 / scale)
        for model, table in zip(models, tables, strict=True):
            # Untiled, like the papers, on the device the model already lives on.
            sr = upscale_image(model, lr, UpscaleOptions(tile=0, device=device_of(model)))
            table.images.append(score(path.stem, sr, hr, crop_border=scale))
        if progress:
            progress(path.stem)
    return tables


def device_of(model: AnyModel) -> str:
    """Where a model runs: a PyTorch model's device; ONNX Runtime and ncnn on the CPU."""
    return str(model.device) if isinstance(model, LoadedModel) else "cpu"


def _check_scales(models: Sequence[AnyModel], scale: int) -> None:
    for model in models:
        if model.scale != scale:
            raise BadInputError(f"model {model.name} upscales x{model.scale:g}, not x{scale}")


def _reference(
    path: Path,
    scale: int,
    max_pixels: int | None,
    limit: int | None = None,
    work: float = 0.0,
) -> Image:
    """An HR image as the protocol uses it: modcropped to `scale`, without alpha."""
    if limit is None:
        image = read_image(path, max_pixels)
    else:
        image = read_within(path, max_pixels, limit, work, "evaluate on it")
    hr = crop_to_multiple(image, scale)
    if min(hr.height, hr.width) < scale * SSIM_WINDOW:
        raise BadInputError(f"{path}: too small to evaluate at x{scale}")
    return Image(hr.pixels[..., :-1], hr.meta) if hr.has_alpha else hr


# --- video clips (Vid4-style folders of numbered frames) ----------------------------------


@dataclass(frozen=True)
class Clip:
    """A clip of a video benchmark: its name and its HR frames in order."""

    name: str
    frames: list[Path]


def _natural_key(path: Path) -> list[object]:
    """`frame2.png` before `frame10.png`: numbers compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def holds_clips(dataset: Path) -> bool:
    """A folder with no images of its own but sub-folders of images (Vid4 layout)."""
    if not dataset.is_dir() or list_images(dataset):
        return False
    return any(p.is_dir() and list_images(p) for p in dataset.iterdir())


def dataset_clips(dataset: Path) -> list[Clip]:
    """The clips of a video benchmark folder (one sub-folder of frames per clip), or
    BadInputError. Frames are ordered by name, numbers compared as numbers."""
    if not dataset.is_dir():
        raise BadInputError(f"{dataset}: not a folder of clip folders")
    clips = [
        Clip(folder.name, sorted(list_images(folder), key=_natural_key))
        for folder in sorted(p for p in dataset.iterdir() if p.is_dir())
        if not folder.name.startswith(".")
    ]
    clips = [clip for clip in clips if clip.frames]
    if not clips:
        raise BadInputError(f"{dataset}: no clip folders (sub-folders of frames) found")
    return clips


def evaluate_clips(
    models: Sequence[AnyModel],
    clips: Sequence[Clip],
    scale: int,
    windows: TemporalWindows = DEFAULT_WINDOWS,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> list[ScoreTable]:
    """The image protocol frame by frame (MATLAB-bicubic LR of each HR frame, PSNR/SSIM on
    Y, border = scale), averaged over each clip's frames. Video (temporal) models run on
    overlapping windows of frames (`inference.vsr`), image models on each frame alone.
    Frames are read as they are needed: a clip is never held whole."""
    _check_scales(models, scale)
    tables = [ScoreTable(unit="clips") for _ in models]
    for clip in clips:
        for model, table in zip(models, tables, strict=True):
            frames = _clip_frame_scores(model, clip, scale, windows, max_pixels)
            table.images.append(
                ClipScore(
                    clip.name,
                    sum(f.psnr for f in frames) / len(frames),
                    sum(f.ssim for f in frames) / len(frames),
                    len(frames),
                )
            )
        if progress:
            progress(clip.name)
    return tables


def _clip_frame_scores(
    model: AnyModel,
    clip: Clip,
    scale: int,
    windows: TemporalWindows,
    max_pixels: int | None,
) -> list[ImageScore]:
    references: deque[Image] = deque()  # HR frames whose SR output has not come yet

    def low_resolution() -> Iterator[Image]:
        for path in clip.frames:
            hr = _reference(path, scale, max_pixels)
            if references and hr.pixels.shape != references[0].pixels.shape:
                raise BadInputError(f"{path}: its size differs from the clip's other frames")
            references.append(hr)
            yield resize_image(hr, scale=1 / scale)

    # Untiled, like the papers, on the device the model already lives on.
    options = UpscaleOptions(tile=0, device=device_of(model))
    outputs: Iterator[np.ndarray] = (
        upscale_frames(model, (lr.pixels for lr in low_resolution()), options, windows)
        if model.descriptor.temporal
        else (upscale_image(model, lr, options).pixels for lr in low_resolution())
    )
    scores = []
    for index, pixels in enumerate(outputs):
        hr = references.popleft()
        name = f"{clip.name}/{clip.frames[index].stem}"
        scores.append(score(name, Image(pixels, hr.meta), hr, crop_border=scale))
    return scores
