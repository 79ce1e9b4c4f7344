"""A general ncnn graph interpreter: any ``.param``/``.bin`` of `ncnn_layers`' types as a
PyTorch module.

`NcnnGraph` runs the layers in file order (the order is checked to be a valid execution
order when the file is parsed), keeps each blob only until its last reader, and can

* stop early (``run(x, targets=...)``: only the layers the targets need run), and
* take some blobs as given (``fixed``): the layers that would compute them are skipped.

The two together let `srgan.zoo.global_stats` compute a squeeze-excitation network's
global statistics over a whole image tile by tile, then tile the image with them fixed.

`probe_graph` learns what the file does not say, by running the graph on meta tensors (no
memory, no arithmetic): the input sizes it accepts, its scale, how many pixels it eats at
the borders (networks of unpadded convolutions shrink their input), and its activation
memory per input pixel.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import Tensor, nn

from srgan.errors import BadInputError
from srgan.zoo.ncnn_format import NcnnLayer, NcnnParam
from srgan.zoo.ncnn_layers import build_op

__all__ = ["GlobalPool", "GraphProbe", "NcnnGraph", "peak_bytes", "probe_graph"]

# Probed input sizes: a range wide enough to find any alignment up to 32 and larger than
# the border any real network eats.
_PROBE_SIZES = range(96, 128)
MAX_SCALE = 16
MAX_MEMORY_PER_PIXEL = 1 << 20  # bytes of activations per input pixel (RRDBNet: ~10 KB)


StepHook = Callable[[dict[int, Tensor]], None]


@dataclass(frozen=True)
class _Step:
    op: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class _Plan:
    steps: tuple[_Step, ...]
    frees: tuple[tuple[int, ...], ...]  # blobs no later step reads, dropped after each step


@dataclass(frozen=True)
class GlobalPool:
    """A global pooling layer: its input feature map and its pooled output blob."""

    layer: str
    source: str  # the blob pooled (a [N, C, H, W] feature map)
    output: str  # the pooled blob ([N, C])
    is_max: bool


class NcnnGraph(nn.Module):
    """The graph of a parsed, weight-loaded `NcnnParam` as a module: ``[N, C, H, W]`` in,
    the graph's output blob out. Raises `BadInputError` for files it cannot run."""

    def __init__(self, param: NcnnParam, name: str) -> None:
        super().__init__()
        self.model_name = name
        layers = param.layers
        inputs = [layer for layer in layers if layer.type == "Input"]
        if len(inputs) != 1 or len(inputs[0].outputs) != 1:
            raise BadInputError(f"{name}: the graph needs exactly one Input layer with one blob")
        ids: dict[str, int] = {}
        for layer in layers:
            for blob in (*layer.inputs, *layer.outputs):
                ids.setdefault(blob, len(ids))
        self.blob_ids = ids
        self.input_blob = inputs[0].outputs[0]
        ops: list[nn.Module] = []
        steps: list[_Step] = []
        for layer in layers:
            if layer.type == "Input":
                continue
            try:
                ops.append(build_op(layer))
            except ValueError as exc:
                raise BadInputError(f"{name}: line {layer.line}: {exc}") from None
            steps.append(
                _Step(
                    len(ops) - 1,
                    tuple(ids[b] for b in layer.inputs),
                    tuple(ids[b] for b in layer.outputs),
                )
            )
        self.ops = nn.ModuleList(ops)
        self.steps = tuple(steps)
        self.output_blob = _output_blob(layers, name)
        self.global_pools = tuple(_global_pools(layers))
        self.fixed: dict[str, Tensor] = {}  # blobs taken as given (see `global_stats`)
        # per thread, over `fixed`: workers sharing the model tile different images
        self.fixed_by_thread: dict[int, dict[str, Tensor]] = {}
        self.step_hook: StepHook | None = None  # called with the live blobs after each step
        self._plans: dict[tuple[frozenset[int], frozenset[int]], _Plan] = {}

    def forward(self, x: Tensor) -> Tensor:
        fixed = self.fixed_by_thread.get(threading.get_ident(), self.fixed)
        return self.run(x, (self.output_blob,), fixed, self.step_hook)[self.output_blob]

    def run(
        self,
        x: Tensor,
        targets: Sequence[str],
        fixed: dict[str, Tensor] | None = None,
        on_step: StepHook | None = None,
    ) -> dict[str, Tensor]:
        """The ``targets`` blobs for input ``x``, running only the layers they need; the
        ``fixed`` blobs are used as given (a ``[1, ...]`` value serves every batch item)."""
        fixed = fixed or {}
        target_ids = frozenset(self.blob_ids[t] for t in targets)
        fixed_ids = {self.blob_ids[name]: value for name, value in fixed.items()}
        plan = self._plan(target_ids, frozenset(fixed_ids))
        values: dict[int, Tensor] = {self.blob_ids[self.input_blob]: x}
        for blob, value in fixed_ids.items():
            values[blob] = value.to(x.device, x.dtype).expand(x.shape[0], *value.shape[1:])
        for step, free in zip(plan.steps, plan.frees, strict=True):
            op = self.ops[step.op]
            try:
                outputs = op([values[i] for i in step.inputs])
            except ValueError as exc:
                raise BadInputError(f"{self.model_name}: {exc}") from None
            for blob, value in zip(step.outputs, outputs, strict=True):
                if blob not in fixed_ids:
                    values[blob] = value
            for blob in free:
                values.pop(blob, None)
            if on_step is not None:
                on_step(values)
        return {name: values[self.blob_ids[name]] for name in targets}

    def _plan(self, targets: frozenset[int], fixed: frozenset[int]) -> _Plan:
        key = (targets, fixed)
        if key in self._plans:
            return self._plans[key]
        needed = set(targets)
        chosen: list[_Step] = []
        for step in reversed(self.steps):
            if any(b in needed and b not in fixed for b in step.outputs):
                chosen.append(step)
                needed.update(step.inputs)
        chosen.reverse()
        last_read: dict[int, int] = {}
        for index, step in enumerate(chosen):
            for blob in step.inputs:
                last_read[blob] = index
        frees: list[list[int]] = [[] for _ in chosen]
        for blob, index in last_read.items():
            if blob not in targets:
                frees[index].append(blob)
        for index, step in enumerate(chosen):  # outputs nobody reads (a Split's spare copy)
            frees[index].extend(b for b in step.outputs if b not in last_read and b not in targets)
        plan = _Plan(tuple(chosen), tuple(tuple(f) for f in frees))
        self._plans[key] = plan
        return plan


def _output_blob(layers: Sequence[NcnnLayer], name: str) -> str:
    read = {blob for layer in layers for blob in layer.inputs}
    unread = [blob for layer in layers for blob in layer.outputs if blob not in read]
    if len(unread) == 1:
        return unread[0]
    last = layers[-1].outputs[0] if layers[-1].outputs else None
    if last is not None and last in unread:
        return last
    raise BadInputError(f"{name}: cannot tell the output blob among {unread[:5]}")


def _global_pools(layers: Iterable[NcnnLayer]) -> Iterable[GlobalPool]:
    for layer in layers:
        if layer.type == "Pooling" and layer.params.get(4, 0) == 1:
            yield GlobalPool(
                layer.name, layer.inputs[0], layer.outputs[0], layer.params.get(0, 0) == 0
            )


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class GraphProbe:
    """What running the graph on meta tensors tells: accepted input sizes are those
    ``n % multiple == remainder`` (from `_PROBE_SIZES` on); the output of an ``n``-pixel
    side is ``scale * n - 2 * scale * border``."""

    channels: int
    scale: int
    border: int  # input pixels lost on each side (unpadded convolutions)
    multiple: int
    remainder: int
    memory_per_pixel: float  # peak activation bytes per input pixel, fp32


def _meta_copy(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).to("meta")


def peak_bytes(graph: NcnnGraph, module: nn.Module, x: Tensor) -> tuple[Tensor, int]:
    """Run ``module`` (which calls ``graph``) on meta ``x``; its output and the peak bytes of
    the blobs alive at once."""
    peak = [0]

    def measure(values: dict[int, Tensor]) -> None:
        live = sum(v.numel() * v.element_size() for v in values.values())
        peak[0] = max(peak[0], live)

    graph.step_hook = measure
    try:
        with torch.inference_mode():
            out = module(x)
    finally:
        graph.step_hook = None
    return out, peak[0]


def _meta_run(
    meta: NcnnGraph, channels: int, n: int
) -> tuple[tuple[int, ...], dict[int, int]] | str:
    """For an ``n x n`` input: the output shape and the width of every feature map blob, or
    why the graph refuses the input."""
    widths: dict[int, int] = {}

    def record(values: dict[int, Tensor]) -> None:
        for blob, value in values.items():
            if value.dim() == 4:
                widths[blob] = int(value.shape[3])

    meta.step_hook = record
    try:
        with torch.inference_mode():
            shape = tuple(meta(torch.empty(1, channels, n, n, device="meta")).shape)
    except (BadInputError, RuntimeError) as exc:
        return str(exc).removeprefix(f"{meta.model_name}: ")
    finally:
        meta.step_hook = None
    return shape, widths


def probe_graph(graph: NcnnGraph) -> GraphProbe:
    """Input sizes, scale, border and memory of ``graph`` (BadInputError if it runs on no
    size, or if its scale or memory is not plausible).

    Strided layers need aligned sizes: each feature map's width grows by a fraction
    ``a / b`` of the input's, and the input must be a multiple of every ``b`` (sizes in
    between run, flooring a pixel away somewhere: the residue that loses the least is
    the aligned one). The border is what the aligned output lacks of ``scale * n``."""
    meta = _meta_copy(graph)
    assert isinstance(meta, NcnnGraph)
    name = graph.model_name
    failure = ""
    found = None
    for channels in (3, 1):
        for n in _PROBE_SIZES:
            result = _meta_run(meta, channels, n)
            if not isinstance(result, str):
                found = (channels, n, *result)
                break
            failure = failure or result
        if found:
            break
    if found is None:
        raise BadInputError(f"{name}: the graph runs on no RGB or gray image ({failure})")
    channels, first, shape, widths = found
    if len(shape) != 4 or shape[1] != channels or shape[2] != shape[3]:
        raise BadInputError(
            f"{name}: maps a {channels}x{first}x{first} input to {list(shape[1:])}; "
            "srgan runs image-to-image networks (gray or RGB)"
        )
    span = 64
    result = _meta_run(meta, channels, first + span)
    if isinstance(result, str):
        raise BadInputError(f"{name}: runs on {first}x{first} but not on {first + span} ({result})")
    larger, larger_widths = result
    multiple = 1
    for blob, width in widths.items():
        if blob in larger_widths:
            growth = Fraction(larger_widths[blob] - width, span)
            multiple = math.lcm(multiple, growth.denominator)
    scale, rest = divmod(larger[3] - shape[3], span)
    if rest or not 1 <= scale <= MAX_SCALE or multiple > 32:
        raise BadInputError(
            f"{name}: inputs of {first} and {first + span} pixels give {shape[3]} and "
            f"{larger[3]}: not an upscale by 1 to {MAX_SCALE}"
        )
    losses: dict[int, int] = {}
    base = -(-_PROBE_SIZES.start // multiple) * multiple
    for remainder in range(multiple):
        result = _meta_run(meta, channels, base + remainder)
        if not isinstance(result, str):
            losses[remainder] = scale * (base + remainder) - result[0][3]
    remainder = min(losses, key=lambda r: (losses[r], r))
    lost = losses[remainder]
    if lost < 0 or lost % (2 * scale):
        raise BadInputError(
            f"{name}: a {base + remainder}-pixel input loses {lost} output pixels: "
            "not an even border"
        )
    _, peak = peak_bytes(meta, meta, torch.empty(1, channels, first, first, device="meta"))
    per_pixel = peak / (first * first)
    if per_pixel > MAX_MEMORY_PER_PIXEL:
        raise BadInputError(
            f"{name}: needs {per_pixel / 1024:.0f} KiB of activations per input pixel "
            f"(at most {MAX_MEMORY_PER_PIXEL >> 10} KiB): not a plausible model"
        )
    return GraphProbe(channels, scale, lost // (2 * scale), multiple, remainder, per_pixel)
