"""Checkpoints: weights as safetensors plus a training-state file, written atomically and
read without ever running code from them.

A checkpoint is a folder `checkpoints/step_0001000/` holding `generator.safetensors`
(loadable by `srgan upscale --model`), `discriminator.safetensors` when there is one, and
`state.pt` (optimizers, schedules, EMA, RNG states, step, data position). The folder is
written under a temporary name and renamed, so a crash never leaves a half checkpoint.
`latest` and `best` are relative symbolic links (plain files naming the folder where
links are not possible).

People share run folders, so `state.pt` is hostile input: it holds only tensors and
plain containers (dict, list, tuple, str, int, float, bool, None) and is read with
`torch.load(weights_only=True)`, whose unpickler builds nothing else. `save_checkpoint`
refuses any other value, so a state that saves also loads. Files from srgan 0.1 stored
numpy's RNG state as an array; they are read with numpy's array type allowed for that
one load (arrays of plain values, still no code).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import secrets
import shutil
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from srgan.errors import BadInputError
from srgan.zoo.weight_files import check_safetensors_header

STATE_FILE = "state.pt"
STATE_FORMAT = 2  # 1 (no "format" key): numpy arrays inside; 2: plain data only
_STEP_NAME = re.compile(r"step_\d{7,}")
_PLAIN_SCALARS = (str, int, float, bool, type(None))


# ---------------------------------------------------------------- RNG states as plain data


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU and CUDA generator states as tensors and plain values."""
    version, internal, gauss_next = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    python = state["python"]
    if isinstance(python, Mapping):
        internal = tuple(int(v) for v in _int_tensor(python["internal"]).tolist())
        random.setstate((int(python["version"]), internal, python["gauss_next"]))
    else:  # format 1: random.getstate() as it is (a tuple of ints)
        random.setstate(tuple(python))
    numpy_state = state["numpy"]
    if isinstance(numpy_state, Mapping):
        key = _int_tensor(numpy_state["key"]).numpy().astype(np.uint32)
        np.random.set_state(
            {
                "bit_generator": str(numpy_state["bit_generator"]),
                "state": {"key": key, "pos": int(numpy_state["pos"])},
                "has_gauss": int(numpy_state["has_gauss"]),
                "gauss": float(numpy_state["gauss"]),
            }
        )
    else:  # format 1: np.random.get_state()'s tuple, its key array already checked
        np.random.set_state(tuple(numpy_state))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _int_tensor(value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dtype != torch.int64 or value.ndim != 1:
        raise ValueError("an RNG state is not a 1-D int64 tensor")
    return value


# ---------------------------------------------------------------------- plain data only


def plain(value: Any, where: str = "state") -> Any:
    """`value` with numpy scalars and arrays turned into Python numbers and tensors;
    TypeError for anything `torch.load(weights_only=True)` would refuse."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, _PLAIN_SCALARS):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is not a str or int")
            out[key] = plain(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        items = [plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(f"{where}: a {type(value).__name__} is not plain data (tensors, numbers, ...)")


# ------------------------------------------------------------------------ save and load


def save_checkpoint(
    folder: Path,
    step: int,
    weights: dict[str, dict[str, torch.Tensor]],
    state: dict[str, Any],
) -> Path:
    """Write `folder/step_XXXXXXX` atomically (each `weights` entry as NAME.safetensors,
    `state` as state.pt) and point `latest` at it."""
    payload = plain({**state, "step": step, "format": STATE_FORMAT})
    target = step_folder(folder, step)
    temp = folder / f".step_{step:07d}.{secrets.token_hex(4)}.part"
    temp.mkdir(parents=True)
    try:
        for name, tensors in weights.items():
            contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(contiguous, str(temp / f"{name}.safetensors"))
        torch.save(payload, temp / STATE_FILE)
        if target.exists():
            shutil.rmtree(target)
        os.replace(temp, target)
    finally:
        if temp.exists():
            shutil.rmtree(temp)
    point(folder, "latest", target)
    return target


def step_folder(folder: Path, step: int) -> Path:
    return folder / f"step_{step:07d}"


def point(folder: Path, name: str, target: Path) -> None:
    """Make `folder/name` a relative link to `target` (or a file naming it)."""
    link = folder / name
    temp = folder / f".{name}.{secrets.token_hex(4)}"
    try:
        temp.symlink_to(target.name)
    except OSError:
        temp.write_text(target.name)
    os.replace(temp, link)


def resolve(folder: Path, name: str = "latest") -> Path | None:
    """The checkpoint a pointer names, or None. Only a `step_N` folder beside the
    pointer counts: a shared run folder cannot point a resume elsewhere."""
    link = folder / name
    try:
        if link.is_symlink():
            target = os.readlink(link)
        elif link.is_file() and link.stat().st_size < 256:
            target = link.read_text().strip()
        else:
            return None
    except (OSError, UnicodeDecodeError):
        return None
    if not _STEP_NAME.fullmatch(target):
        return None
    checkpoint = folder / target
    return checkpoint if (checkpoint / STATE_FILE).is_file() else None


def load_checkpoint(checkpoint: Path, modules: Mapping[str, torch.nn.Module]) -> dict[str, Any]:
    """Load the weights into `modules` and return the training state (plain data)."""
    if not (checkpoint / STATE_FILE).is_file():
        raise BadInputError(f"{checkpoint}: not a training checkpoint (no {STATE_FILE})")
    state = read_state(checkpoint / STATE_FILE)
    with restoring(checkpoint):
        for name, module in modules.items():
            path = checkpoint / f"{name}.safetensors"
            if path.is_file():
                check_safetensors_header(path)
                module.load_state_dict(load_file(str(path)))
    return state


def read_state(path: Path) -> dict[str, Any]:
    """A `state.pt` read with `weights_only=True`; BadInputError for anything else."""
    try:
        try:
            state = _load_restricted(path)
        except pickle.UnpicklingError as exc:
            if "numpy" not in str(exc):
                raise
            state = _load_restricted(path, allow_numpy_arrays=True)  # format 1
    except pickle.UnpicklingError as exc:
        # Foreign objects, or pickle opcodes srgan never writes (raw pickles of protocol
        # 4+): either way, only an unrestricted load could read it, and that runs code.
        what = "pickle opcodes srgan never writes"
        if "global" in str(exc).lower():
            what = "objects other than tensors and plain data"
        raise BadInputError(
            f"{path}: refused: it holds {what}, and loading it unrestricted could run code "
            "(srgan writes only plain training states)"
        ) from exc
    except Exception as exc:  # zip, pickle and storage errors have many classes
        raise BadInputError(f"{path}: not a readable training state ({_reason(exc)})") from exc
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise BadInputError(f"{path}: not a training state (no step number)")
    return state


_NUMPY_ARRAY_GLOBALS: list[Any] = [
    (np.ndarray.__reduce__(np.zeros(0))[0], "numpy.core.multiarray._reconstruct"),
    (np.ndarray.__reduce__(np.zeros(0))[0], "numpy._core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
]


def _load_restricted(path: Path, allow_numpy_arrays: bool = False) -> Any:
    scope = (
        torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS)
        if allow_numpy_arrays
        else contextlib.nullcontext()
    )
    with scope, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes on legacy formats
        return torch.load(path, map_location="cpu", weights_only=True)


@contextlib.contextmanager
def restoring(checkpoint: Path) -> Iterator[None]:
    """Turn a state that does not fit this run (missing keys, wrong shapes or types)
    into one BadInputError naming the checkpoint."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        raise BadInputError(
            f"{checkpoint}: cannot resume from this checkpoint ({_reason(exc)})"
        ) from exc


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"no {text}"
    return text if len(text) < 200 else text[:197] + "..."
