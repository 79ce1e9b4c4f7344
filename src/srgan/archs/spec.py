"""What srgan needs to know about an architecture, next to its network (spandrel's idea).

Each `archs/<name>.py` exports its `nn.Module` and one `ArchSpec`: how to recognise its
state dict from key names and shapes, the plausible range of every hyper-parameter, its
scale, channels, size multiple and activation memory. Weight files are hostile input,
so recognising them happens in three steps, none of which allocates a network:

1. `guess(state)`: the hyper-parameters the key names and shapes imply (cheap; may be
   absurd: 3000 growth channels, a x1000 upscale, a million blocks);
2. `out_of_range(hp)`: every hyper-parameter checked against its plausible range, so no
   network is ever sized by a hostile file;
3. `mismatch(state, hp)`: the keys and shapes of a network built on the meta device
   (no memory) compared with the file's.

`load(state, hp)` does step 3 and then gives that network memory and the weights. This
module imports only torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from srgan.archs.ncnn_match import NcnnGraph, NcnnMatch

__all__ = ["ArchSpec", "Hyperparameters", "Plausible", "StateDict"]

StateDict = Mapping[str, torch.Tensor]
Hyperparameters = dict[str, int | str]
#: The values a hyper-parameter may take: a range of integers or a tuple of choices.
Plausible = range | tuple[int | str, ...]


def _one(_: Hyperparameters) -> int:
    return 1


def _is_bookkeeping(key: str) -> bool:
    """BatchNorm step counters are not weights; files may leave them out."""
    return key.endswith("num_batches_tracked")


@dataclass(frozen=True)
class ArchSpec:
    name: str
    build: Callable[..., nn.Module]
    guess: Callable[[StateDict], Hyperparameters | None]
    plausible: Mapping[str, Plausible]  # every constructor argument and its range
    scale: Callable[[Hyperparameters], int]
    in_channels: Callable[[Hyperparameters], int]
    out_channels: Callable[[Hyperparameters], int]
    # rough fp32 activation bytes per input pixel (per frame for video), to size tiles
    memory_per_pixel: Callable[[Hyperparameters], float]
    example: Hyperparameters = field(default_factory=dict)  # a small valid instance
    size_multiple: Callable[[Hyperparameters], int] = _one  # input sides must divide by it
    temporal: bool = False  # takes clips [N, T, C, h, w] (an image is T = 1)
    # recognises this network in an ncnn graph (`srgan.archs.ncnn_match`), where its ncnn
    # files have a fixed shape; any other graph runs through the general interpreter
    ncnn_match: Callable[[NcnnGraph], NcnnMatch] | None = None

    def out_of_range(self, hp: Mapping[str, object]) -> str | None:
        """What is implausible about `hp` (unknown, missing or out-of-range values)."""
        unknown = sorted(set(hp) - set(self.plausible))
        if unknown:
            return f"unknown hyper-parameter {unknown[0]!r}"
        for name, allowed in self.plausible.items():
            if name not in hp:
                return f"hyper-parameter {name} is missing"
            value = hp[name]
            if isinstance(allowed, range):
                if type(value) is not int or value not in allowed:
                    return f"{name} {value!r} is outside {allowed.start}..{allowed.stop - 1}"
            elif value not in allowed or type(value) is bool:
                return f"{name} {value!r} is not one of {', '.join(map(str, allowed))}"
        return None

    def mismatch(self, state: StateDict, hp: Hyperparameters) -> str | None:
        """How `state` differs from the keys and shapes of this network with `hp`
        (checked by `out_of_range` first: this builds it on the meta device)."""
        try:
            with torch.device("meta"):
                reference = self.build(**hp).state_dict()
        except ValueError as exc:  # a combination the constructor refuses
            return str(exc)
        return _differences(state, reference)

    def load(self, state: StateDict, hp: Hyperparameters) -> nn.Module:
        """The network with `state`'s weights; ValueError saying how they do not fit.

        Built on the meta device, compared with `state`, and only then given memory
        and filled with the weights (no random initialisation to overwrite); `hp` must
        have passed `out_of_range`. RuntimeError for weights that do not convert."""
        with torch.device("meta"):
            network = self.build(**hp)
        reference = network.state_dict()
        problem = _differences(state, reference)
        if problem:
            raise ValueError(problem)
        if any(name not in reference for name, _ in network.named_buffers()):
            network = self.build(**hp)  # non-persistent buffers need their constructor
        else:
            network = network.to_empty(device="cpu")
            for name, buffer in network.named_buffers():
                if _is_bookkeeping(name):
                    buffer.zero_()  # a file may leave these counters out
        network.load_state_dict(state, strict=True)
        return network

    def problem(self, state: StateDict, hp: Hyperparameters) -> str | None:
        return self.out_of_range(hp) or self.mismatch(state, hp)

    def recognise(self, state: StateDict) -> Hyperparameters | None:
        """The hyper-parameters of a network with exactly `state`'s keys and shapes
        (`num_batches_tracked` may be absent), else None."""
        hp = self.guess(state)
        return hp if hp is not None and self.problem(state, hp) is None else None


def _differences(state: StateDict, reference: StateDict) -> str | None:
    expected = {k: tuple(v.shape) for k, v in reference.items()}
    missing = [k for k in expected if k not in state and not _is_bookkeeping(k)]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        parts = [f"missing {', '.join(missing[:3])}"] if missing else []
        parts += [f"unexpected {', '.join(map(show_key, extra[:3]))}"] if extra else []
        return f"its keys differ ({'; '.join(parts)})"
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            return f"{key} is not a tensor"
        if tuple(tensor.shape) != expected[key]:
            return f"{key} has shape {list(tensor.shape)}, expected {list(expected[key])}"
    return None


def show_key(key: str) -> str:
    """A key from a file, escaped and shortened for a one-line message."""
    text = repr(key)[1:-1]
    return text if len(text) <= 80 else text[:77] + "..."


def indices(state: StateDict, prefix: str, suffix: str) -> list[int]:
    """Sorted N of the keys `prefix + N + suffix` (N a non-negative integer)."""
    found = set()
    for key in state:
        if key.startswith(prefix) and key.endswith(suffix):
            middle = key[len(prefix) : len(key) - len(suffix)]
            if middle.isascii() and middle.isdigit() and len(middle) < 7:
                found.add(int(middle))
    return sorted(found)


def shape(state: StateDict, key: str, ndim: int) -> tuple[int, ...] | None:
    """The shape of `state[key]` when it is a tensor with `ndim` dimensions."""
    tensor = state.get(key)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != ndim:
        return None
    return tuple(int(n) for n in tensor.shape)


def dims(state: StateDict, key: str, count: int) -> tuple[int, ...] | None:
    """The first `count` sizes of `state[key]` (any number of dimensions beyond), so that
    a tensor with absurd sizes is still recognised, and refused for them."""
    tensor = state.get(key)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim < count:
        return None
    return tuple(int(n) for n in tensor.shape[:count])


def upsample_factors(
    state: StateDict, features: int, key: str = "upsample.{}.conv.weight"
) -> list[int] | None:
    """The pixel-shuffle factor of each `upsample.j.conv` (C -> r*r*C), or None."""
    factors: list[int] = []
    while (conv := shape(state, key.format(len(factors)), 4)) is not None:
        ratio, rem = divmod(conv[0], features) if features > 0 else (0, 1)
        root = math.isqrt(ratio)
        if rem or root < 2 or root * root != ratio or len(factors) > 8:
            return None
        factors.append(root)
    return factors
