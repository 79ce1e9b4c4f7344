"""`srgan dataset ...`: make training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import console

dataset_app = typer.Typer(help="Prepare training data.", no_args_is_help=True)


@dataset_app.command("prepare")
def prepare(
    source: Annotated[Path, typer.Argument(metavar="SRC", help="Folder of HR photos.")],
    target: Annotated[Path, typer.Argument(metavar="DST", help="Output folder.")],
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
    from srgan.imaging.io import list_images
    from srgan.training.prepare import PrepareSettings, prepare_dataset

    settings = PrepareSettings(size, step, tuple(scales or [4]), val_fraction, seed)
    total = len(list_images(source)) if source.is_dir() else 0
    with console.progress_bar("prepare", total) as bar:
        report = prepare_dataset(source, target, settings, bar.advance)
    console.note(
        f"dataset: {report.train_patches} train sub-images from {report.train_images} photos, "
        f"{report.val_patches} val sub-images from {report.val_images} photos in {target}"
    )
