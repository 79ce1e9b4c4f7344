"""Run several models on the same inputs and measure how they differ.

`iter_comparisons` yields one `ComparedImage` at a time (the input, every model's output,
the ground truth and scores when given, and the regions where the outputs disagree most),
so a folder of any length is compared in the memory of one image. `summarise` turns the
per-image numbers into the tables a comparison reports: PSNR/SSIM and wins with ground
truth, pairwise differences between the models without it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan.comparison.regions import (
    Region,
    default_crop_size,
    disagreement,
    luma,
    strongest_regions,
)
from srgan.defaults import DEFAULT_MAX_PIXELS
from srgan.errors import BadInputError
from srgan.imaging.io import Image, list_images, read_image

if TYPE_CHECKING:
    from srgan.inference.tiling import Forward
    from srgan.inference.upscaler import AnyModel, UpscaleOptions

Progress = Callable[[str], None]


@dataclass
class Contender:
    """One model of a comparison: its column label, the model, how it is run and, once
    made, its tile runner (reused over all images)."""

    label: str
    model: AnyModel
    options: UpscaleOptions
    runner: Forward | None = None


@dataclass(frozen=True)
class Score:
    psnr: float
    ssim: float


@dataclass
class ComparedImage:
    """One input through every model. `outputs[i]` is contender i's result; `hr` and
    `scores` are set when ground truth was given; `regions` are in output pixels."""

    name: str
    lr: Image
    outputs: list[Image]
    hr: Image | None = None
    scores: list[Score] | None = None
    regions: list[Region] = field(default_factory=list)
    differences: dict[tuple[int, int], PairDifference] = field(default_factory=dict)

    @property
    def numbers(self) -> ImageNumbers:
        """What the summary needs of this image, without its pixels."""
        return ImageNumbers(self.name, self.scores, self.differences, self.regions)


@dataclass(frozen=True)
class ImageNumbers:
    name: str
    scores: list[Score] | None
    differences: dict[tuple[int, int], PairDifference]
    regions: list[Region]


@dataclass(frozen=True)
class PairDifference:
    """How far two outputs are apart, in levels of 255 and as PSNR of one against the
    other (RGB, no border removed)."""

    mean_abs: float
    max_abs: float
    psnr: float


@dataclass(frozen=True)
class Summary:
    labels: list[str]
    names: list[str]
    scores: list[list[Score]] | None  # [model][image]
    # differences[(i, j)] over images: i < j
    differences: dict[tuple[int, int], list[PairDifference]]
    regions: list[list[Region]] = field(default_factory=list)  # [image]

    def mean_score(self, model: int) -> Score:
        assert self.scores is not None
        column = self.scores[model]
        return Score(
            sum(s.psnr for s in column) / len(column), sum(s.ssim for s in column) / len(column)
        )

    def wins(self) -> list[tuple[int, int]]:
        """Per model: the images where it has the best PSNR, and the best SSIM (ties
        count for every model that ties)."""
        assert self.scores is not None
        counts = [[0, 0] for _ in self.labels]
        for image in range(len(self.names)):
            for metric in (0, 1):
                values = [_metric(self.scores[m][image], metric) for m in range(len(self.labels))]
                best = max(values)
                for model, value in enumerate(values):
                    if value == best:
                        counts[model][metric] += 1
        return [(psnr, ssim) for psnr, ssim in counts]

    def head_to_head(self, metric: int = 0) -> list[list[int]]:
        """`[a][b]`: the images where model a scores higher than model b (0: PSNR, 1: SSIM)."""
        assert self.scores is not None
        n = len(self.labels)
        table = [[0] * n for _ in range(n)]
        for a, b in itertools.permutations(range(n), 2):
            table[a][b] = sum(
                _metric(sa, metric) > _metric(sb, metric)
                for sa, sb in zip(self.scores[a], self.scores[b], strict=True)
            )
        return table

    def mean_difference(self, pair: tuple[int, int]) -> PairDifference:
        values = self.differences[pair]
        finite = [d.psnr for d in values if math.isfinite(d.psnr)]
        return PairDifference(
            sum(d.mean_abs for d in values) / len(values),
            max(d.max_abs for d in values),
            sum(finite) / len(finite) if finite else math.inf,
        )

    def as_dict(self) -> dict[str, object]:
        result: dict[str, object] = {"models": self.labels, "images": self.names}
        if self.regions:
            result["crops"] = {
                name: [r.as_dict() for r in regions]
                for name, regions in zip(self.names, self.regions, strict=True)
            }
        if self.scores is not None:
            result["scores"] = {
                label: {
                    "images": [
                        {"name": name, "psnr": s.psnr, "ssim": s.ssim}
                        for name, s in zip(self.names, self.scores[m], strict=True)
                    ],
                    "mean": vars(self.mean_score(m)),
                }
                for m, label in enumerate(self.labels)
            }
            result["wins"] = {
                label: {"psnr": psnr, "ssim": ssim}
                for label, (psnr, ssim) in zip(self.labels, self.wins(), strict=True)
            }
            result["head_to_head_psnr"] = {
                a: {b: self.head_to_head()[i][j] for j, b in enumerate(self.labels) if j != i}
                for i, a in enumerate(self.labels)
            }
        result["differences"] = [
            {
                "a": self.labels[i],
                "b": self.labels[j],
                **vars(self.mean_difference((i, j))),
                "images": [vars(d) for d in values],
            }
            for (i, j), values in self.differences.items()
        ]
        return result


def _metric(score: Score, metric: int) -> float:
    return score.psnr if metric == 0 else score.ssim


def input_paths(sources: Sequence[Path]) -> list[Path]:
    """The image files given: files as they are, folders' images in name order."""
    paths: list[Path] = []
    for source in sources:
        if source.is_dir():
            found = list_images(source)
            if not found:
                raise BadInputError(f"{source}: no images found")
            paths.extend(found)
        elif source.is_file():
            paths.append(source)
        else:
            raise BadInputError(f"{source}: no such file or folder")
    names = [p.stem for p in paths]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BadInputError(
            f"two inputs are named {duplicates[0]!r}: rows and ground truth are paired by name"
        )
    return paths


def references_for(paths: Sequence[Path], hr_folder: Path) -> list[Path]:
    """Each input's ground truth: the image of `hr_folder` with the same file stem."""
    if not hr_folder.is_dir():
        raise BadInputError(f"--hr {hr_folder}: not a folder of ground-truth images")
    by_stem = {p.stem: p for p in list_images(hr_folder)}
    missing = [p.name for p in paths if p.stem not in by_stem]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise BadInputError(f"--hr {hr_folder}: no image named like {missing[0]}{more}")
    return [by_stem[p.stem] for p in paths]


def _without_alpha(image: Image) -> Image:
    return Image(image.pixels[..., :-1], image.meta) if image.has_alpha else image


def protocol_pair(source: Image, truth: Image, scale: int, name: str) -> tuple[Image, Image]:
    """(LR input, HR reference) as `srgan eval` makes them. An input of the ground truth's
    own size is taken as the HR image (modcropped, MATLAB-bicubic LR); an input 1/scale of
    the modcropped ground truth is a given LR image."""
    from srgan.imaging.transform import crop_to_multiple, resize_image

    hr = _without_alpha(crop_to_multiple(truth, scale))
    if min(hr.height, hr.width) < scale * 11:
        raise BadInputError(f"{name}: the ground truth is too small to score at x{scale}")
    if (source.height, source.width) == (truth.height, truth.width):
        return resize_image(hr, scale=1 / scale), hr
    if (source.height * scale, source.width * scale) == (hr.height, hr.width):
        return _without_alpha(source), hr
    raise BadInputError(
        f"{name}: the input ({source.width}x{source.height}) is neither its ground truth's "
        f"size ({truth.width}x{truth.height}) nor 1/{scale} of it"
    )


def score_output(output: Image, hr: Image, scale: int, name: str) -> Score:
    """PSNR/SSIM on Y with `scale` pixels of border removed (the papers' protocol)."""
    from srgan.evaluation import score

    result = score(name, _without_alpha(output), hr, crop_border=scale)
    return Score(result.psnr, result.ssim)


def pair_difference(a: np.ndarray, b: np.ndarray) -> PairDifference:
    peak = float(np.iinfo(a.dtype).max)
    delta = np.abs(a.astype(np.float32) - b.astype(np.float32)) * (255.0 / peak)
    mse = float(np.mean(delta.astype(np.float64) ** 2))
    psnr = math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
    return PairDifference(float(delta.mean()), float(delta.max()), psnr)


def run_contender(contender: Contender, image: Image) -> Image:
    from srgan.inference.upscaler import make_runner, upscale_image

    if contender.runner is None and contender.model.descriptor.in_channels != 0:
        contender.runner = make_runner(contender.model, contender.options)
    return upscale_image(contender.model, image, contender.options, runner=contender.runner)


def iter_comparisons(
    contenders: Sequence[Contender],
    paths: Sequence[Path],
    scale: int,
    references: Sequence[Path] | None = None,
    crops: Sequence[Region] = (),
    crop_count: int = 2,
    crop_size: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> Iterator[ComparedImage]:
    """Every contender on every input, one input at a time. With `references` (ground
    truth, one per input) the inputs follow the `srgan eval` protocol and are scored.
    `crops` are fixed regions (output pixels); otherwise `crop_count` regions of side
    `crop_size` (default: from the image size) where the outputs disagree most."""
    for index, path in enumerate(paths):
        source = read_image(path, max_pixels)
        hr = None
        if references is not None:
            truth = read_image(references[index], max_pixels)
            lr, hr = protocol_pair(source, truth, scale, path.name)
        else:
            lr = source
        outputs = []
        for contender in contenders:
            outputs.append(run_contender(contender, lr))
            if progress:
                progress(f"{path.stem}: {contender.label}")
        sizes = {(o.height, o.width) for o in outputs}
        if len(sizes) != 1:
            raise BadInputError(f"{path.name}: the models' outputs differ in size {sorted(sizes)}")
        height, width = sizes.pop()
        scores = None
        if hr is not None:
            scores = [score_output(o, hr, scale, path.stem) for o in outputs]
        if crops:
            regions = [r.clipped(height, width) for r in crops]
        else:
            pool = [o.pixels for o in outputs] + ([hr.pixels] if hr is not None else [])
            side = crop_size or default_crop_size(height, width)
            regions = strongest_regions(disagreement(pool), side, crop_count)
        differences = {
            (i, j): pair_difference(_colour(outputs[i]), _colour(outputs[j]))
            for i, j in itertools.combinations(range(len(outputs)), 2)
        }
        yield ComparedImage(path.stem, lr, outputs, hr, scores, regions, differences)


def _colour(image: Image) -> np.ndarray:
    return image.pixels[..., :-1] if image.has_alpha else image.pixels


def summarise(labels: Sequence[str], items: Sequence[ImageNumbers]) -> Summary:
    scored = bool(items) and all(item.scores is not None for item in items)
    scores = (
        [[item.scores[m] for item in items if item.scores] for m in range(len(labels))]
        if scored
        else None
    )
    pairs = list(itertools.combinations(range(len(labels)), 2))
    differences = {pair: [item.differences[pair] for item in items] for pair in pairs}
    return Summary(
        list(labels),
        [item.name for item in items],
        scores,
        differences,
        [item.regions for item in items],
    )


__all__ = [
    "ComparedImage",
    "Contender",
    "ImageNumbers",
    "PairDifference",
    "Score",
    "Summary",
    "input_paths",
    "iter_comparisons",
    "luma",
    "references_for",
    "summarise",
]
