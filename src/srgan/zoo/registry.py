"""Turn a model name or file into a ready `LoadedModel`."""

from __future__ import annotations

from srgan.errors import BadInputError
from srgan.zoo.bicubic import load_bicubic
from srgan.zoo.descriptor import LoadedModel

DEFAULT_BICUBIC_SCALE = 4.0
KNOWN_MODELS = ("bicubic",)


def load_model(name_or_path: str, scale: float | None = None) -> LoadedModel:
    """Load a named model. `scale` is required to match fixed-scale models and picks the
    factor of scale-free ones (bicubic, default 4)."""
    if name_or_path == "bicubic":
        chosen = DEFAULT_BICUBIC_SCALE if scale is None else scale
        if chosen <= 0:
            raise BadInputError(f"--scale must be positive, got {chosen:g}")
        return load_bicubic(chosen)
    known = ", ".join(KNOWN_MODELS)
    raise BadInputError(f"unknown model {name_or_path!r} (known models: {known})")
