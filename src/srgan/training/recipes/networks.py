"""The network a run trains: built from `model.arch` and its hyper-parameters, or started
from pretrained weights (`model.init`), with frozen layers and per-layer rate factors.

Config names map onto the architectures' own constructor arguments (`num_features` is
RRDBNet's `num_feat`, `num_blocks` is SRVGG's `num_conv`, ...). With `init`, the weights
decide the hyper-parameters; one set in the config that disagrees is an error, as is an
architecture or scale that does not match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from srgan.errors import BadInputError
from srgan.training.config import ModelConfig, RunConfig
from srgan.zoo.descriptor import ModelDescriptor

Kwargs = dict[str, Any]
Hyperparameter = int | str


@dataclass(frozen=True)
class ArchEntry:
    """How one architecture's config fields map onto its constructor."""

    zoo_name: str  # the name the model zoo (and state-dict detection) uses
    fields: dict[str, str]  # config field -> constructor argument
    defaults: dict[str, Hyperparameter]  # config field -> default
    scale_argument: str
    fixed: Kwargs = field(default_factory=dict)  # constructor arguments always given
    # what the constructor takes for an argument that pretrained weights leave out (an
    # unaligned video network's weights name no alignment)
    absent: dict[str, Hyperparameter] = field(default_factory=dict)
    temporal: bool = False


ARCHS: dict[str, ArchEntry] = {
    "srresnet": ArchEntry(
        "SRResNet",
        {"num_features": "num_features", "num_blocks": "num_blocks"},
        {"num_features": 64, "num_blocks": 16},
        "scale",
    ),
    "rrdbnet": ArchEntry(
        "RRDBNet",
        {"num_features": "num_feat", "num_blocks": "num_block", "growth_channels": "num_grow_ch"},
        {"num_features": 64, "num_blocks": 23, "growth_channels": 32},
        "scale",
    ),
    "srvgg": ArchEntry(
        "SRVGGNetCompact",
        {"num_features": "num_feat", "num_blocks": "num_conv"},
        {"num_features": 64, "num_blocks": 16},
        "upscale",
        fixed={"act_type": "prelu"},  # the variant whose weights say what they are
    ),
    "vsr": ArchEntry(
        "BidirectionalRecurrentVSR",
        {
            "num_features": "num_features",
            "num_blocks": "num_blocks",
            "alignment": "alignment",
            "flow_levels": "flow_levels",
            "flow_features": "flow_features",
            "warp_error": "warp_error",
        },
        {
            "num_features": 32,
            "num_blocks": 4,
            "alignment": "learned",
            "flow_levels": 3,
            "flow_features": 16,
            "warp_error": 0,
        },
        "scale",
        temporal=True,
        absent={"alignment": "none", "flow_levels": 3, "flow_features": 16, "warp_error": 0},
    ),
}
BY_ZOO_NAME = {entry.zoo_name: name for name, entry in ARCHS.items()}


@dataclass(frozen=True)
class NetworkPlan:
    """What to build: the architecture, its constructor arguments, the starting weights."""

    arch: str
    kwargs: Kwargs
    init: str | None = None
    state: dict[str, torch.Tensor] | None = None

    @property
    def temporal(self) -> bool:
        return ARCHS[self.arch].temporal

    def build(self) -> nn.Module:
        from srgan.zoo.architectures import BY_NAME

        module = BY_NAME[ARCHS[self.arch].zoo_name].build(**self.kwargs)
        if self.state is not None:
            module.load_state_dict(self.state, strict=True)
        return module.train()

    def hyperparameters(self) -> dict[str, Hyperparameter]:
        """The config fields this plan stands for (`num_features`, `num_blocks`, ...)."""
        entry = ARCHS[self.arch]
        found: dict[str, Hyperparameter] = {}
        for name, argument in entry.fields.items():
            value = self.kwargs.get(argument, entry.absent.get(name))
            found[name] = value if isinstance(value, str) else int(value)
        return found

    @property
    def size_multiple(self) -> int:
        """What the LR input's sides must be multiples of (RRDBNet x2: 2, x1: 4)."""
        from srgan.zoo.architectures import BY_NAME

        return BY_NAME[ARCHS[self.arch].zoo_name].size_multiple(self.kwargs)

    def descriptor(self, scale: int, name: str = "training") -> ModelDescriptor:
        """What the upscaler needs to run this network (validation, evaluation)."""
        return ModelDescriptor(
            name,
            ARCHS[self.arch].zoo_name,
            scale,
            size_multiple=self.size_multiple,
            temporal=self.temporal,
        )

    def probe_config(self, config: RunConfig) -> dict[str, Any]:
        """`config` as plain data for a process that builds the same network without
        loading weights (autotune's probe): `init` dropped, its hyper-parameters set."""
        data = config.model_dump(mode="json")
        data["model"] = {**data["model"], "init": None, **self.hyperparameters()}
        return data


def plan_network(model: ModelConfig, scale: int) -> NetworkPlan:
    """The network `model` describes at `scale` (pretrained weights loaded when `init` is
    set); BadInputError when the config and the weights disagree."""
    entry = ARCHS[model.arch]
    given = {
        name: getattr(model, name) for name in entry.fields if getattr(model, name) is not None
    }
    if model.init is None:
        values = {**entry.defaults, **given}
        kwargs = {entry.fields[name]: value for name, value in values.items()}
        return NetworkPlan(model.arch, {**kwargs, entry.scale_argument: scale, **entry.fixed})
    arch, kwargs, state = _pretrained(model.init)
    if arch != model.arch:
        raise BadInputError(
            f"model.init {model.init} is a {arch} network: set model.arch = {arch!r} "
            f"(not {model.arch!r})"
        )
    if int(kwargs[entry.scale_argument]) != scale:
        raise BadInputError(
            f"model.init {model.init} upscales x{kwargs[entry.scale_argument]}: set data.scale "
            f"to {kwargs[entry.scale_argument]} (not {scale})"
        )
    plan = NetworkPlan(arch, kwargs, model.init, state)
    found = plan.hyperparameters()
    for name, value in given.items():
        if found[name] != value:
            raise BadInputError(
                f"model.{name} = {value} does not match model.init {model.init} "
                f"({name} {found[name]}): leave it out to take the pretrained value"
            )
    return plan


def _pretrained(init: str) -> tuple[str, Kwargs, dict[str, torch.Tensor]]:
    from srgan.zoo.architectures import detect
    from srgan.zoo.registry import load_model

    if init == "bicubic":
        raise BadInputError("model.init bicubic has no weights: give a network or a path")
    loaded = load_model(init)
    state = {k: v.detach().clone() for k, v in loaded.module.state_dict().items()}
    found = detect(state)
    if found is None or found[0].name not in BY_ZOO_NAME:
        raise BadInputError(f"model.init {init}: not weights of an architecture srgan trains")
    architecture, kwargs = found
    if loaded.descriptor.in_channels != 3:
        raise BadInputError(f"model.init {init}: a gray model; training uses colour images")
    return BY_ZOO_NAME[architecture.name], dict(kwargs), state


def freeze(module: nn.Module, prefixes: list[str]) -> list[str]:
    """Stop training the parameters whose names start with one of `prefixes`; returns
    their names. A prefix that names no parameter is an error (a typo trains everything)."""
    names = [name for name, _ in module.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            tops = sorted({name.split(".")[0] for name in names})
            raise BadInputError(
                f"model.freeze {prefix!r} names no parameter (they start with {', '.join(tops)})"
            )
    frozen = []
    for name, parameter in module.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            parameter.requires_grad_(False)
            frozen.append(name)
    if len(frozen) == len(names):
        raise BadInputError("model.freeze leaves nothing to train")
    return frozen


def parameter_groups(module: nn.Module, factors: dict[str, float]) -> list[dict[str, Any]]:
    """The trainable parameters as optimizer groups, one per learning-rate factor; each
    group's `lr_factor` multiplies the scheduled rate (the longest matching prefix wins)."""
    names = [name for name, _ in module.named_parameters()]
    for prefix in factors:
        if not any(name.startswith(prefix) for name in names):
            raise BadInputError(f"optim.lr_factors {prefix!r} names no parameter")
    groups: dict[float, list[nn.Parameter]] = {}
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        matches = [prefix for prefix in factors if name.startswith(prefix)]
        factor = factors[max(matches, key=len)] if matches else 1.0
        groups.setdefault(factor, []).append(parameter)
    return [{"params": params, "lr_factor": factor} for factor, params in groups.items()]


def frames_as_images(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A forward for clips [N, T, C, h, w] that runs an image network on every frame."""

    def forward(clips: torch.Tensor) -> torch.Tensor:
        n, t = clips.shape[:2]
        out = module(clips.flatten(0, 1))
        return out.reshape(n, t, *out.shape[1:])

    return forward
