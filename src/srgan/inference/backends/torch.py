"""The PyTorch backend: any model srgan loads, on any device, in fp32, fp16 or bf16.

PyTorch is imported inside the functions, so that choosing between backends (and running
on the others) never imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from srgan.zoo.descriptor import LoadedModel

if TYPE_CHECKING:
    import torch

    from srgan.inference.backends.base import AnyModel, Runner
    from srgan.zoo.sources import ModelSource

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16")


class TorchBackend:
    name: str = "torch"
    modules: tuple[str, ...] = ("torch",)
    packages: tuple[str, ...] = ("torch",)
    shares_threads: bool = False
    half_activations: bool = True

    def refusal(self, source: ModelSource, device: str, precision: str) -> str | None:
        if source.load_torch is None:
            return f"{source.name} is an ONNX file: it runs on onnxruntime"
        if precision not in PRECISIONS:
            return f"--precision {precision} runs on onnxruntime, not torch"
        return None

    def prepare(self, source: ModelSource, device: str, precision: str) -> AnyModel:
        assert source.load_torch is not None
        loaded = source.load_torch()
        loaded.module.to(device)
        return loaded

    def runner(
        self, model: AnyModel, threads: int, device: str, precision: str, spinning: bool = True
    ) -> Runner:
        assert isinstance(model, LoadedModel)
        return TorchRunner(model, device, precision)

    def owns(self, model: AnyModel) -> bool:
        return isinstance(model, LoadedModel)


def cuda_or_mps() -> str:
    """The best device torch can see: 'cuda', 'mps' or 'cpu'."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_device(name: str) -> str:
    """Validate an explicit device name against this machine; ValueError if unusable."""
    import torch

    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: use auto, cpu, cuda, cuda:N or mps")
    return str(device)


def as_numpy_forward(function: Callable[[torch.Tensor], torch.Tensor]) -> Runner:
    """A tensor -> tensor function as the array -> array forward that tiling expects."""
    import torch

    def forward(tile: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return function(torch.from_numpy(tile)).float().cpu().numpy()

    return forward


class TorchRunner:
    """Runs a model on float32 array tiles at the chosen device and precision.

    A half-precision tile whose output holds NaN or inf is recomputed in fp32, and the
    model stays in fp32 from then on (`LoadedModel.fp32_only`), with one warning, since
    such overflow tends to recur on every image.
    """

    def __init__(self, model: LoadedModel, device: str, precision: str) -> None:
        import torch

        dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        self._torch = torch
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtypes[precision]
        supported = {
            torch.float16: model.descriptor.supports_half,
            torch.bfloat16: model.descriptor.supports_bf16,
        }
        if self.dtype != torch.float32 and not model.fp32_only and not supported[self.dtype]:
            log.warning("%s does not support %s; running in fp32", model.name, precision)
            model.fp32_only = True
        model.module.to(self.device)

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(tile).to(self.device, non_blocking=True)
            if self.dtype != torch.float32 and not self.model.fp32_only:
                with torch.autocast(self.device.type, dtype=self.dtype):
                    out = self.model.module(x)
                if torch.isfinite(out).all():
                    return out.float().cpu().numpy()
                log.warning(
                    "%s produced NaN/inf in %s; falling back to fp32 for the rest of the run",
                    self.model.name,
                    str(self.dtype).removeprefix("torch."),
                )
                self.model.fp32_only = True
            return self.model.module(x).float().cpu().numpy()


def bicubic_forward(scale: float) -> Runner:
    """MATLAB bicubic as a tile forward (alpha channels in --alpha-mode bicubic)."""
    from srgan.imaging.resize import imresize

    return as_numpy_forward(lambda x: imresize(x, scale=scale))
