"""int8 models: for ONNX Runtime, a model's fp32 export statically quantized once on the
sample photos and cached beside the export (`--precision int8`), or a file from
`srgan quantize` run as it is; for ncnn, the model's ncnn files with int8 convolutions
calibrated on the same photos (`srgan.zoo.ncnn_int8`), cached."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan.errors import BadInputError
from srgan.inference.machine import has_vnni
from srgan.zoo.cache import cached_file
from srgan.zoo.onnx_model import OnnxModel
from srgan.zoo.quantize import (
    DEFAULT_CALIBRATION,
    QUANTIZER_VERSION,
    calibration_tiles,
    quantize_onnx,
    quantize_to_file,
    sample_photos,
    split_tiles,
)

if TYPE_CHECKING:
    from srgan.zoo.sources import ModelSource

log = logging.getLogger(__name__)


def reduce_range_here() -> bool:
    """7-bit weights where the CPU lacks VNNI (see `srgan.zoo.quantize`)."""
    return not has_vnni()


def ncnn_int8_files(source: ModelSource) -> tuple[Path, Path]:
    """The cached int8-ready ncnn files of `source` (calibrated on first use)."""
    from srgan.inference.backends.ncnn import blob_maxima
    from srgan.zoo import ncnn_int8
    from srgan.zoo.ncnn_model import NcnnModel

    assert source.ncnn_files is not None and source.descriptor is not None
    param, weights = source.ncnn_files
    descriptor = source.descriptor
    stem = f"{source.identity}-ncnn-int8-q{ncnn_int8.INT8_VERSION}-{DEFAULT_CALIBRATION}"

    def build_param(path: Path) -> None:
        path.write_text(ncnn_int8.int8_param_text(param))

    def build_bin(path: Path) -> None:
        log.warning("%s: calibrating ncnn int8 on the sample photos (once; cached)", source.name)
        model = ncnn_int8.read_model(param, weights)
        tiles = calibration_tiles(sample_photos(), descriptor.in_channels)
        blobs = ncnn_int8.convolution_inputs(model)
        fp32 = NcnnModel(descriptor, param, weights)
        path.write_bytes(ncnn_int8.int8_bin(model, blob_maxima(fp32, blobs, tiles, 0)))

    return cached_file(f"{stem}.param", build_param), cached_file(f"{stem}.bin", build_bin)


def quantized_model(source: ModelSource, fp32: Path) -> Path:
    """The cached int8 version of `fp32`, quantized on first use (a few seconds for the
    compact models, about a minute for the large ones)."""
    assert source.descriptor is not None
    descriptor = source.descriptor
    reduce_range = reduce_range_here()
    variant = "rr" if reduce_range else "full"
    name = f"{source.identity}-int8-q{QUANTIZER_VERSION}-{DEFAULT_CALIBRATION}-{variant}.onnx"

    def build(path: Path) -> None:
        log.warning("%s: quantizing to int8 on the sample photos (once; cached)", descriptor.name)
        tiles = calibration_tiles(sample_photos(), descriptor.in_channels)
        quantize_onnx(fp32, path, tiles, descriptor, reduce_range)

    return cached_file(name, build)


@dataclass(frozen=True)
class QuantizeReport:
    tiles: int  # calibration crops
    psnr_vs_fp32: float  # dB on Y, int8 against fp32 on other crops of the same images
    seconds: float
    reduce_range: bool


def quantize_model(
    source: ModelSource,
    target: Path,
    images: Iterable[np.ndarray] | None = None,
    reduce_range: bool | None = None,
) -> QuantizeReport:
    """Quantize a model to `target` (atomically), calibrated on `images` (default: the
    sample photos), and measure the int8 output against fp32 on crops not used for
    calibration. `reduce_range` None: as this CPU needs (see `reduce_range_here`)."""
    from srgan.inference.backends.onnx import OnnxBackend

    started = time.perf_counter()
    if source.descriptor is None or OnnxBackend().refusal(source, "cpu", "fp32") is not None:
        raise BadInputError(f"{source.name}: only image networks can be quantized")
    if source.onnx_precision == "int8":
        raise BadInputError(f"{source.name}: is already quantized")
    if source.conventions is not None:  # padded and cropped by the runner, not the file
        raise BadInputError(f"{source.name}: the sr-vulkan families run in fp32 only")
    descriptor = source.descriptor
    fp32 = OnnxBackend().prepare(source, "cpu", "fp32")
    assert isinstance(fp32, OnnxModel)
    pictures = images if images is not None else sample_photos()
    tiles, held_out = split_tiles(pictures, descriptor.in_channels)
    chosen_range = reduce_range_here() if reduce_range is None else reduce_range
    quantize_to_file(fp32.path, target, tiles, descriptor, chosen_range)
    quality = int8_psnr(fp32, OnnxModel(descriptor, target, "int8"), held_out)
    return QuantizeReport(len(tiles), quality, time.perf_counter() - started, chosen_range)


def int8_psnr(fp32: OnnxModel, int8: OnnxModel, tiles: Sequence[np.ndarray]) -> float:
    """PSNR (dB, Y channel, 8-bit as saved) of the int8 outputs against the fp32 ones."""
    import torch

    from srgan.inference.backends.onnx import OrtRunner
    from srgan.metrics import psnr

    reference, quantized = OrtRunner(fp32), OrtRunner(int8)
    colour = fp32.descriptor.in_channels == 3
    errors = []
    for tile in tiles:
        a = torch.from_numpy(reference(tile)).clamp(0, 1)
        b = torch.from_numpy(quantized(tile)).clamp(0, 1)
        errors.append(float(psnr(b, a, y_channel=colour)[0]))
    finite = [value for value in errors if value != float("inf")]
    if not finite:
        return float("inf")
    # The PSNR of the mean squared error over all crops (not the mean of the PSNRs).
    mse = sum(255.0**2 / 10 ** (value / 10) for value in finite) / len(errors)
    return 10 * math.log10(255.0**2 / mse)
