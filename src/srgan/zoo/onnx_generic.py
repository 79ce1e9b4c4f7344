"""Open an ONNX super-resolution model of any architecture for ONNX Runtime.

`open_generic_onnx` checks the file (`srgan.zoo.onnx_any`), reads the conventions it
fixes and measures the rest by running it on small probes: the sizes it accepts (a size
multiple, found by trying sides), its scale (output size / input size, the same on both
axes) and, when neither the metadata nor the user says, its value range (0-1 or 0-255:
whichever makes the output closer to the enlarged input). The result is a `GenericOnnx`,
described like every other model, that `srgan.inference.onnx_generic.GenericOnnxRunner`
runs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srgan.errors import BadInputError
from srgan.zoo.descriptor import Described, ModelDescriptor
from srgan.zoo.onnx_any import (
    ChannelOrder,
    Layout,
    OnnxConventions,
    from_model_output,
    inspect_onnx,
    to_model_input,
)

log = logging.getLogger(__name__)

_PROBE_SIDE = 32
_MULTIPLES = (1, 2, 4, 8, 16, 32, 64)
MAX_SCALE = 16
_RANGE_MARGIN = 2.0  # the chosen range must fit this much better than the other


# Activation memory per input pixel of a graph nobody described, for choosing tiles: as
# much as srgan's hungriest network (RRDBNet x4, 64 features); --tile overrides it.
UNKNOWN_MEMORY_PER_PIXEL = 4.0 * 64 * (6 + 2 * 4**2)


@dataclass(frozen=True)
class OnnxHints:
    """What the user says about an ONNX file's input (None: read from it or measured)."""

    layout: Layout | None = None
    value_range: float | None = None
    channel_order: ChannelOrder | None = None


@dataclass
class GenericOnnx(Described):
    descriptor: ModelDescriptor
    path: Path
    conventions: OnnxConventions
    size_multiple: int  # sides the model accepts (1: any); fixed-size models: 0

    @property
    def max_tile_input(self) -> int:
        """The largest tile side (context included) the model takes; 0: any."""
        fixed = self.conventions.fixed_size
        return min(fixed) if fixed else 0


def onnx_session(path: Path, threads: int | None, spinning: bool = True):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    if not spinning:  # idle threads sleep: the cores go to other stages (video)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4  # probes fail on purpose: fatal errors only
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime's errors have many classes
        reason = " ".join(str(exc).split())[:200]
        raise BadInputError(f"{path}: ONNX Runtime cannot load it ({reason})") from None


def _probe_image(channels: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [0.5 + 0.35 * np.sin(x / 3.1 + p) * np.cos(y / 4.3 - p) for p in (0.0, 1.0, 2.0)]
    image = np.clip(np.stack(planes) + rng.normal(0, 0.03, (3, height, width)), 0.05, 0.95)
    if channels == 1:
        image = image.mean(axis=0, keepdims=True)
    return image[None].astype(np.float32)


def run_converted(session, conventions: OnnxConventions, tile: np.ndarray) -> np.ndarray:
    feed = {conventions.input_name: to_model_input(tile, conventions)}
    (output,) = session.run([conventions.output_name], feed)
    return from_model_output(output, conventions)


def _accepted_side(session, conventions: OnnxConventions) -> tuple[int, int]:
    """(size multiple, a side it accepted): the smallest multiple whose probe runs."""
    failures = []
    for multiple in _MULTIPLES:
        side = -(-(_PROBE_SIDE + 1) // multiple) * multiple  # 33 unless a multiple is needed
        try:
            run_converted(session, conventions, _probe_image(conventions.channels, side, side))
            return multiple, side
        except BadInputError:
            raise
        except Exception as exc:  # the model refuses this size: try the next multiple
            failures.append(" ".join(str(exc).split())[:160])
    raise BadInputError(
        f"the model ran on none of the probe sizes ({failures[-1] if failures else 'no reason'})"
    )


def _measure_scale(session, conventions: OnnxConventions, height: int, width: int) -> int:
    x = _probe_image(conventions.channels, height, width)
    y = run_converted(session, conventions, x)
    if y.shape[1] != conventions.channels:
        raise BadInputError(
            f"the model turns {conventions.channels} channels into {y.shape[1]}; srgan runs "
            "image-to-image models with as many channels out as in"
        )
    scale_h, scale_w = y.shape[2] / height, y.shape[3] / width
    if scale_h != scale_w or scale_h != int(scale_h) or not 1 <= scale_h <= MAX_SCALE:
        raise BadInputError(
            f"the model turns {width}x{height} into {y.shape[3]}x{y.shape[2]}: not a "
            f"whole scale of 1 to {MAX_SCALE} on both axes"
        )
    return int(scale_h)


def _guess_range(session, conventions: OnnxConventions, height: int, width: int) -> float:
    """0-1 or 0-255: the one whose output looks like the enlarged input."""
    x = _probe_image(conventions.channels, height, width)
    errors = {}
    for value_range in (1.0, 255.0):
        trial = conventions.with_(value_range=value_range)
        y = run_converted(session, trial, x)
        s = y.shape[2] // height
        enlarged = x.repeat(s, axis=2).repeat(s, axis=3)
        difference = np.abs(np.nan_to_num(y, nan=10.0, posinf=10.0, neginf=-10.0) - enlarged)
        errors[value_range] = float(difference.mean())
    best = min(errors, key=errors.__getitem__)
    other = max(errors, key=errors.__getitem__)
    if errors[other] < _RANGE_MARGIN * errors[best]:
        log.warning(
            "could not tell whether the model takes values in 0-1 or 0-255 (the outputs "
            "differ from the enlarged input by %.3g and %.3g): assuming 0-1; give "
            "--onnx-range 255 if it is wrong",
            errors[1.0],
            errors[255.0],
        )
        return 1.0
    return best


def open_generic_onnx(
    path: Path,
    layout: Layout | None = None,
    value_range: float | None = None,
    channel_order: ChannelOrder | None = None,
    threads: int | None = None,
) -> GenericOnnx:
    """The model's conventions, read and measured (see the module doc)."""
    conventions, range_unknown = inspect_onnx(path, layout, value_range, channel_order)
    session = onnx_session(path, threads)
    if conventions.fixed_size is not None:
        height, width = conventions.fixed_size
        multiple = 0
    else:
        multiple, side = _accepted_side(session, conventions)
        height = width = side
    try:
        if range_unknown:
            conventions = conventions.with_(
                value_range=_guess_range(session, conventions, height, width)
            )
        scale = _measure_scale(session, conventions, height, width)
    except BadInputError as exc:
        raise BadInputError(f"{path}: {exc}") from None
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise BadInputError(f"{path}: ONNX Runtime failed on a probe image ({reason})") from None
    conventions = conventions.with_(scale=scale)
    log.info("%s: %s", path.name, conventions.describe())
    descriptor = ModelDescriptor(
        name=path.stem,
        architecture="onnx",
        scale=scale,
        in_channels=conventions.channels,
        size_multiple=max(1, multiple),
        supports_half=False,
        supports_bf16=False,
        memory_per_pixel=UNKNOWN_MEMORY_PER_PIXEL,
    )
    return GenericOnnx(descriptor, path, conventions, multiple)
