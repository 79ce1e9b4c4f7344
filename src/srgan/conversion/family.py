"""`srgan convert` for the Real-CUGAN, waifu2x and RealSR models (the sr-vulkan families).

Their graphs have no PyTorch architecture outside srgan (srgan runs them through its ncnn
interpreter), so a .pth or .safetensors of them would load nowhere: they convert to ONNX
(the interpreted network, exported) and to ncnn (their original files, copied). RealSR is
an RRDBNet and also converts to .pth / .safetensors like Real-ESRGAN (its padding is
only border context: the plain network is RealSR as other tools run it). The ONNX
file holds the bare network, as the .param does, and srgan's metadata: the descriptor and
the family's conventions (padding, border, output crop, residual), so `--model FILE.onnx`
runs it as the named model runs. Validation runs the original with the ncnn runtime and
the result with its own runtime, both with those conventions around the network.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan.conversion.formats import EXTENSION, files_of
from srgan.conversion.validation import difference, probe, run_onnx
from srgan.conversion.writers import Staged, _temporary
from srgan.errors import BadInputError
from srgan.zoo.ncnn_conventions import CONVENTIONS_KEY, conventions_to_json

if TYPE_CHECKING:
    from srgan.zoo.ncnn_families import NcnnVariant

FORMATS = ("onnx", "ncnn")


def refusal(variant: NcnnVariant, fmt: str, fp16: bool) -> str | None:
    """Why `variant` cannot be converted to `fmt`, or None."""
    if fmt not in FORMATS:
        return (
            f"{variant.name}: a {variant.family.architecture} graph has no PyTorch "
            f"architecture outside srgan, so a {EXTENSION[fmt]} would load nowhere; convert it "
            "to .onnx or .param"
        )
    if fp16:
        return f"{variant.name}: --fp16 is for srgan's own architectures; its files are fp16"
    return None


def stage_family(variant: NcnnVariant, fmt: str, target: Path) -> Staged:
    """The converted files under temporary names beside `target`."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"{target.parent}: cannot create the folder ({exc.strerror})") from exc
    token = secrets.token_hex(4)
    staged = Staged([(_temporary(final, token), final) for final in files_of(target, fmt)])
    try:
        if fmt == "ncnn":
            for source, (temporary, _) in zip(variant.files(), staged.pairs, strict=True):
                shutil.copyfile(source, temporary)
        else:
            write_family_onnx(variant, staged.pairs[0][0])
    except BaseException:
        staged.discard()
        raise
    return staged


def write_family_onnx(variant: NcnnVariant, path: Path) -> None:
    """The bare network as ONNX with the descriptor and the conventions in its metadata.

    The file's global pools see what they are given: tiled, each tile's own statistics
    (as the reference programs do); the exact two-pass statistics need the named model."""
    from srgan.zoo.ncnn_loader import export_variant_onnx
    from srgan.zoo.onnx_model import write_metadata

    export_variant_onnx(variant, path, with_statistics=False)
    descriptor = replace(variant.descriptor(), global_statistics=False)
    conventions = {CONVENTIONS_KEY: conventions_to_json(variant.conventions())}
    write_metadata(path, descriptor, "fp32", extra=conventions)


def family_difference(variant: NcnnVariant, fmt: str, written: Path, size: int):
    """The original (ncnn runtime) against the written file (its runtime) on a probe image,
    both with the family's conventions around the network."""
    from srgan.conversion.validation import run_ncnn
    from srgan.zoo.ncnn_conventions import wrap_forward

    conventions = variant.conventions()
    param, weights = variant.files()
    x = probe(3, size)

    def original(tile: np.ndarray) -> np.ndarray:
        return run_ncnn(param, weights, tile)

    def result(tile: np.ndarray) -> np.ndarray:
        if fmt == "onnx":
            return run_onnx(written, tile)
        return run_ncnn(written, written.with_suffix(".bin"), tile)

    return difference(wrap_forward(conventions, original)(x), wrap_forward(conventions, result)(x))
