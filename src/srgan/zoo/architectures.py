"""The architectures srgan loads, as a plain list of the specs each `archs/<name>.py`
exports, and the state-dict recognition that goes through them.

Adding an architecture: write `archs/<name>.py` with the network and its `SPEC` (see
`srgan.archs.spec`) and its test; `ARCHITECTURES` below collects the `SPEC` of every
module of `srgan.archs`, and `tests/test_arch_specs.py` runs over all of them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

import torch

import srgan.archs
from srgan.archs.spec import ArchSpec, Hyperparameters, StateDict

__all__ = [
    "ARCHITECTURES",
    "BY_NAME",
    "ArchSpec",
    "Architecture",
    "Hyperparameters",
    "StateDict",
    "detect",
    "unwrap_state_dict",
]

Architecture = ArchSpec  # the name callers used before specs moved next to their networks


def _specs() -> tuple[ArchSpec, ...]:
    """The `SPEC` of each module of `srgan.archs`, in module-name order (detection does
    not depend on it: no two architectures share key names, which the tests check)."""
    found = []
    for info in sorted(pkgutil.iter_modules(srgan.archs.__path__), key=lambda m: m.name):
        spec = getattr(importlib.import_module(f"srgan.archs.{info.name}"), "SPEC", None)
        if isinstance(spec, ArchSpec):
            found.append(spec)
    return tuple(found)


ARCHITECTURES: tuple[ArchSpec, ...] = _specs()
BY_NAME = {arch.name: arch for arch in ARCHITECTURES}


def unwrap_state_dict(checkpoint: object) -> dict[str, torch.Tensor]:
    """Accept BasicSR's `params_ema`/`params` wrappers, `state_dict` wrappers, and the
    `module.` prefix that DistributedDataParallel adds."""
    state = checkpoint
    for wrapper in ("params_ema", "params", "state_dict", "model", "generator"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
            break
    if not isinstance(state, Mapping):
        raise ValueError("the file holds no state dict")
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def detect(state: StateDict) -> tuple[ArchSpec, Hyperparameters] | None:
    """The first architecture whose key names `state` has, with the hyper-parameters its
    shapes imply (unchecked: see `ArchSpec.problem`)."""
    for arch in ARCHITECTURES:
        hyperparameters = arch.guess(state)
        if hyperparameters is not None:
            return arch, hyperparameters
    return None
