"""Backends behind one protocol (`base.Backend`), and the choice between them.

`open_model` turns a model name or file into a model ready for `srgan.inference.upscaler`
on the backend `select_backend` picks: the one the user forces, the only one that can run
the model so, or (`auto`) the fastest by a measurement cached per machine (`choice.py`).
Nothing here looks at model names: a backend decides from a model's source (its
descriptor and the forms it offers: PyTorch weights, ncnn files, an ONNX file).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from srgan.errors import BadInputError
from srgan.inference.backends.base import AnyModel, Backend, Runner, installed, version
from srgan.inference.backends.choice import (
    Choice,
    ChoiceCache,
    ChoiceKey,
    Measure,
    Probe,
    choose,
)
from srgan.inference.backends.ncnn import NcnnBackend
from srgan.inference.backends.onnx import OnnxBackend
from srgan.inference.backends.torch import TorchBackend
from srgan.inference.machine import cpu_model_name, cpu_signature
from srgan.zoo.cache import cache_dir
from srgan.zoo.onnx_any_file import (
    is_onnx_file,
    is_srgan_image_onnx,
    onnx_metadata,
    open_onnx_file,
)
from srgan.zoo.onnx_generic import OnnxHints
from srgan.zoo.sources import ModelSource, ncnn_runs_as_is, resolve_source

__all__ = [
    "BACKENDS",
    "BACKEND_CHOICES",
    "AnyModel",
    "Backend",
    "Runner",
    "Selection",
    "backend_of",
    "choice_cache",
    "default_threads",
    "open_model",
    "open_source",
    "runner_for",
    "select_backend",
]

log = logging.getLogger(__name__)

BACKENDS: tuple[Backend, ...] = (OnnxBackend(), NcnnBackend(), TorchBackend())
BY_NAME: dict[str, Backend] = {backend.name: backend for backend in BACKENDS}
BACKEND_CHOICES = ("auto", "torch", "onnxruntime", "ncnn")


@dataclass(frozen=True)
class Selection:
    backend: str
    reason: str  # one line for -v
    choice: Choice | None = None  # the measurement behind an `auto` pick


def default_threads(parallel_images: int = 1) -> int:
    """Threads per image: the cores shared between the images computed at once."""
    return max(1, (os.cpu_count() or 1) // max(1, parallel_images))


def choice_cache() -> ChoiceCache:
    return ChoiceCache(cache_dir())


def choice_key(
    source: ModelSource, device: str, precision: str, threads: int, candidates: list[Backend]
) -> ChoiceKey:
    return ChoiceKey(
        model=source.identity,
        name=source.name,
        precision=precision,
        device=device,
        threads=threads,
        cpu=cpu_model_name(),
        cpu_signature=cpu_signature(),
        versions=tuple((b.name, version(b) or "absent") for b in candidates),
    )


def candidates_for(source: ModelSource, device: str, precision: str) -> list[Backend]:
    return [b for b in BACKENDS if installed(b) and b.refusal(source, device, precision) is None]


def select_backend(
    source: ModelSource,
    device: str = "cpu",
    precision: str = "fp32",
    backend: str = "auto",
    threads: int | None = None,
    recalibrate: bool = False,
    measure: Measure | None = None,
) -> Selection:
    """Which backend runs `source`; BadInputError for a forced backend that cannot.

    `measure` replaces the real measurement (tests give a timing table)."""
    if backend not in BACKEND_CHOICES:
        raise BadInputError(f"--backend {backend!r}: use {', '.join(BACKEND_CHOICES)}")
    if backend != "auto":
        forced = BY_NAME[backend]
        refusal = forced.refusal(source, device, precision)
        if refusal is not None:
            raise BadInputError(f"--backend {backend}: {refusal}")
        if not installed(forced):
            raise BadInputError(
                f"--backend {backend} needs: pip install {' '.join(forced.packages)}"
            )
        return Selection(backend, "forced with --backend")
    candidates = candidates_for(source, device, precision)
    if not candidates:
        reasons = "; ".join(
            f"{b.name}: {b.refusal(source, device, precision) or 'not installed'}" for b in BACKENDS
        )
        raise BadInputError(f"no backend runs {source.name} on {device} in {precision} ({reasons})")
    if len(candidates) == 1:
        only = candidates[0].name
        return Selection(
            only, f"the only installed backend for {source.name} on {device} in {precision}"
        )
    threads = threads or default_threads()
    key = choice_key(source, device, precision, threads, candidates)
    if measure is None:
        measure = functools.partial(_measure, source, device, precision, threads)
    choice = choose(key, measure, choice_cache(), recalibrate)
    return Selection(choice.backend, choice.explain(), choice)


@dataclass
class OpenedModel:
    model: AnyModel
    selection: Selection
    source: ModelSource


def open_source(
    source: ModelSource,
    device: str = "cpu",
    precision: str = "fp32",
    backend: str = "auto",
    threads: int | None = None,
    recalibrate: bool = False,
) -> OpenedModel:
    source = with_known_descriptor(source)
    selection = select_backend(source, device, precision, backend, threads, recalibrate)
    log.info("backend %s: %s", selection.backend, selection.reason)
    model = BY_NAME[selection.backend].prepare(source, device, precision)
    return OpenedModel(model, selection, source)


def open_model(
    name_or_path: str,
    scale: float | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    backend: str = "auto",
    threads: int | None = None,
    recalibrate: bool = False,
    onnx: OnnxHints | None = None,
) -> AnyModel:
    """A named model or a weights file, ready for `srgan.inference.upscaler` on the backend
    `select_backend` picks (`threads`: per image, as the runner will use). An ONNX file
    that srgan did not write runs as it is with ONNX Runtime, whatever its architecture
    (`onnx`: what the user says about its input)."""
    if is_onnx_file(name_or_path):
        path = Path(name_or_path)
        metadata = onnx_metadata(path)
        if not is_srgan_image_onnx(metadata):
            return open_onnx_file(path, scale, device, precision, backend, onnx, metadata)
    source = resolve_source(name_or_path, scale)
    return open_source(source, device, precision, backend, threads, recalibrate).model


def with_known_descriptor(source: ModelSource) -> ModelSource:
    """The source with its PyTorch loader made load-once, and with its descriptor, loading
    the model with PyTorch when nothing else tells it (a file's first run; a .param file
    is then checked by srgan's parser and may go to the ncnn runtime)."""
    if source.load_torch is None:
        return source
    source = replace(source, load_torch=functools.cache(source.load_torch))
    if source.descriptor is None:
        assert source.load_torch is not None
        descriptor = source.load_torch().descriptor
        source = replace(source, descriptor=descriptor)
        if source.unchecked_ncnn is not None and ncnn_runs_as_is(descriptor):
            source = replace(source, ncnn_files=source.unchecked_ncnn)  # checked by that load
    return source


def backend_of(model: AnyModel) -> Backend:
    return next(b for b in BACKENDS if b.owns(model))


def runner_for(
    model: AnyModel, threads: int, device: str, precision: str, spinning: bool = True
) -> Runner:
    return backend_of(model).runner(model, threads, device, precision, spinning)


def _measure(
    source: ModelSource, device: str, precision: str, threads: int, names: Sequence[str]
) -> Probe:
    from srgan.inference.backends.probe import measure

    assert source.descriptor is not None
    return measure(
        [BY_NAME[name] for name in names],
        prepare=lambda b: b.prepare(source, device, precision),
        make_runner=lambda b, model: b.runner(model, threads, device, precision),
        channels=source.descriptor.in_channels,
        size_multiple=source.descriptor.size_multiple,
        threads_context=lambda b: _torch_threads(threads) if b.name == "torch" else _nothing(),
    )


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield
