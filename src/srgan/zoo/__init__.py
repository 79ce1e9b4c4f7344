"""Named pretrained models and weight formats.

Imported lazily: `srgan.zoo.pretrained` and the ncnn backend work without PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["KNOWN_MODELS", "LoadedModel", "ModelDescriptor", "load_model"]

if TYPE_CHECKING:
    from srgan.zoo.descriptor import LoadedModel, ModelDescriptor
    from srgan.zoo.registry import KNOWN_MODELS, load_model


def __getattr__(name: str):
    if name in ("LoadedModel", "ModelDescriptor"):
        from srgan.zoo import descriptor

        return getattr(descriptor, name)
    if name in ("KNOWN_MODELS", "load_model"):
        from srgan.zoo import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'srgan.zoo' has no attribute {name!r}")
