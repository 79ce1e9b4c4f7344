"""One conversion, validated: read the source, write the target to temporary files, run
both with their own runtimes on a probe image, and keep the target only if the outputs
agree within the tolerance. And many: a folder of models converted to one format.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from srgan.conversion.formats import (
    EXTENSION,
    MODEL_SUFFIXES,
    RUNTIME,
    files_of,
    format_of,
)
from srgan.conversion.network import Network
from srgan.conversion.sources import Source, read_network, resolve
from srgan.conversion.validation import (
    PROBE_FRAMES,
    PROBE_SIZE,
    Difference,
    difference,
    probe,
    run_format,
)
from srgan.conversion.writers import Staged, stage
from srgan.defaults import DEFAULT_VSR_WINDOW
from srgan.errors import BadInputError, SrganError

FP32_TOLERANCE = 1e-3
FP16_TOLERANCE = 1e-2  # half-precision weights (and, in ONNX, arithmetic)


@dataclass(frozen=True)
class ConvertOptions:
    fp16: bool = False
    tolerance: float | None = None  # None: FP32_TOLERANCE, or FP16_TOLERANCE with fp16
    probe_size: int = PROBE_SIZE
    frames: int | None = None  # a video network's ONNX input: this many frames (default:
    # the source ONNX file's, else DEFAULT_VSR_WINDOW)

    @property
    def limit(self) -> float:
        if self.tolerance is not None:
            return self.tolerance
        return FP16_TOLERANCE if self.fp16 else FP32_TOLERANCE


@dataclass
class ConversionResult:
    source: str
    target: str
    source_format: str = ""
    target_format: str = ""
    architecture: str = ""
    hyperparameters: dict[str, int | str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    source_runtime: str = ""
    target_runtime: str = ""
    max_abs: float | None = None
    mean_abs: float | None = None
    tolerance: float = FP32_TOLERANCE
    precision: str = "fp32"
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, object]:
        return {**vars(self), "ok": self.ok}


class ConversionFailed(SrganError):
    """The result did not match the source (or could not be made): nothing was written."""

    def __init__(self, result: ConversionResult) -> None:
        super().__init__(result.error or "conversion failed")
        self.result = result


def target_for(source: Source, target: Path, to: str | None) -> tuple[Path, str]:
    """The target file and format: from its extension, or `to` for a folder target."""
    if to is not None and (target.is_dir() or not target.suffix):
        return target / f"{source.name}{EXTENSION[to]}", to
    fmt = format_of(target)
    if to is not None and to != fmt:
        raise BadInputError(f"{target}: its extension says {fmt}, --to says {to}")
    return target, fmt


def convert(source_text: str, target: Path, options: ConvertOptions, to: str | None = None
            ) -> ConversionResult:  # fmt: skip
    """Convert and validate; raises BadInputError for unusable requests and
    ConversionFailed (nothing written) when the result does not match its source."""
    started = time.monotonic()
    source = resolve(source_text)
    target, fmt = target_for(source, target, to)
    finals = files_of(target, fmt)
    inputs = {path.resolve() for path in source.files}
    for path in finals:
        if path.resolve() in inputs:
            raise BadInputError(f"{path}: is the source; write the conversion somewhere else")
    result = ConversionResult(
        source_text,
        str(target),
        source.format if not source.named else "ncnn (named model)",
        fmt,
        files=[str(p) for p in finals],
        source_runtime=RUNTIME[source.format],
        target_runtime=RUNTIME[fmt],
        tolerance=options.limit,
        precision="fp16" if options.fp16 else "fp32",
    )
    if source.variant is not None:
        network = _family_network(source, fmt, options)
        if network is None:  # Real-CUGAN, waifu2x, or any family model to ONNX / ncnn
            return _convert_family(source, target, fmt, options, result, started)
    else:
        network = read_network(source)
    result.architecture, result.hyperparameters = network.architecture, network.hyperparameters
    descriptor = network.loaded.descriptor
    source_frames = _onnx_frames(source) if descriptor.temporal else None
    frames = options.frames or source_frames or DEFAULT_VSR_WINDOW
    if descriptor.temporal and source_frames and fmt == "onnx" and frames != source_frames:
        raise BadInputError(
            f"{source_text}: an ONNX video network of {source_frames} frames cannot be "
            f"validated against {frames} frames; convert it to .safetensors first"
        )
    staged = stage(network, fmt, target, options.fp16, frames)

    def measure() -> Difference:
        probe_frames = None
        if descriptor.temporal:
            probe_frames = frames if "onnx" in (fmt, source.format) else PROBE_FRAMES
        x = probe(
            descriptor.in_channels, options.probe_size, descriptor.size_multiple, probe_frames
        )
        reference = run_format(source.format, source.path, network, x)
        written = network if RUNTIME[fmt] != "torch" else _reread(staged.temporary[0], fmt)
        return difference(reference, run_format(fmt, staged.temporary[0], written, x))

    return _validated(staged, measure, result, options, f"{source_text} -> {target}", started)


def _validated(
    staged: Staged,
    measure: Callable[[], Difference],
    result: ConversionResult,
    options: ConvertOptions,
    what: str,
    started: float,
) -> ConversionResult:
    """Keep the staged files if `measure`'s difference is within the tolerance, else
    discard them and raise ConversionFailed (any other error discards them too)."""
    try:
        found = measure()
        result.max_abs, result.mean_abs = found.max_abs, found.mean_abs
        if not found.max_abs <= options.limit:
            result.error = (
                f"{what}: the result differs from the source by up to {found.max_abs:.3g} "
                f"(mean {found.mean_abs:.3g}), more than the tolerance {options.limit:g}; "
                "nothing was written"
            )
            raise ConversionFailed(result)
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    finally:
        result.seconds = time.monotonic() - started
    return result


def _family_network(source: Source, fmt: str, options: ConvertOptions) -> Network | None:
    """A family model as a network of srgan's architectures, for .pth / .safetensors
    (RealSR is an RRDBNet); None when it converts as ncnn files (ONNX, ncnn); a one-line
    refusal when it has no such network."""
    from srgan.conversion.family import FORMATS, refusal

    variant = source.variant
    assert variant is not None
    if fmt in FORMATS:
        return None
    try:
        return read_network(source)
    except BadInputError:
        raise BadInputError(refusal(variant, fmt, options.fp16) or "no network") from None


def _convert_family(
    source: Source,
    target: Path,
    fmt: str,
    options: ConvertOptions,
    result: ConversionResult,
    started: float,
) -> ConversionResult:
    from srgan.conversion.family import family_difference, refusal, stage_family

    variant = source.variant
    assert variant is not None
    why = refusal(variant, fmt, options.fp16)
    if why:
        raise BadInputError(why)
    result.architecture = variant.family.architecture
    result.hyperparameters = {"scale": variant.scale}
    if variant.denoise is not None:
        result.hyperparameters["denoise"] = variant.denoise
    staged = stage_family(variant, fmt, target)

    def measure() -> Difference:
        return family_difference(variant, fmt, staged.temporary[0], options.probe_size)

    return _validated(staged, measure, result, options, f"{source.name} -> {target}", started)


def _onnx_frames(source: Source) -> int | None:
    if source.format != "onnx":
        return None
    from srgan.zoo.onnx_weights import load_onnx, metadata

    text = metadata(load_onnx(source.path)).get("srgan.frames", "")
    return int(text) if text.isdigit() and 0 < int(text) <= 64 else None


def _reread(path: Path, fmt: str):
    """The written PyTorch file read back as `srgan` reads it (weights_only=True)."""
    from srgan.conversion.network import Network
    from srgan.zoo.architectures import detect
    from srgan.zoo.weight_files import read_state_dict

    state = {k: v.float() for k, v in read_state_dict(path).items()}
    found = detect(state)
    if found is None:
        raise SrganError(f"{path}: the written weights are not recognised again")
    arch, hp = found
    return Network(path.stem, arch.name, hp, state)


def folder_sources(folder: Path) -> list[Path]:
    """The model files of a folder (an ncnn model by its .param), in name order."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES and not p.name.startswith(".")
    )


def convert_folder(
    folder: Path,
    target: Path,
    to: str,
    options: ConvertOptions,
    on_result: Callable[[ConversionResult], None] | None = None,
) -> Iterator[ConversionResult]:
    """Every model of `folder` to `target/NAME.EXT`; a failure is a result, not the end."""
    sources = folder_sources(folder)
    if not sources:
        raise BadInputError(f"{folder}: no model files ({', '.join(MODEL_SUFFIXES)})")
    seen: dict[Path, Path] = {}
    for path in sources:
        planned = (target / f"{path.stem}{EXTENSION[to]}").resolve()
        started = time.monotonic()
        try:
            if planned in seen:
                raise BadInputError(
                    f"{path.name} and {seen[planned].name} would both become {planned.name}"
                )
            seen[planned] = path
            result = convert(str(path), target, options, to)
        except SrganError as exc:
            result = getattr(exc, "result", None) or ConversionResult(
                str(path), str(planned), target_format=to, error=str(exc)
            )
            result.seconds = time.monotonic() - started
        except Exception as exc:  # one model's surprise must not stop the others
            result = ConversionResult(
                str(path), str(planned), target_format=to, error=f"{type(exc).__name__}: {exc}"
            )
        if on_result is not None:
            on_result(result)
        yield result
