"""Static int8 quantization of an ONNX model with ONNX Runtime, calibrated on images.

QDQ format (QuantizeLinear/DequantizeLinear pairs around each convolution), int8 weights
quantized per output channel, uint8 activations whose ranges are measured by running the
fp32 model on crops of calibration images. The result is an ordinary ONNX file carrying
srgan's metadata (`srgan.precision = int8`), run by ONNX Runtime's int8 kernels.

`reduce_range` (7-bit weights) avoids the 16-bit saturation of CPUs without VNNI, whose
uint8 x int8 products accumulate in pairs in int16.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from srgan.errors import BadInputError
from srgan.zoo.descriptor import ModelDescriptor

QUANTIZER_VERSION = 1
CALIBRATION_CROP = 48  # input pixels per side: small crops keep calibration memory low
CROPS_PER_IMAGE = 4
MAX_CALIBRATION_IMAGES = 64
# skimage's bundled colour photos (no download); the gray `camera` adds a flat-toned one
SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera")
DEFAULT_CALIBRATION = "skimage-photos"


def sample_photos() -> list[np.ndarray]:
    """The photos scikit-image ships, as (H, W, 3) uint8 arrays."""
    try:
        from skimage import data
    except ImportError:
        raise BadInputError(
            "int8 calibration needs images: pip install scikit-image (its sample photos are "
            "the default), or run `srgan quantize MODEL --calibration DIR -o model-int8.onnx`"
        ) from None
    photos = []
    for name in SAMPLE_PHOTOS:
        picture = getattr(data, name)()
        photos.append(np.repeat(picture[..., None], 3, axis=2) if picture.ndim == 2 else picture)
    return photos


def folder_images(folder: Path, max_pixels: int | None) -> Iterator[np.ndarray]:
    """Up to MAX_CALIBRATION_IMAGES images of a folder, as (H, W, C) arrays, read one at a
    time (only crops of each are kept)."""
    from srgan.imaging.io import list_images, read_image

    if not folder.is_dir():
        raise BadInputError(f"--calibration {folder}: not a folder")
    paths = list_images(folder)[:MAX_CALIBRATION_IMAGES]
    if not paths:
        raise BadInputError(f"--calibration {folder}: no images found")
    return (read_image(path, max_pixels).pixels for path in paths)


def calibration_tiles(
    images: Iterable[np.ndarray], channels: int, seed: int = 0
) -> list[np.ndarray]:
    """[1, channels, s, s] float32 crops in [0, 1]: CROPS_PER_IMAGE random crops of each
    image and of its half-size copy (inputs to super-resolution are often small and soft)."""
    return split_tiles(images, channels, seed, 0)[0]


def split_tiles(
    images: Iterable[np.ndarray], channels: int, seed: int = 0, check_images: int = 4
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Calibration crops of every image and, from the first `check_images`, other crops
    (another seed) to check the quantized model on; the images are read once."""
    from PIL import Image as PILImage

    rng, check_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    tiles: list[np.ndarray] = []
    check: list[np.ndarray] = []
    for index, pixels in enumerate(images):
        scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
        colour = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, 2)
        as8 = (colour / scale * 255).round().astype(np.uint8)
        half = np.asarray(PILImage.fromarray(as8).reduce(2))
        for version in (as8, half):
            for _ in range(CROPS_PER_IMAGE // 2):
                tiles.append(_crop(version, rng, channels))
                if index < check_images:
                    check.append(_crop(version, check_rng, channels))
    return tiles, check


def _crop(pixels: np.ndarray, rng: np.random.Generator, channels: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    size = min(CALIBRATION_CROP, height, width)
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    crop = pixels[top : top + size, left : left + size].astype(np.float32) / 255.0
    if channels == 1:
        crop = crop.mean(axis=2, keepdims=True)
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None])


def quantize_onnx(
    fp32: Path,
    target: Path,
    tiles: Sequence[np.ndarray],
    descriptor: ModelDescriptor,
    reduce_range: bool = False,
) -> None:
    """Write the int8 (QDQ) version of the fp32 ONNX model `fp32` to `target`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from srgan.zoo.onnx_model import write_metadata

    if not tiles:
        raise BadInputError("int8 calibration needs at least one image")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._tiles: Iterator[np.ndarray] = iter(tiles)

        def get_next(self) -> dict[str, np.ndarray] | None:
            tile = next(self._tiles, None)
            return None if tile is None else {"input": tile}

    prepared = target.with_name(f".{target.name}.{secrets.token_hex(4)}.pre.onnx")
    try:
        # Symbolic shape inference cannot follow the free height and width; ONNX's own
        # shape inference and graph optimisation still run.
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # MinMax keeps only each tensor's extremes per crop: memory stays small.
            calibrate_method=CalibrationMethod.MinMax,
        )
    finally:
        prepared.unlink(missing_ok=True)
        for leftover in target.parent.glob(f"{prepared.name}*"):
            leftover.unlink(missing_ok=True)
    write_metadata(target, descriptor, "int8")


def quantize_to_file(
    fp32: Path,
    target: Path,
    tiles: Sequence[np.ndarray],
    descriptor: ModelDescriptor,
    reduce_range: bool = False,
) -> None:
    """`quantize_onnx` into `target` atomically (a temporary file, then a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part.onnx")
    try:
        quantize_onnx(fp32, temp, tiles, descriptor, reduce_range)
        with temp.open("rb") as stream:
            os.fsync(stream.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
