"""`srgan dataset ...`: make training data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from srgan.cli import console
from srgan.cli.common import MaxPixels
from srgan.defaults import DEFAULT_MAX_PIXELS

R = TypeVar("R")

dataset_app = typer.Typer(help="Prepare training data.", no_args_is_help=True)


@dataset_app.command("prepare")
def prepare(
    source: Annotated[
        Path, typer.Argument(metavar="SRC", help="Folder of HR photos.", readable=False)
    ],
    target: Annotated[Path, typer.Argument(metavar="DST", help="Output folder.", readable=False)],
    size: Annotated[int, typer.Option("--size", help="Sub-image side in HR pixels.")] = 480,
    step: Annotated[int, typer.Option("--step", help="Distance between sub-images.")] = 240,
    scales: Annotated[
        list[int] | None, typer.Option("--scale", "-s", help="LR scale (repeatable).")
    ] = None,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of photos kept for validation.")
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train/val split.")] = 0,
) -> None:
    """Cut photos into overlapping sub-images with matching LR copies:
    DST/{train,val}/HR and DST/{train,val}/LR_xS, split by source photo."""
    from srgan.training.data.prepare import PrepareSettings, prepare_dataset

    settings = PrepareSettings(size, step, tuple(scales or [4]), val_fraction, seed)
    report = _over_photos("prepare", source, target, settings, prepare_dataset)
    console.note(
        f"dataset: {report.train_patches} train sub-images from {report.train_images} photos, "
        f"{report.val_patches} val sub-images from {report.val_images} photos in {target}"
    )


@dataset_app.command("clips")
def clips(
    source: Annotated[
        Path, typer.Argument(metavar="SRC", help="Folder of photos.", readable=False)
    ],
    target: Annotated[Path, typer.Argument(metavar="DST", help="Output folder.", readable=False)],
    frames: Annotated[int, typer.Option("--frames", min=1, help="Frames per clip.")] = 7,
    size: Annotated[int, typer.Option("--size", min=8, help="Frame side in pixels.")] = 192,
    clips_per_photo: Annotated[int, typer.Option("--clips-per-photo", min=1)] = 2,
    max_shift: Annotated[
        float, typer.Option("--max-shift", help="Camera speed limit, frame pixels per frame.")
    ] = 2.0,
    max_zoom: Annotated[
        float, typer.Option("--max-zoom", help="Zoom limit, relative change per frame.")
    ] = 0.01,
    shrink: Annotated[
        float, typer.Option("--shrink", help="Shrink photos by this factor first.")
    ] = 2.0,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of photos kept for validation.")
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Make synthetic video clips from photos (a camera panning and zooming slowly at
    sub-pixel steps): DST/{train,val}/<photo>_<k>/frame_0000.png ..."""
    from srgan.training.data.synthetic_clips import ClipSettings, make_clips

    settings = ClipSettings(
        frames, size, clips_per_photo, max_shift, max_zoom, shrink, val_fraction, seed
    )
    report = _over_photos("clips", source, target, settings, make_clips)
    skipped = f" ({report.skipped_photos} photos too small)" if report.skipped_photos else ""
    console.note(
        f"clips: {report.train_clips} train, {report.val_clips} val clips of {frames} frames "
        f"in {target}{skipped}"
    )


@dataset_app.command("degrade")
def degrade(
    source: Annotated[Path, typer.Argument(metavar="SRC", help="Folder of HR images.")],
    target: Annotated[Path, typer.Argument(metavar="DST", help="Output folder of LR PNGs.")],
    scale: Annotated[int, typer.Option("--scale", "-s", min=1)] = 4,
    degradation: Annotated[
        str, typer.Option("--degradation", help="realesrgan (default) or bicubic.")
    ] = "realesrgan",
    config_file: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="A training config: its [data.realesrgan] settings."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random degradations.")] = 0,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Degrade HR images as training does (Real-ESRGAN's blur, resize, noise and JPEG,
    twice), seeded: DST/<name>.png at 1/scale, to score models on held-out images made
    like the training pairs (`srgan eval --lr DST`)."""
    from srgan.errors import BadInputError
    from srgan.training.data.degradations import DegradationName
    from srgan.training.data.degrade_folder import degrade_folder
    from srgan.training.recipes.srgan_config import load_image_config

    if degradation not in ("realesrgan", "bicubic"):
        raise BadInputError(f"--degradation {degradation!r}: use realesrgan or bicubic")
    name: DegradationName = "bicubic" if degradation == "bicubic" else "realesrgan"
    settings = load_image_config(config_file).data.realesrgan
    from srgan.imaging.io import list_images

    total = len(list_images(source)) if source.is_dir() else 0
    with console.progress_bar("degrade", total) as bar:
        count = degrade_folder(
            source, target, scale, name, settings, seed, max_pixels or None, bar.advance
        )
    console.note(f"degrade: {count} LR images x1/{scale} ({degradation}, seed {seed}) in {target}")


def _over_photos(
    label: str, source: Path, target: Path, settings: object, work: Callable[..., R]
) -> R:
    """`work(source, target, settings, advance)` under a progress bar over the photos."""
    from srgan.imaging.io import list_images

    total = len(list_images(source)) if source.is_dir() else 0
    with console.progress_bar(label, total) as bar:
        return work(source, target, settings, bar.advance)
