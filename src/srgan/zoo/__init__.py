"""Named pretrained models and weight formats."""

from srgan.zoo.descriptor import LoadedModel, ModelDescriptor
from srgan.zoo.registry import KNOWN_MODELS, load_model

__all__ = ["KNOWN_MODELS", "LoadedModel", "ModelDescriptor", "load_model"]
