"""What a loaded model can do, so callers never special-case an architecture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # kept light: the ncnn backend uses descriptors without PyTorch
    import torch
    from torch import nn

#: The architecture of a user's ncnn graph that srgan's interpreter runs (no known shape).
INTERPRETED_GRAPH = "ncnn graph"


@dataclass(frozen=True)
class ModelDescriptor:
    """Facts about a model that the upscaler needs.

    `in_channels` is 0 for models that take any number of channels (bicubic); colour
    models take 3 and the upscaler feeds gray images and alpha through them as RGB.
    `scale` is a float because bicubic accepts any factor; trained networks use integers.
    `memory_per_pixel` is a rough estimate of the peak activation memory of one input
    pixel, used to choose a tile size; 0 means unknown (whole image). A `temporal` model
    (video super-resolution) takes clips ``[N, T, C, h, w]`` and uses neighbouring frames;
    given an ``[N, C, h, w]`` image it runs it as a one-frame clip. Its `memory_per_pixel`
    is per frame. `context` is how many input pixels around an output pixel the network
    reads (networks of unpadded convolutions, such as Real-CUGAN and waifu2x, read exactly
    that many): tiles with that much context on each side are exact. `global_statistics`
    marks networks that pool over the whole image (squeeze-excitation): tiling them needs
    the statistics of the whole image first (`srgan.zoo.global_stats`).
    """

    name: str
    architecture: str
    scale: float
    in_channels: int = 3
    size_multiple: int = 1
    supports_half: bool = True
    supports_bf16: bool = True
    tileable: bool = True
    parameters: int = 0
    memory_per_pixel: float = 0.0  # fp32 activation bytes per input pixel, for tile sizing
    temporal: bool = False  # a video model: runs on windows of frames (see inference/vsr.py)
    context: int = 0  # input pixels read around each output pixel, when known
    global_statistics: bool = False  # pools over the whole image (see zoo/global_stats.py)


class Described:
    """Shortcuts for anything that carries a `descriptor` (PyTorch, ncnn, ONNX models)."""

    descriptor: ModelDescriptor

    @property
    def scale(self) -> float:
        return self.descriptor.scale

    @property
    def name(self) -> str:
        return self.descriptor.name


@dataclass
class LoadedModel(Described):
    """An eval-mode module plus its descriptor.

    `fp32_only` is set once half precision has overflowed (or is unsupported), so that a
    run over many images warns once and stays in fp32.
    """

    module: nn.Module
    descriptor: ModelDescriptor
    fp32_only: bool = False

    @property
    def device(self) -> torch.device:
        """Where the weights are (CPU for weightless models such as bicubic)."""
        import torch

        parameter = next(self.module.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")
