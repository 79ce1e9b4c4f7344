"""Write a `Network` in each format, to temporary files beside the target that are renamed
into place only once the conversion has been validated (`Staged.commit`)."""

from __future__ import annotations

import copy
import io
import json
import os
import secrets
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from srgan.conversion.formats import files_of
from srgan.conversion.network import Network
from srgan.errors import BadInputError

ONNX_OPSET = 17
PYTORCH_WRAPPER = "params"  # what BasicSR and Real-ESRGAN read (`params` or `params_ema`)


@dataclass
class Staged:
    """Finished files under temporary names; `commit` renames them (the .bin of an ncnn
    model before its .param, so a .param never names weights that are not there)."""

    pairs: list[tuple[Path, Path]]  # (temporary, final)

    @property
    def temporary(self) -> list[Path]:
        return [temp for temp, _ in self.pairs]

    @property
    def targets(self) -> list[Path]:
        return [final for _, final in self.pairs]

    def commit(self) -> None:
        for temp, final in reversed(self.pairs):
            os.replace(temp, final)

    def discard(self) -> None:
        for temp, _ in self.pairs:
            temp.unlink(missing_ok=True)


def _temporary(final: Path, token: str) -> Path:
    """A hidden name beside `final` with its extension: the .param and .bin of one model
    share their stem, as the ncnn runtime and reader expect."""
    return final.parent / f".{final.stem}.{token}.part{final.suffix}"


def _write(path: Path, data: bytes) -> None:
    with open(path, "xb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def stage(network: Network, fmt: str, target: Path, fp16: bool, frames: int) -> Staged:
    """Write `network` as `fmt` to temporary files for `target` (and its .bin)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"{target.parent}: cannot create the folder ({exc.strerror})") from exc
    finals = files_of(target, fmt)
    token = secrets.token_hex(4)
    staged = Staged([(_temporary(final, token), final) for final in finals])
    try:
        if fmt == "ncnn":
            from srgan.zoo.ncnn_writer import write_ncnn_bytes

            files = write_ncnn_bytes(
                network.architecture, network.hyperparameters, network.state, fp16
            )
            _write(staged.pairs[0][0], files.param)
            _write(staged.pairs[1][0], files.bin)
        elif fmt == "onnx":
            write_onnx(network, staged.pairs[0][0], fp16, frames)
        elif fmt == "safetensors":
            _write(staged.pairs[0][0], safetensors_bytes(network, fp16))
        else:
            _write(staged.pairs[0][0], pytorch_bytes(network, fp16))
    except BaseException:
        staged.discard()
        raise
    return staged


def _state(network: Network, fp16: bool) -> dict:
    import torch

    dtype = torch.float16 if fp16 else torch.float32
    return {
        key: (value.to(dtype) if value.is_floating_point() else value).contiguous()
        for key, value in network.state.items()
    }


def pytorch_bytes(network: Network, fp16: bool) -> bytes:
    """A plain state dict under `params` (only tensors: loads with weights_only=True)."""
    import torch

    buffer = io.BytesIO()
    torch.save({PYTORCH_WRAPPER: _state(network, fp16)}, buffer)
    return buffer.getvalue()


def safetensors_bytes(network: Network, fp16: bool) -> bytes:
    from safetensors.torch import save

    meta = {
        "architecture": network.architecture,
        "hyperparameters": json.dumps(network.hyperparameters, sort_keys=True),
        "format": "pt",
    }
    return save(_state(network, fp16), metadata=meta)


def write_onnx(network: Network, path: Path, fp16: bool, frames: int) -> None:
    """Opset 17, free height and width (and batch); `fp16`: weights, arithmetic and the
    input and output in half precision. A video network takes `frames` frames
    ``[N, frames, C, H, W]`` (its recurrence is unrolled over them). Parameter names are
    kept (no constant folding) and srgan's metadata records the network, so the file
    reads back into PyTorch."""
    import torch

    from srgan.zoo.onnx_weights import ARCHITECTURE_KEY, HYPERPARAMETERS_KEY

    loaded = network.loaded
    descriptor = loaded.descriptor
    module = loaded.module.eval()
    channels = descriptor.in_channels
    multiple = max(1, descriptor.size_multiple)
    side = 16 * multiple
    dtype = torch.float16 if fp16 else torch.float32
    if fp16:
        module = copy.deepcopy(module).half()
    if descriptor.temporal:
        example = torch.rand(1, frames, channels, side, side, dtype=dtype)
        axes = {0: "batch", 3: "height", 4: "width"}
    else:
        example = torch.rand(1, channels, side, side, dtype=dtype)
        axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on its own deprecations
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes, "output": axes},
            opset_version=ONNX_OPSET,
            do_constant_folding=False,
            training=torch.onnx.TrainingMode.PRESERVE,
            dynamo=False,
        )
    import onnx

    model = onnx.load(str(path))
    entries = {
        ARCHITECTURE_KEY: network.architecture,
        HYPERPARAMETERS_KEY: json.dumps(network.hyperparameters, sort_keys=True),
        "srgan.descriptor": json.dumps(asdict(descriptor)),
        "srgan.precision": "fp16" if fp16 else "fp32",
        "srgan.layout": "NTCHW" if descriptor.temporal else "NCHW",
        "srgan.range": "0-1",
        "srgan.color_order": "RGB",
    }
    if descriptor.temporal:
        entries["srgan.frames"] = str(frames)
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    model.producer_name = "srgan"
    onnx.save(model, str(path))
