"""Bytes in, bytes out: decode an uploaded image, upscale it, encode the result.

Models are opened once (on first use) and shared by every request and job. A running
upscale stops at the next tile when its `CancelToken` is cancelled or its deadline
passes; tiles are capped at `max_tile` so that this happens often enough.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from srgan.defaults import DEFAULT_BICUBIC_SCALE
from srgan.errors import BadInputError
from srgan.imaging.io import decode_image, encode_image
from srgan.inference.upscaler import (
    UpscaleOptions,
    backend_name,
    make_runner,
    resolve_device,
    upscale_image,
)
from srgan.serve.schemas import ModelInfo, UpscaleParams
from srgan.serve.settings import ServeSettings
from srgan.zoo.ncnn_families import find_variant
from srgan.zoo.pretrained import PRETRAINED

log = logging.getLogger(__name__)

_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class Cancelled(Exception):
    """An upscale stopped early: deleted, timed out, or the server is shutting down."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CancelToken:
    """Checked between tiles: `cancel(reason)` or the deadline stops the computation."""

    def __init__(self, timeout_s: float | None = None) -> None:
        self.timeout_s = timeout_s
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._reason: str | None = None

    def cancel(self, reason: str) -> None:
        self._reason = self._reason or reason

    @property
    def reason(self) -> str | None:
        return self._reason

    def check(self) -> None:
        if self._reason is not None:
            raise Cancelled(self._reason)
        if self._deadline is not None and time.monotonic() > self._deadline:
            self._reason = f"timed out after {self.timeout_s:g} s"
            raise Cancelled(self._reason)


@dataclass
class _OpenModel:
    model: object
    runner: Callable | None  # None: made per call (bicubic's depends on the scale)


class Engine:
    """Runs upscales for the server with the models and device of its settings."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self._models: dict[str, _OpenModel] = {}
        # One model opens at a time: the first use of a named model exports it to ONNX
        # with PyTorch, which must not run twice at once in one process.
        self._opening = threading.Lock()
        self._catalog: list[ModelInfo] | None = None

    @property
    def name(self) -> str:
        """What, besides the request, decides the result's bytes (part of cache keys)."""
        return f"{self.device}/{self.settings.backend}/{self.settings.precision}"

    def scale_of(self, model: str) -> int:
        if model in self.settings.model_files:  # measured when the file is opened
            return int(self._open(model).model.scale)  # type: ignore[attr-defined]
        if model in PRETRAINED:
            return PRETRAINED[model].scale
        variant = find_variant(model)
        return variant.scale if variant is not None else int(DEFAULT_BICUBIC_SCALE)

    def output_size(self, params: UpscaleParams, width: int, height: int) -> tuple[int, int]:
        scale = params.outscale or self.scale_of(params.model)
        return math.ceil(width * scale), math.ceil(height * scale)

    def catalog(self) -> list[ModelInfo]:
        if self._catalog is None:
            from srgan.zoo.catalog import catalog_entry, model_catalog  # imports PyTorch

            listed = [e for e in model_catalog() if e.name in self.settings.models]
            shown = {e.name for e in listed}
            variants = [catalog_entry(n) for n in self.settings.models if n not in shown]
            entries = [*listed, *variants]  # the catalog's order, then family variants
            self._catalog = [
                ModelInfo(
                    name=entry.name,
                    architecture=entry.architecture,
                    scale=entry.scale,
                    parameters=entry.parameters,
                    description=entry.description,
                    default=entry.name == self.settings.default_model,
                )
                for entry in entries
                if entry is not None
            ]
            for name, path in self.settings.model_files.items():
                if name in self.settings.models:
                    descriptor = self._open(name).model.descriptor  # type: ignore[attr-defined]
                    self._catalog.append(
                        ModelInfo(
                            name=name,
                            architecture=descriptor.architecture,
                            scale=int(descriptor.scale),
                            parameters=descriptor.parameters,
                            description=f"the model file {path.name}",
                            default=name == self.settings.default_model,
                        )
                    )
        return self._catalog

    def warm_up(self, name: str) -> None:
        """Open a model now rather than on the first request."""
        self._open(name)

    def upscale(
        self,
        data: bytes,
        params: UpscaleParams,
        cancel: CancelToken,
        progress: Callable[[float], None] | None = None,
    ) -> bytes:
        """Encoded result of upscaling the encoded image `data`; raises BadInputError for
        unusable images and `Cancelled` when stopped."""
        cancel.check()
        image = decode_image(data, "upload", self.settings.max_pixels)
        cancel.check()
        opened = self._open(params.model)
        tile = min(params.tile or self.settings.max_tile, self.settings.max_tile)
        try:
            options = UpscaleOptions(
                tile=tile,
                tile_pad=params.tile_pad,
                outscale=params.outscale,
                alpha_mode=params.alpha_mode,
                precision=self.settings.precision,
                device=self.device,
            )
        except ValueError as exc:
            raise BadInputError(str(exc)) from None

        def on_tile(done: int, total: int) -> None:
            cancel.check()
            if progress is not None and total:
                progress(done / total)

        result = upscale_image(opened.model, image, options, on_tile, opened.runner)  # type: ignore[arg-type]
        cancel.check()
        return encode_image(
            result,
            _FORMATS[params.format],
            params.quality,
            self.settings.png_compression,
            name="result",
        )

    def _open(self, name: str) -> _OpenModel:
        if name not in self.settings.models:
            raise BadInputError(f"model {name!r} is not served here")
        opened = self._models.get(name)
        if opened is not None:
            return opened
        with self._opening:
            if name not in self._models:
                from srgan.inference.backends import open_model

                started = time.monotonic()
                # bicubic is PyTorch's alone: the CPU backends run the named networks.
                backend = "torch" if name == "bicubic" else self.settings.backend
                source = str(self.settings.model_files.get(name, name))
                if name in self.settings.model_files:
                    backend = "auto"  # a file: ONNX Runtime for .onnx, measured otherwise
                model = open_model(
                    source,
                    None,
                    self.device,
                    self.settings.precision,
                    backend,
                    threads=self.settings.threads,
                )
                runner = None
                if name != "bicubic":
                    options = UpscaleOptions(precision=self.settings.precision, device=self.device)
                    runner = make_runner(model, options, self.settings.threads)
                    if backend_name(model) == "ncnn":  # one ncnn net: one tile at a time
                        runner = _serialized(runner)
                self._models[name] = _OpenModel(model, runner)
                log.info("model %s ready in %.1f s", name, time.monotonic() - started)
            return self._models[name]


def _serialized(runner: Callable) -> Callable:
    lock = threading.Lock()

    def run(tile):
        with lock:
            return runner(tile)

    return run
