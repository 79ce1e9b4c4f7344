"""Read a state dict from a `.pth` or `.safetensors` file that may be hostile.

- `.pth`, `.pt`, `.ckpt`: `torch.load(weights_only=True)` (no code runs; other objects
  are refused), memory-mapped when the file is a zip, so tensors cost no memory until
  they are copied into a network.
- `.safetensors`: the header is read and checked by hand first (its length, every
  tensor's dtype, shape and byte range against the file size), then the tensors.

Either way, the tensors' declared bytes never exceed the file size (`declared_bytes`),
so a small file cannot claim a large network through expanded (stride 0) tensors.
"""

from __future__ import annotations

import json
import math
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from srgan.errors import BadInputError
from srgan.zoo.architectures import unwrap_state_dict

MAX_HEADER_BYTES = 16 * 1024 * 1024  # a model with 100 000 tensors needs about 10 MiB
_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file; BadInputError (one line) for anything else."""
    if path.suffix.lower() == ".safetensors":
        check_safetensors_header(path)
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = unwrap_state_dict(_torch_load(path))
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():
            raise BadInputError(f"{path}: not a readable weights file (not a torch file)") from exc
        # torch's own message suggests loading without the restriction: that could run code.
        raise BadInputError(
            f"{path}: holds objects other than tensors; srgan loads only plain state dicts"
        ) from exc
    except RecursionError as exc:
        raise BadInputError(f"{path}: not a readable weights file (nested too deeply)") from exc
    except Exception as exc:  # zip, pickle and safetensors errors have many classes
        raise BadInputError(f"{path}: not a readable weights file ({_first_line(exc)})") from exc
    size = path.stat().st_size
    if declared_bytes(state) > size:
        raise BadInputError(
            f"{path}: its tensors declare {declared_bytes(state):,} bytes but the file holds "
            f"{size:,} (expanded or shared tensors): not a plain state dict"
        )
    return state


def declared_bytes(state: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in state.values())


def _torch_load(path: Path) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes on old pickle protocols
        return torch.load(
            path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )


def check_safetensors_header(path: Path) -> None:
    """Refuse a safetensors file whose header lies about what the file holds."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise BadInputError(f"{path}: not a safetensors file ({size} bytes)")
        length = int.from_bytes(prefix, "little")
        if length > size - 8:
            raise BadInputError(
                f"{path}: not a safetensors file (its header claims {length:,} bytes, "
                f"the file has {size:,})"
            )
        if length > MAX_HEADER_BYTES:
            raise BadInputError(
                f"{path}: safetensors header of {length:,} bytes is larger than srgan reads "
                f"({MAX_HEADER_BYTES // (1024 * 1024)} MiB)"
            )
        raw = stream.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadInputError(f"{path}: not a safetensors file (unreadable header)") from exc
    if not isinstance(header, dict):
        raise BadInputError(f"{path}: not a safetensors file (its header is not a table)")
    data_bytes = size - 8 - length
    for name, info in header.items():
        if name == "__metadata__":
            continue
        problem = _tensor_problem(info, data_bytes)
        if problem:
            shown = repr(name)[1:-1][:80]
            raise BadInputError(f"{path}: tensor {shown} {problem}")


def _tensor_problem(info: object, data_bytes: int) -> str | None:
    if not isinstance(info, dict):
        return "has no dtype, shape and offsets"
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _DTYPE_BYTES:
        return f"has an unknown dtype {str(dtype)[:20]!r}"
    if not isinstance(shape, list) or len(shape) > 8 or not all(_natural(n) for n in shape):
        return "has no valid shape"
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_natural, offsets)):
        return "has no valid data offsets"
    begin, end = offsets
    declared = math.prod(shape) * _DTYPE_BYTES[dtype]
    if end < begin or end - begin != declared:
        return f"declares shape {shape} ({declared:,} bytes) but {end - begin:,} bytes of data"
    if end > data_bytes:
        return f"ends at byte {end:,} but the file holds {data_bytes:,} bytes of data"
    return None


def _natural(value: object) -> bool:
    return type(value) is int and value >= 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) < 200 else line[:197] + "..."
