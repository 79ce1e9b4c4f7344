"""A model run by ONNX Runtime from an ONNX file exported once from PyTorch and cached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from srgan.zoo.descriptor import Described, ModelDescriptor
from srgan.zoo.ncnn_conventions import Conventions

ONNX_OPSET = 17


@dataclass
class OnnxModel(Described):
    """``conventions``: applied around the exported network (see `ncnn_conventions`)."""

    descriptor: ModelDescriptor
    path: Path
    conventions: Conventions | None = None


def export_onnx(module, path: Path) -> None:
    """Export a PyTorch image-to-image network with free height and width (needs torch)."""
    import warnings

    import torch

    example = torch.rand(1, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own deprecations
        torch.onnx.export(
            module.eval(),
            (example,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {2: "height", 3: "width"}, "output": {2: "h", 3: "w"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
