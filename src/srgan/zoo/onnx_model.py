"""Models run by ONNX Runtime: exported once from PyTorch and cached, or files srgan wrote.

Every ONNX file srgan writes carries its model's descriptor in the metadata
(`srgan.descriptor`, JSON) and its precision (`srgan.precision`), so that a copied file
(the output of `srgan quantize`) runs again with `--model FILE.onnx`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan.zoo.cache import cached_file
from srgan.zoo.descriptor import Described, ModelDescriptor
from srgan.zoo.ncnn_conventions import Conventions
from srgan.zoo.sources import descriptor_to_dict

if TYPE_CHECKING:
    from srgan.zoo.descriptor import LoadedModel
    from srgan.zoo.sources import ModelSource

ONNX_OPSET = 17
# Part of every exported file's cache name: raised when the export of a network changes
# (2: PReLU and RRDB's residual scale kept in ONNX Runtime's blocked layout, see
# `blocked_layout_export`), so that caches export again.
EXPORT_REVISION = 2
EXPORT_SUFFIX = f"-opset{ONNX_OPSET}r{EXPORT_REVISION}.onnx"
DESCRIPTOR_KEY = "srgan.descriptor"
PRECISION_KEY = "srgan.precision"


@dataclass
class OnnxModel(Described):
    """``conventions``: applied around the exported network (see `ncnn_conventions`);
    ``statistics`` as for `NcnnModel`, fed to a second export that takes them as inputs
    (``with_statistics`` gives its file, exported on first use)."""

    descriptor: ModelDescriptor
    path: Path
    precision: str = "fp32"  # "int8": a statically quantized (QDQ) model
    conventions: Conventions | None = None
    statistics: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    with_statistics: Callable[[], Path] | None = field(default=None, repr=False)


def export_onnx(
    module,
    path: Path,
    descriptor: ModelDescriptor | None = None,
    example_size: int = 32,
    extra_inputs: dict | None = None,
) -> None:
    """Export a PyTorch image-to-image network with free height and width (needs torch);
    `descriptor` is stored in the file's metadata. ``extra_inputs``: more named inputs of
    fixed shape after the image (name -> example)."""
    import warnings

    import torch

    channels = descriptor.in_channels if descriptor is not None else 3
    example = torch.rand(1, channels, example_size, example_size)
    extra = dict(extra_inputs or {})
    with warnings.catch_warnings(), blocked_layout_export(module):
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
    if descriptor is not None:
        write_metadata(path, descriptor, "fp32")


@contextmanager
def blocked_layout_export(module) -> Iterator[None]:
    """While exporting, the layers ONNX Runtime cannot run in its blocked (NCHWc) layout
    are swapped for equivalent ones it can; the module is restored afterwards.

    On x86 ONNX Runtime runs convolutions in NCHWc and reorders tensors around any other
    operator it cannot run that way. Two layers did that (docs/CPU.md):

    - ``nn.PReLU`` (SRVGGNetCompact): ONNX Runtime's PRelu runs in NCHW and took a third
      of the network's time. As ``y + (1 - a) * relu(-y)`` with per-channel constants it
      becomes two depthwise 1x1 convolutions (ReLU and sum fused in): 15 % faster.
    - RRDB's ``x + 0.2 * rrdb(x)``: a scalar multiplication after a convolution that
      already adds a residual leaves NCHWc at every block, and every dense-block concat
      after it runs in NCHW with a reorder per convolution. A per-channel scale is folded
      into a depthwise convolution instead: `natural` computes 2.5x faster.

    Both give the same values within float rounding."""
    from torch import nn

    from srgan.archs.rrdbnet import RRDB

    replaced = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.PReLU):
                setattr(parent, name, _blocked_prelu(child))
            elif isinstance(child, RRDB):
                setattr(parent, name, _blocked_rrdb(child))
            else:
                continue
            replaced.append((parent, name, child))
    try:
        yield
    finally:
        for parent, name, child in replaced:
            setattr(parent, name, child)


def _blocked_prelu(prelu):
    import torch
    from torch import nn

    slope = prelu.weight.detach().float()
    if slope.numel() == 1:  # one slope: a LeakyReLU, fused into the convolution
        return nn.LeakyReLU(float(slope))

    class BlockedPReLU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.keep = (1 - slope).reshape(1, -1, 1, 1)
            self.negate = torch.full_like(self.keep, -1.0)

        def forward(self, y: torch.Tensor) -> torch.Tensor:
            return y + self.keep.to(y.dtype) * torch.relu(y * self.negate.to(y.dtype))

    return BlockedPReLU()


def _blocked_rrdb(rrdb):
    import torch
    from torch import nn

    from srgan.archs.rrdbnet import RESIDUAL_SCALE

    channels = rrdb.rdb3.conv5.out_channels

    class BlockedRRDB(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = rrdb
            self.scale = torch.full((1, channels, 1, 1), RESIDUAL_SCALE)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.inner.rdb3(self.inner.rdb2(self.inner.rdb1(x)))
            return out * self.scale.to(out.dtype) + x

    return BlockedRRDB()


def write_metadata(
    path: Path, descriptor: ModelDescriptor, precision: str, extra: dict[str, str] | None = None
) -> None:
    """srgan's descriptor and precision (and `extra` entries) in the file's metadata."""
    import onnx

    entries = {
        DESCRIPTOR_KEY: json.dumps(descriptor_to_dict(descriptor)),
        PRECISION_KEY: precision,
        **(extra or {}),
    }
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in entries.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def exported_onnx(source: ModelSource, loaded: LoadedModel | None = None) -> Path:
    """The model as ONNX in the cache (keyed by its identity), exported from PyTorch on
    first use; `loaded` saves loading the PyTorch module again when the caller has it."""

    def build(path: Path) -> None:
        model = loaded
        if model is None:
            assert source.load_torch is not None, f"{source.name} has no PyTorch form"
            model = source.load_torch()
        export_onnx(model.module, path, source.descriptor or model.descriptor)

    return cached_file(f"{source.identity}{EXPORT_SUFFIX}", build, check_onnx_start)


def check_onnx_start(path: Path) -> None:
    """Raise unless `path` starts like an ONNX model (a ModelProto's ir_version field).

    The cache's digest already guards against damage; this catches a file replaced along
    with its digest, without importing `onnx` (whose import would cost start-up)."""
    with path.open("rb") as stream:
        head = stream.read(2)
    if len(head) < 2 or head[0] != 0x08 or not 3 <= head[1] <= 20:
        raise ValueError(f"{path.name} is not an ONNX model")
