"""Load ncnn models as PyTorch modules: pattern-matched RRDBNet / SRVGGNetCompact where the
graph has that shape (a faster module), the general interpreter for everything else, each
wrapped in its family's conventions (`ncnn_conventions`)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from srgan.zoo.architectures import BY_NAME
from srgan.zoo.descriptor import INTERPRETED_GRAPH, LoadedModel, ModelDescriptor
from srgan.zoo.ncnn_conventions import Conventions
from srgan.zoo.ncnn_families import NcnnVariant
from srgan.zoo.ncnn_format import match_architecture, read_ncnn
from srgan.zoo.ncnn_graph import NcnnGraph, peak_bytes, probe_graph

__all__ = ["ConventionModule", "load_ncnn_file", "load_variant"]

log = logging.getLogger(__name__)

_MEMORY_PROBE = 128  # image side used to measure activation memory on meta tensors


class ConventionModule(nn.Module):
    """A family's network with its reference program's conventions: RGB (or gray) in [0, 1]
    of any size in, the upscaled image out. ``graph`` is the bare network (any module; an
    `NcnnGraph` or an RRDBNet)."""

    def __init__(self, graph: nn.Module, conventions: Conventions) -> None:
        super().__init__()
        self.graph = graph
        self.conventions = conventions

    def pad(self, x: Tensor) -> Tensor:
        c = self.conventions
        if c.is_identity:
            return x
        rows = torch.from_numpy(c.axis_indices(x.shape[2])).to(x.device)
        cols = torch.from_numpy(c.axis_indices(x.shape[3])).to(x.device)
        return x.index_select(2, rows).index_select(3, cols)

    def finish(self, y: Tensor, x: Tensor) -> Tensor:
        c = self.conventions
        s, (h, w) = c.scale, x.shape[2:]
        expected = (c.crop + h * s, c.crop + w * s)
        if y.shape[2] < expected[0] or y.shape[3] < expected[1]:
            raise ValueError(
                f"the network gave {list(y.shape[2:])} for an input of {list(x.shape[2:])}"
            )
        out = y[:, :, c.crop : c.crop + h * s, c.crop : c.crop + w * s]
        if c.residual:
            out = out + x.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.finish(self.graph(self.pad(x)), x)


Hyperparameters = dict[str, int | str]


def _bare_network(
    param_path: Path, bin_path: Path, name: str
) -> tuple[nn.Module, str, Hyperparameters]:
    """The network of an ncnn file: a pattern-matched module if it has that shape (with
    its architecture and hyper-parameters), else the interpreter."""
    param = read_ncnn(param_path, bin_path)
    found = match_architecture(param)
    if not isinstance(found, str):
        from srgan.zoo.registry import build  # its checks: plausible, shapes before memory

        architecture, hyperparameters, state = found
        module = build(name, architecture, dict(hyperparameters), state, param_path).module
        log.info("%s: recognised %s %s", name, architecture, hyperparameters)
        return module, architecture, hyperparameters
    log.info("%s: %s; running the ncnn graph", name, found)
    return NcnnGraph(param, name), INTERPRETED_GRAPH, {}


def _memory_per_pixel(module: ConventionModule, channels: int) -> float:
    """Peak activation bytes per input pixel, measured on meta tensors (no memory used)."""
    meta = copy.deepcopy(module).to("meta")
    graph = meta.graph
    if not isinstance(graph, NcnnGraph):
        return 0.0
    probe = torch.empty(1, channels, _MEMORY_PROBE, _MEMORY_PROBE, device="meta")
    _, peak = peak_bytes(graph, meta, probe)
    return peak / _MEMORY_PROBE**2


def _loaded(
    name: str,
    architecture: str,
    network: nn.Module,
    conventions: Conventions,
    channels: int,
    context: int,
    hyperparameters: Hyperparameters,
) -> LoadedModel:
    module = ConventionModule(network, conventions).eval().requires_grad_(False)
    if isinstance(network, NcnnGraph):
        memory = _memory_per_pixel(module, channels)
        pooled = bool(network.global_pools)
    else:
        memory = BY_NAME[architecture].memory_per_pixel(hyperparameters)
        pooled = False
    descriptor = ModelDescriptor(
        name=name,
        architecture=architecture,
        scale=conventions.scale,
        in_channels=channels,
        parameters=sum(p.numel() for p in module.parameters()),
        memory_per_pixel=memory,
        context=context,
        global_statistics=pooled,
    )
    return LoadedModel(module, descriptor)


def load_variant(variant: NcnnVariant) -> LoadedModel:
    """A named model of the sr-vulkan packages, with its reference program's conventions."""
    param, weights = variant.files()
    network, found, hyperparameters = _bare_network(param, weights, variant.name)
    conventions = variant.conventions()
    architecture = variant.family.architecture if found == INTERPRETED_GRAPH else found
    context = 0 if variant.family.same_size else conventions.pad
    return _loaded(variant.name, architecture, network, conventions, 3, context, hyperparameters)


def load_ncnn_file(param: Path, weights: Path) -> LoadedModel:
    """A user's ncnn model: RRDBNet / SRVGGNetCompact as such, anything else through the
    interpreter. A graph of unpadded convolutions (it shrinks its input) gets the padding
    it needs (replicated edges, the waifu2x convention) and sizes aligned to its strides,
    so it takes images of any size."""
    parsed = read_ncnn(param, weights)
    found = match_architecture(parsed)
    if not isinstance(found, str):
        from srgan.zoo.registry import build  # registry imports this module

        return build(param.stem, *found)
    log.info("%s: %s; running the ncnn graph", param.name, found)
    network = NcnnGraph(parsed, param.name)
    probe = probe_graph(network)
    log.info("%s: %s", param.name, probe)
    conventions = Conventions(
        scale=probe.scale,
        pad=probe.border,
        multiple=probe.multiple,
        remainder=(probe.remainder - 2 * probe.border) % probe.multiple,
    )
    channels, border = probe.channels, probe.border
    return _loaded(param.stem, INTERPRETED_GRAPH, network, conventions, channels, border, {})


class _WithStatistics(nn.Module):
    """The bare network with its global pools' results as inputs (for ONNX export)."""

    def __init__(self, graph: NcnnGraph) -> None:
        super().__init__()
        self.graph = graph
        self.names = [pool.output for pool in graph.global_pools]

    def forward(self, x: Tensor, *pooled: Tensor) -> Tensor:
        fixed = dict(zip(self.names, pooled, strict=True))
        return self.graph.run(x, (self.graph.output_blob,), fixed)[self.graph.output_blob]


def export_variant_onnx(variant: NcnnVariant, path: Path, with_statistics: bool) -> None:
    """The family model's bare network as ONNX (its conventions are applied around it by
    the runner); ``with_statistics``: the pooled vectors are extra inputs named after
    their blobs."""
    from srgan.zoo.onnx_model import export_onnx

    graph = load_variant(variant).module.graph
    if not with_statistics:
        export_onnx(graph, path, example_size=_ONNX_EXAMPLE)
        return
    assert isinstance(graph, NcnnGraph)
    wrapper = _WithStatistics(graph)
    extra = {name: torch.rand(1, _pool_width(graph, name)) for name in wrapper.names}
    export_onnx(wrapper, path, example_size=_ONNX_EXAMPLE, extra_inputs=extra)


_ONNX_EXAMPLE = 96  # a size every family network accepts (aligned, larger than its border)


def _pool_width(graph: NcnnGraph, name: str) -> int:
    from srgan.zoo.global_stats import pool_channels

    pool = next(p for p in graph.global_pools if p.output == name)
    return pool_channels(graph, pool)
