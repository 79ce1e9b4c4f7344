"""A model run by ONNX Runtime from an ONNX file exported once from PyTorch and cached."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srgan.zoo.descriptor import Described, ModelDescriptor
from srgan.zoo.ncnn_conventions import Conventions

ONNX_OPSET = 17


@dataclass
class OnnxModel(Described):
    """``conventions``: applied around the exported network (see `ncnn_conventions`);
    ``statistics`` as for `NcnnModel` (fed to a second export that takes them as inputs)."""

    descriptor: ModelDescriptor
    path: Path
    conventions: Conventions | None = None
    statistics: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)


def export_onnx(module, path: Path, example_size: int = 32, extra_inputs=None) -> None:
    """Export a PyTorch image-to-image network with free height and width (needs torch).

    ``extra_inputs``: more named inputs of fixed shape after the image (name -> example)."""
    import warnings

    import torch

    example = torch.rand(1, 3, example_size, example_size)
    extra = dict(extra_inputs or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own deprecations
        torch.onnx.export(
            module.eval(),
            (example, *extra.values()),
            str(path),
            input_names=["input", *extra],
            output_names=["output"],
            dynamic_axes={"input": {2: "height", 3: "width"}, "output": {2: "h", 3: "w"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
