"""Whole-image statistics for squeeze-excitation networks, so that tiling changes nothing.

Real-CUGAN and waifu2x's CUNet gate their features by ``sigmoid(MLP(mean over the image))``
(a global average `Pooling`, then `InnerProduct`s). A tile sees only its own mean, so tiled
output differs from untiled output; realcugan-ncnn-vulkan approximates by averaging the
tiles' means ("syncgap"). Here the statistics are computed exactly first, then every tile
runs with them fixed (`NcnnGraph.fixed`):

* The padded image (the network's whole input) is cut into overlapping windows whose
  starts are multiples of the network's alignment. In a network of unpadded layers, a
  window's feature map is then exactly a part of the whole image's, at a known offset
  (each feature map's size is ``ratio * n + offset``, measured on meta tensors), so each
  window adds the sum over the part of the feature map no earlier window covered.
* Pools whose input depends on an earlier pool's result wait for it: one pass over the
  windows per stage (Real-CUGAN: 4), each running only the layers up to its pools.

`exact_statistics` does that. For graphs with padded layers before a pool, windows are
not exact parts of the whole; they then overlap more and each adds only its middle (close,
not exact). `lowres_statistics` runs the whole network once on a smaller copy of the
image: cheap, but far off (the statistics depend on the scale of the image's detail), so
only ``benchmarks/tiled_se.py`` uses it, to measure the alternatives against the untiled
result and against the reference program's scheme.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import Tensor

from srgan.zoo.descriptor import LoadedModel
from srgan.zoo.ncnn_graph import GlobalPool, NcnnGraph
from srgan.zoo.ncnn_layers import ConvOp, CropOp, DeconvOp, InterpOp, PoolingOp
from srgan.zoo.ncnn_loader import ConventionModule
from srgan.zoo.ncnn_model import NcnnModel
from srgan.zoo.onnx_model import OnnxModel

__all__ = [
    "WholeImageStatistics",
    "exact_statistics",
    "lowres_statistics",
    "statistics_are_exact",
    "whole_image_statistics",
]

log = logging.getLogger(__name__)

# image -> window: ``window(rows, cols)`` gives the [1, C, len(rows), len(cols)] float32
# network input at those padded-image source indices
Window = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Size:
    """A feature map's side for a network input side ``n``: ``ratio * n + offset``."""

    ratio: Fraction
    offset: Fraction

    def __call__(self, n: int) -> int:
        value = self.ratio * n + self.offset
        if value.denominator != 1:
            raise ValueError(f"feature size {value} for input {n} is not whole")
        return int(value)


def _ancestors(graph: NcnnGraph, blob: str) -> set[int]:
    """Indices of the ops that ``blob`` depends on."""
    needed, chosen = {graph.blob_ids[blob]}, set()
    for index in range(len(graph.steps) - 1, -1, -1):
        step = graph.steps[index]
        if any(b in needed for b in step.outputs):
            chosen.add(step.op)
            needed.update(step.inputs)
    return chosen


def _exact_op(op: torch.nn.Module) -> bool:
    """Whether a window's output of this op is an exact part of the whole image's."""
    if isinstance(op, ConvOp):
        return all(p == 0 for p in op.geometry.pads)
    if isinstance(op, DeconvOp):
        g = op.geometry
        extents = [d * (k - 1) + 1 for d, k in zip(g.dilation, g.kernel, strict=True)]
        incomplete = [max(0, e - s) for e, s in zip(extents, g.stride, strict=True)]
        left, right, top, bottom = g.pads
        return min(top, bottom) >= incomplete[0] and min(left, right) >= incomplete[1]
    if isinstance(op, PoolingOp):
        return op.is_global or (not op.adaptive and op.pad_mode == 1 and not any(op.pads))
    if isinstance(op, InterpOp):
        return (
            op.mode == "nearest"
            and not op.dynamic
            and all(float(s).is_integer() for s in op.scales)
        )
    if isinstance(op, CropOp):
        return True  # fixed offsets: aligned shifts commute with them
    return op.layer_type in _SHIFT_FREE


_SHIFT_FREE = frozenset(
    {"Split", "Noop", "Concat", "Eltwise", "BinaryOp", "UnaryOp", "Scale", "Bias", "BatchNorm",
     "ReLU", "PReLU", "Sigmoid", "TanH", "Swish", "Mish", "AbsVal", "Clip", "HardSigmoid",
     "HardSwish", "ELU", "Dropout", "InnerProduct", "PixelShuffle", "Reorg"}
)  # fmt: skip


def statistics_are_exact(graph: NcnnGraph) -> bool:
    """Whether `exact_statistics` is exact for this graph (no padded layer before a pool)."""
    ops = set().union(*(_ancestors(graph, pool.source) for pool in graph.global_pools))
    return all(_exact_op(graph.ops[i]) for i in ops)


def _stages(graph: NcnnGraph) -> list[list[GlobalPool]]:
    """Pools grouped so that each group needs only the results of earlier groups."""
    stage: dict[str, int] = {}
    for pool in graph.global_pools:
        ops = _ancestors(graph, pool.source)
        earlier = [
            stage[p.output]
            for p in graph.global_pools
            if p.output in stage and _producer(graph, p.output) in ops
        ]
        stage[pool.output] = 1 + max(earlier, default=-1)
    groups: list[list[GlobalPool]] = [[] for _ in range(1 + max(stage.values(), default=-1))]
    for pool in graph.global_pools:
        groups[stage[pool.output]].append(pool)
    return groups


def _producer(graph: NcnnGraph, blob: str) -> int:
    blob_id = graph.blob_ids[blob]
    return next(step.op for step in graph.steps if blob_id in step.outputs)


def _feature_sizes(graph: NcnnGraph, sizes: tuple[int, int], channels: int) -> dict[str, _Size]:
    """How each pooled feature map's side follows the network input's (meta tensors)."""
    import copy

    meta = copy.deepcopy(graph).to("meta")
    sources = [pool.source for pool in graph.global_pools]
    fixed = {
        pool.output: torch.empty(1, pool_channels(graph, pool), device="meta")
        for pool in graph.global_pools
    }
    widths = []
    for n in sizes:
        x = torch.empty(1, channels, n, n, device="meta")
        with torch.inference_mode():
            found = meta.run(x, sources, fixed)
        widths.append({name: int(found[name].shape[3]) for name in sources})
    result = {}
    for name in sources:
        ratio = Fraction(widths[1][name] - widths[0][name], sizes[1] - sizes[0])
        result[name] = _Size(ratio, widths[0][name] - ratio * sizes[0])
    return result


def pool_channels(graph: NcnnGraph, pool: GlobalPool) -> int:
    """Channels of a pooled vector, from the layers that read it (InnerProduct, Scale)."""
    blob_id = graph.blob_ids[pool.output]
    for step in graph.steps:
        if blob_id in step.inputs:
            op = graph.ops[step.op]
            weight = getattr(op, "weight", None)
            if isinstance(weight, Tensor) and weight.dim() == 2:
                return int(weight.shape[1])
    raise ValueError(f"cannot tell the channels of pooled blob {pool.output!r}")


@dataclass(frozen=True)
class _Span:
    start: int  # network input window [start, stop)
    stop: int


def _windows(total: int, tile: int, multiple: int, grow: int) -> list[_Span]:
    """Windows along an axis of ``total`` padded-input pixels: starts aligned to
    ``multiple``, each ``grow`` pixels longer than the stride between starts, the last
    ending at ``total`` (lengths stay congruent to ``total`` modulo ``multiple``)."""
    step = max(multiple, tile // multiple * multiple)
    length = step + -(-grow // multiple) * multiple + total % multiple
    if total <= length:
        return [_Span(0, total)]
    spans = [_Span(a, a + length) for a in range(0, total - length, step)]
    last = (total - length) // multiple * multiple
    if not spans or last > spans[-1].start:
        spans.append(_Span(last, total))
    else:
        spans[-1] = _Span(spans[-1].start, total)
    return spans


def _responsibility(spans: list[_Span], size: _Size, total: int) -> list[tuple[int, int, int]]:
    """For each window: its feature offset and the range [lo, hi) of whole-image feature
    indices it adds. Neighbours split their overlap in the middle, so each index is added
    exactly once, as far as possible from the windows' edges."""
    whole = size(total)
    ranges = []
    for span in spans:
        offset = size.ratio * span.start
        if offset.denominator != 1:
            raise ValueError("window start not aligned to the feature stride")
        begin = int(offset)
        ranges.append((begin, min(whole, begin + size(span.stop - span.start))))
    parts = []
    for i, (begin, end) in enumerate(ranges):
        lo = begin if i == 0 else (begin + ranges[i - 1][1]) // 2
        hi = end if i == len(ranges) - 1 else (ranges[i + 1][0] + end) // 2
        if i > 0 and begin > ranges[i - 1][1]:
            raise ValueError("windows leave a gap in the feature map")
        parts.append((begin, lo, hi))
    if ranges[0][0] != 0 or ranges[-1][1] != whole:
        raise ValueError(f"windows cover {ranges[0][0]}..{ranges[-1][1]} of {whole} positions")
    return parts


def exact_statistics(
    graph: NcnnGraph,
    window: Window,
    padded_size: tuple[int, int],
    tile: int,
    multiple: int,
    channels: int,
    device: torch.device | str = "cpu",
    overlap: int = 0,
) -> dict[str, Tensor]:
    """The pooled values of the whole padded image of ``padded_size`` (H, W), computed on
    windows of about ``tile`` pixels; ``window`` builds the network input of a window.

    Exact for graphs where `statistics_are_exact`; for others (padded layers), give
    windows ``overlap`` more pixels: each adds only the middle of its feature map, where
    its padding does not reach (close, not exact)."""
    height, width = padded_size
    base = max(multiple, 64 // multiple * multiple)
    probe_sizes = (base * 2 + (height % multiple), base * 3 + (height % multiple))
    sizes = _feature_sizes(graph, probe_sizes, channels)
    grow = overlap + max(
        (math.ceil(-s.offset / s.ratio) for s in sizes.values() if s.offset < 0), default=0
    )
    rows = _windows(height, tile, multiple, grow)
    cols = _windows(width, tile, multiple, grow)
    row_parts = {name: _responsibility(rows, size, height) for name, size in sizes.items()}
    col_parts = {name: _responsibility(cols, size, width) for name, size in sizes.items()}
    fixed: dict[str, Tensor] = {}
    for stage in _stages(graph):
        sums: dict[str, Tensor | None] = {pool.output: None for pool in stage}
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                x = window(np.arange(r.start, r.stop), np.arange(c.start, c.stop))
                with torch.inference_mode():
                    found = graph.run(
                        torch.from_numpy(x).to(device), [p.source for p in stage], fixed
                    )
                for pool in stage:
                    r_off, r_lo, r_hi = row_parts[pool.source][i]
                    c_off, c_lo, c_hi = col_parts[pool.source][j]
                    part = found[pool.source][0, :, r_lo - r_off : r_hi - r_off,
                                              c_lo - c_off : c_hi - c_off]  # fmt: skip
                    if part.numel() == 0:
                        continue
                    value = part.amax(dim=(1, 2)) if pool.is_max else part.double().sum(dim=(1, 2))
                    previous = sums[pool.output]
                    sums[pool.output] = (
                        value if previous is None
                        else torch.maximum(previous, value) if pool.is_max
                        else previous + value
                    )  # fmt: skip
        for pool in stage:
            total = sums[pool.output]
            assert total is not None
            if not pool.is_max:
                size = sizes[pool.source]
                total = total / (size(height) * size(width))
            fixed[pool.output] = total.float()[None].to(device)
    return fixed


def lowres_statistics(graph: NcnnGraph, padded: Tensor) -> dict[str, Tensor]:
    """The pooled values of the network run whole on ``padded`` (a smaller copy of the
    image, padded as the network expects)."""
    outputs = [pool.output for pool in graph.global_pools]
    with torch.inference_mode():
        found = graph.run(padded, outputs)
    return {name: value[:1].float() for name, value in found.items()}


# --------------------------------------------------------------------------- for the upscaler


@dataclass(frozen=True)
class WholeImageStatistics:
    """A model's global pools' values for one image, applied while a tile runs."""

    store: dict[int, Any] | None  # the graph's or the runtime model's, by thread
    values: dict[str, Any]  # tensors for PyTorch, arrays for the other runtimes

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """While active (in this thread), the model's global pools use these values. The
        store is per thread, so that parallel images each use their own."""
        if self.store is None:
            yield
            return
        key = threading.get_ident()
        previous = self.store.get(key)
        self.store[key] = self.values
        try:
            yield
        finally:
            if previous is None:
                self.store.pop(key, None)
            else:
                self.store[key] = previous


def whole_image_statistics(
    model: LoadedModel | NcnnModel | OnnxModel, pixels: np.ndarray, tile: int, channels: int
) -> WholeImageStatistics:
    """The statistics of the whole ``pixels`` (H, W, C) uint8/uint16 image, as fed to the
    model with ``channels`` channels, computed in tiles of about ``tile`` pixels; for other
    models, nothing to apply.

    The ncnn and ONNX Runtime models get them computed by srgan's interpreter of the same
    file (PyTorch is imported then), and fed to their own runtime."""
    if isinstance(model, LoadedModel):
        module, targets = model.module, None
    else:
        module, targets = _interpreter_of(model), model.statistics
    graph = getattr(module, "graph", None)
    if not (
        isinstance(module, ConventionModule)
        and isinstance(graph, NcnnGraph)
        and graph.global_pools
        and tile
        and max(pixels.shape[:2]) > tile
    ):
        return WholeImageStatistics(None, {})
    conventions = module.conventions
    height, width = pixels.shape[:2]
    rows_index, cols_index = conventions.axis_indices(height), conventions.axis_indices(width)
    peak = np.float32(np.iinfo(pixels.dtype).max)

    def window(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        block = pixels[rows_index[rows]][:, cols_index[cols]]
        x = block.transpose(2, 0, 1).astype(np.float32)[None] / peak
        if x.shape[1] != channels:
            x = np.repeat(x[:, :1], channels, axis=1)
        return np.ascontiguousarray(x)

    device = next(module.parameters()).device
    exact = statistics_are_exact(graph)
    if not exact:
        log.warning(
            "%s: padded layers before a global pool: tiles share statistics computed on "
            "overlapping windows (close to the untiled result, not equal)",
            model.name,
        )
    fixed = exact_statistics(
        graph, window, (len(rows_index), len(cols_index)), tile, conventions.multiple,
        channels, device, overlap=0 if exact else _APPROXIMATE_OVERLAP,
    )  # fmt: skip
    if targets is None:
        return WholeImageStatistics(graph.fixed_by_thread, fixed)
    return WholeImageStatistics(
        targets, {name: value[0].cpu().numpy() for name, value in fixed.items()}
    )


_APPROXIMATE_OVERLAP = 64  # window overlap (input pixels) for graphs with padded layers
_INTERPRETERS: dict[str, ConventionModule] = {}
_INTERPRETERS_LOCK = threading.Lock()


def _interpreter_of(model: NcnnModel | OnnxModel) -> ConventionModule | None:
    """srgan's PyTorch interpreter of a family model run by another runtime (loaded once)."""
    from srgan.zoo.ncnn_families import find_variant
    from srgan.zoo.ncnn_loader import load_variant

    variant = find_variant(model.name)
    if variant is None or not model.descriptor.global_statistics:
        return None
    with _INTERPRETERS_LOCK:
        if variant.name not in _INTERPRETERS:
            module = load_variant(variant).module
            assert isinstance(module, ConventionModule)
            _INTERPRETERS[variant.name] = module
        return _INTERPRETERS[variant.name]
