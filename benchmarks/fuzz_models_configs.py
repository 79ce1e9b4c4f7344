"""Hostile model files, training checkpoints and config files against the srgan CLI.

Builds a corpus in a temporary folder (crafted pickles whose `__reduce__` would create
a marker file, truncated and bit-flipped zips and safetensors, safetensors headers that
lie, absurd shapes, expanded tensors, special files, configs of every broken kind) and
runs each case's command in its own subprocess, with a timeout and an address-space cap
(a safety net for this machine). Prints the count of cases by outcome:

- `exit 2, one line`: the expected refusal (`srgan: error: ...`);
- `exit 2, several lines`, `exit 1`, `exit 0`, `traceback`, `timeout`;
- `memory over limit`: peak RSS above `--memory-limit-mb` or an allocation failure;
- `CODE EXECUTED`: the case's marker file exists afterwards.

Then every case whose outcome is not the expected one, with its first line of stderr.
Linux only (os.wait4 gives each child's peak RSS).

    python benchmarks/fuzz_models_configs.py [--jobs 2] [--timeout 90]
        [--memory-limit-mb 1200] [--only models checkpoints configs] [--show-all]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import pickle
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import hostile_models as hostile  # noqa: E402  (shared with the tests)

EXPECTED = "exit 2, one line"
ADDRESS_SPACE_CAP = 6 << 30


@dataclass
class Case:
    category: str
    name: str
    argv: list[str]
    marker: Path | None = None
    expected: str = EXPECTED


@dataclass
class Outcome:
    case: Case
    outcome: str
    first_line: str
    peak_mb: float
    seconds: float


# ------------------------------------------------------------------ code-running payloads


class OpenPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class SystemPayload(OpenPayload):
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalPayload(OpenPayload):
    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w')",))


class SubprocessPayload(OpenPayload):
    def __reduce__(self):
        return (subprocess.call, (["touch", self.marker],))


class TorchLoadPayload(OpenPayload):
    """Asks torch to load a second, code-running file without the restriction (the
    hostile payload spells out the unsafe flag; srgan never does)."""

    def __init__(self, marker: Path, inner: Path) -> None:
        super().__init__(marker)
        self.inner = str(inner)

    def __reduce__(self):
        return (functools.partial(torch.load, weights_only=False), (self.inner,))


PAYLOADS: dict[str, type[OpenPayload]] = {
    "open": OpenPayload,
    "os_system": SystemPayload,
    "eval": EvalPayload,
    "subprocess": SubprocessPayload,
}


def pickles(marker: Path, wrap: Callable[[object], object]) -> dict[str, bytes]:
    """Every payload, as a torch zip and as raw pickles of protocols 2 and 5."""
    out: dict[str, bytes] = {}
    for name, payload in PAYLOADS.items():
        obj = wrap(payload(marker))
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        out[f"{name}_zip"] = buffer.getvalue()
        out[f"{name}_raw_p2"] = pickle.dumps(obj, protocol=2)
        out[f"{name}_raw_p5"] = pickle.dumps(obj, protocol=5)
    inner = marker.with_suffix(".inner.pt")
    inner.write_bytes(pickle.dumps(OpenPayload(marker)))
    buffer = io.BytesIO()
    torch.save(wrap(TorchLoadPayload(marker, inner)), buffer)
    out["nested_torch_load_zip"] = buffer.getvalue()
    buffer = io.BytesIO()
    torch.save(wrap(np.array([OpenPayload(marker)], dtype=object)), buffer)
    out["numpy_object_array_zip"] = buffer.getvalue()
    buffer = io.BytesIO()
    torch.save(wrap(torch.nn.Conv2d(3, 3, 3)), buffer)  # a whole module: a global
    out["whole_module_zip"] = buffer.getvalue()
    return out


# ------------------------------------------------------------------------ model files


def valid_compact_state() -> dict[str, torch.Tensor]:
    from srgan.archs.srvgg import SRVGGNetCompact

    torch.manual_seed(0)
    return SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2).state_dict()


def truncations(data: bytes) -> dict[str, bytes]:
    points = sorted({0, 1, 7, 8, 9, 16, len(data) // 4, len(data) // 2, len(data) - 1})
    return {f"cut_{p}": data[:p] for p in points if p < len(data)}


def header_flips(data: bytes, count: int, seed: int) -> dict[str, bytes]:
    """Random byte changes inside the first 8 + header bytes (the data region would only
    change weights, which is not an error)."""
    rng = random.Random(seed)
    length = min(len(data), 8 + int.from_bytes(data[:8], "little"))
    out = {}
    for index in range(count):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            flipped[rng.randrange(length)] = rng.randrange(256)
        out[f"flip_{index}"] = bytes(flipped)
    return out


def model_cases(root: Path, image: Path, out: Path) -> list[Case]:
    from safetensors.torch import save

    folder = root / "models"
    folder.mkdir()
    files: dict[str, Path] = {}

    def put(name: str, data: bytes, suffix: str) -> None:
        path = folder / f"{name}{suffix}"
        path.write_bytes(data)
        files[name] = path

    markers: dict[str, Path] = {}
    for name, data in pickles(root / "markers" / "model_pickle", lambda obj: obj).items():
        put(f"pickle_{name}", data, ".pth")
        markers[f"pickle_{name}"] = root / "markers" / "model_pickle"
    for name, data in pickles(root / "markers" / "model_wrapped", lambda o: {"params": o}).items():
        put(f"wrapped_pickle_{name}", data, ".pth")
        markers[f"wrapped_pickle_{name}"] = root / "markers" / "model_wrapped"

    state = {k: v.contiguous() for k, v in valid_compact_state().items()}
    safetensors_bytes = save(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    pth_bytes = buffer.getvalue()
    for name, data in truncations(safetensors_bytes).items():
        put(f"safetensors_{name}", data, ".safetensors")
    for name, data in header_flips(safetensors_bytes, 25, seed=1).items():
        put(f"safetensors_header_{name}", data, ".safetensors")
    for name, data in truncations(pth_bytes).items():
        put(f"pth_{name}", data, ".pth")
    put("safetensors_named_pth", safetensors_bytes, ".pth")
    put("pth_named_safetensors", pth_bytes, ".safetensors")
    put("random_bytes_pth", random.Random(2).randbytes(5000), ".pth")
    put("deep_pickle", deep_pickle(100_000), ".pth")
    put("random_bytes_safetensors", random.Random(3).randbytes(5000), ".safetensors")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a/data.pkl", b"not a pickle")
    put("zip_not_torch", zipped.getvalue(), ".pth")

    builders = {
        "grow_channels_3000": hostile.grow_channels_3000,
        "upscale_x1000": hostile.upscale_x1000,
        "million_blocks": hostile.million_blocks,
        "past_the_end": hostile.past_the_end,
        "shape_larger_than_data": hostile.shape_larger_than_data,
        "header_longer_than_file": hostile.header_longer_than_file,
    }
    for name, build in builders.items():
        files[name] = build(folder / f"{name}.safetensors")
    raw_headers = {
        "header_max_length": (2**64 - 1).to_bytes(8, "little") + b"{}",
        "header_not_json": (8).to_bytes(8, "little") + b"{{{{{{{{",
        "header_json_list": (8).to_bytes(8, "little") + b"[1,2,3] ",
        "header_deep_json": (200_000).to_bytes(8, "little") + b"[" * 100_000 + b"]" * 100_000,
        "header_over_16_mib": (17 << 20).to_bytes(8, "little") + b" " * (17 << 20),
        "empty": b"",
    }
    for name, data in raw_headers.items():
        put(name, data, ".safetensors")
    odd_headers = {
        "unknown_dtype": {"body.0.weight": {"dtype": "X9", "shape": [1], "data_offsets": [0, 4]}},
        "negative_shape": {"w": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}},
        "float_shape": {"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}},
        "bool_shape": {"w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}},
        "reversed_offsets": {"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}},
        "nine_dims": {"w": {"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}},
        "overlapping": {
            "body.0.weight": {"dtype": "F32", "shape": [8, 3, 3, 3], "data_offsets": [0, 864]},
            "body.1.weight": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
            "body.2.weight": {"dtype": "F32", "shape": [12, 8, 3, 3], "data_offsets": [0, 3456]},
        },
        "metadata_not_a_table": {"__metadata__": [1, 2]},
        "control_char_key": {
            "body.0\n\x1b[31m.weight": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
        },
        "hundred_thousand_tensors": {
            f"body.{i}.weight": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
            for i in range(100_000)
        },
    }
    for name, header in odd_headers.items():
        text = json.dumps(header).encode()
        put(name, len(text).to_bytes(8, "little") + text + bytes(4096), ".safetensors")

    expanded = {f"body.{2 * i}.weight": torch.zeros(1).expand(64, 64, 3, 3) for i in range(66)}
    expanded.update({f"body.{2 * i + 1}.weight": torch.zeros(1).expand(64) for i in range(65)})
    torch.save(expanded, folder / "expanded_tensors.pth")
    files["expanded_tensors"] = folder / "expanded_tensors.pth"
    huge = {
        k: torch.zeros(100_000, 3, 0, 0)
        for k in (
            "conv_first.weight",
            "conv_body.weight",
            "conv_up1.weight",
            "conv_last.weight",
            "body.0.rdb1.conv1.weight",
        )
    }
    torch.save(huge, folder / "huge_channels.pth")
    files["huge_channels"] = folder / "huge_channels.pth"
    torch.save(
        {
            "conv_first.weight": torch.zeros(4),
            "conv_body.weight": torch.zeros(1),
            "conv_up1.weight": torch.zeros(1),
            "conv_last.weight": torch.zeros(1),
            "body.0.rdb1.conv1.weight": torch.zeros(1),
        },
        folder / "one_dim_convs.pth",
    )
    files["one_dim_convs"] = folder / "one_dim_convs.pth"
    torch.save(
        {
            "body.0.weight": torch.zeros(8, 0, 3, 3),
            "body.1.weight": torch.zeros(8),
            "body.2.weight": torch.zeros(12, 8, 3, 3),
        },
        folder / "zero_channels.pth",
    )
    files["zero_channels"] = folder / "zero_channels.pth"
    torch.save(
        {"body.².weight": torch.zeros(1), "body.0.weight": torch.zeros(8, 3, 3, 3)},
        folder / "unicode_digit_key.pth",
    )
    files["unicode_digit_key"] = folder / "unicode_digit_key.pth"
    torch.save({"weight": np.zeros(3)}, folder / "numpy_inside.pth")
    files["numpy_inside"] = folder / "numpy_inside.pth"
    torch.save({"a": {1, 2, 3}, "b": "text"}, folder / "no_tensors.pth")
    files["no_tensors"] = folder / "no_tensors.pth"

    special = folder / "special"
    special.mkdir()
    os.mkfifo(special / "fifo.pth")
    (special / "dev_zero.pth").symlink_to("/dev/zero")
    (special / "dir.safetensors").mkdir()
    (special / "loop.pth").symlink_to(special / "loop.pth")
    run = folder / "run_with_garbage_generator" / "checkpoints" / "step_0000001"
    run.mkdir(parents=True)
    (run / "generator.safetensors").write_bytes(random.Random(4).randbytes(3000))
    (run.parent / "latest").symlink_to(run.name)
    targets = {
        "fifo": special / "fifo.pth",
        "dev_zero_symlink": special / "dev_zero.pth",
        "directory_named_safetensors": special / "dir.safetensors",
        "symlink_loop": special / "loop.pth",
        "missing": special / "missing.pth",
        "run_folder_garbage_generator": run.parents[1],
    }
    files.update(targets)
    return [
        Case(
            "models",
            name,
            ["upscale", str(image), str(out / f"{name}.png"), "--model", str(path)],
            markers.get(name),
        )
        for name, path in files.items()
    ]


# ----------------------------------------------------------------------- checkpoints


def checkpoint_cases(root: Path, photos: Path, clips: Path) -> list[Case]:
    folder = root / "runs"
    states: dict[str, bytes] = {}
    markers: dict[str, Path] = {}
    marker = root / "markers" / "checkpoint"
    for name, data in pickles(marker, lambda obj: {"step": 1, "rng": obj}).items():
        states[f"pickle_{name}"] = data
        markers[f"pickle_{name}"] = marker
    buffer = io.BytesIO()
    torch.save({"step": 1, "position": {"step": 1}}, buffer)
    honest_but_empty = buffer.getvalue()
    states.update({f"truncated_{k}": v for k, v in truncations(honest_but_empty).items()})
    states["missing_keys"] = honest_but_empty
    for label, state in {
        "step_not_an_int": {"step": "one"},
        "not_a_dict": [1, 2, 3],
        "wrong_types": {"step": 1, "position": "x", "optimizer": 3, "rng": None},
    }.items():
        buffer = io.BytesIO()
        torch.save(state, buffer)
        states[label] = buffer.getvalue()
    states["deep_nesting"] = deep_pickle(100_000)
    states["random_bytes"] = random.Random(5).randbytes(4096)
    states["empty"] = b""

    cases: list[Case] = []
    for name, data in states.items():
        run = folder / name
        step = run / "checkpoints" / "step_0000001"
        step.mkdir(parents=True)
        (step / "state.pt").write_bytes(data)
        (run / "checkpoints" / "latest").symlink_to(step.name)
        cases += _resume_cases(name, run, photos, clips, markers.get(name))
    special = {
        "latest_absolute": lambda link: link.symlink_to("/etc"),
        "latest_parent": lambda link: link.symlink_to("../../models"),
        "latest_loop": lambda link: link.symlink_to("latest"),
        "latest_text_traversal": lambda link: link.write_text("../../../../etc/passwd"),
        "state_is_fifo": None,
        "state_is_dev_zero": None,
        "state_is_directory": None,
    }
    for name, make_link in special.items():
        run = folder / name
        step = run / "checkpoints" / "step_0000001"
        step.mkdir(parents=True)
        link = run / "checkpoints" / "latest"
        if make_link is not None:
            make_link(link)
        else:
            link.symlink_to(step.name)
            if name == "state_is_fifo":
                os.mkfifo(step / "state.pt")
            elif name == "state_is_dev_zero":
                (step / "state.pt").symlink_to("/dev/zero")
            else:
                (step / "state.pt").mkdir()
        cases += _resume_cases(name, run, photos, clips, None)
    return cases


def deep_pickle(depth: int) -> bytes:
    """A pickle of lists nested `depth` deep (EMPTY_LIST pushes, APPEND nests)."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


def _resume_cases(name: str, run: Path, photos: Path, clips: Path, marker: Path | None):
    tiny = [
        "--set",
        "data.crop=32",
        "--set",
        "loss.perceptual.weight=0",
        "--set",
        "loss.pixel.weight=1",
        "--set",
        "tensorboard=false",
        "--batch-size",
        "2",
        "--set",
        "data.workers=0",
    ]
    vsr = [
        "--no-autotune",
        "--set",
        "data.frames=2",
        "--set",
        "data.crop=24",
        "--set",
        "tensorboard=false",
    ]
    return [
        Case(
            "checkpoints",
            f"{name} (train)",
            ["train", "--resume", "--train", str(photos), "-o", str(run), *tiny],
            marker,
        ),
        Case(
            "checkpoints",
            f"{name} (train-vsr)",
            ["train-vsr", "--resume", "--train", str(clips), "-o", str(run), *vsr],
            marker,
        ),
    ]


# --------------------------------------------------------------------------- configs


def config_cases(root: Path) -> list[Case]:
    folder = root / "configs"
    folder.mkdir()
    marker = root / "markers" / "config"
    contents = {name: (file, data) for name, (file, data, _) in hostile.CONFIG_CASES.items()}
    contents.update(
        {
            "yaml_python_apply": (
                "c.yaml",
                f'x: !!python/object/apply:os.system ["touch {marker}"]'.encode(),
            ),
            "yaml_python_name": ("c.yaml", b"x: !!python/name:os.system\n"),
            "yaml_python_object_new": (
                "c.yaml",
                f"x: !!python/object/new:subprocess.Popen [[touch, {marker}]]\n".encode(),
            ),
            "yaml_binary": ("c.yaml", b"seed: !!binary aGVsbG8=\n"),
            "yaml_set": ("c.yaml", b"seed: !!set {a, b}\n"),
            "yaml_timestamp_for_float": ("c.yaml", b"optim:\n  lr: 2001-12-14\n"),
            "yaml_null_key": ("c.yaml", b"~: 1\n"),
            "yaml_string_inf": ("c.yaml", b'optim:\n  lr: "inf"\n'),
            "yaml_string_1e400": ("c.yaml", b'optim:\n  lr: "1e400"\n'),
            "toml_datetime_for_float": ("c.toml", b"[optim]\nlr = 1979-05-27T07:32:00Z\n"),
            "toml_control_char_key": ("c.toml", b'"a\\u001b[31m" = 1\n'),
            "json_bom": ("c.json", b'\xef\xbb\xbf{"seed": "x"}'),
            "json_utf32": ("c.json", '{"seed": 1}'.encode("utf-32")),
            "json_long_line_bad": ("c.json", b'{"a": ' + b"1," * 300_000 + b"}"),
            "unknown_key": ("c.toml", b"no_such_key = 1\n"),
            "wrong_section_type": ("c.toml", b"optim = 3\n"),
        }
    )
    cases: list[Case] = []
    for name, (file_name, data) in contents.items():
        path = folder / name / file_name
        path.parent.mkdir()
        path.write_bytes(data)
        cases += _config_commands(name, path, marker)
    special = folder / "special"
    special.mkdir()
    os.mkfifo(special / "fifo.toml")
    (special / "zero.toml").symlink_to("/dev/zero")
    (special / "dir.toml").mkdir()
    for name, path in {
        "fifo": "fifo.toml",
        "dev_zero": "zero.toml",
        "directory": "dir.toml",
        "missing": "missing.toml",
    }.items():
        cases += _config_commands(name, special / path, None)
    deep = "[" * 20_000 + "]" * 20_000
    overrides = {  # name: (the srgan train assignment, the train-vsr one)
        "set_infinity": ("optim.lr=Infinity", "optim.lr=Infinity"),
        "set_nan": ("loss.adversarial.weight=NaN", "loss.l1=NaN"),
        "set_minus_infinity": ("pretrain.schedule.floor=-Infinity", "schedule.floor=-Infinity"),
        "set_overflow_float": ("gan.lr=1e999", "optim.lr=1e999"),
        "set_string_inf": ('gan.lr="inf"', 'optim.lr="inf"'),
        "set_huge_seed": ("seed=" + "9" * 5000,) * 2,
        "set_int64_seed": ("seed=18446744073709551616",) * 2,
        "set_deep_list": ("schedule.milestones=" + deep,) * 2,
        "set_not_a_section": ("seed.x=1",) * 2,
        "set_no_equals": ("seed",) * 2,
        "set_empty_key": ("=3",) * 2,
        "set_list_with_inf": ("schedule.milestones=[0.5, Infinity]",) * 2,
    }
    for name, (image, video) in overrides.items():
        cases.append(
            Case("configs", f"{name} (train)", ["train", "--print-config", "--set", image])
        )
        cases.append(
            Case("configs", f"{name} (train-vsr)", ["train-vsr", "--print-config", "--set", video])
        )
    return cases


def _config_commands(name: str, path: Path, marker: Path | None) -> list[Case]:
    data_dir = path.parent / "serve-data"
    return [
        Case("configs", f"{name} (train)", ["train", "--print-config", "-c", str(path)], marker),
        Case(
            "configs",
            f"{name} (train-vsr)",
            ["train-vsr", "--print-config", "-c", str(path)],
            marker,
        ),
        Case(
            "configs",
            f"{name} (serve)",
            ["serve", "-c", str(path), "--port", "0", "--data-dir", str(data_dir)],
            marker,
        ),
    ]


# --------------------------------------------------------------------------- running


def run_case(case: Case, timeout: float, limit_mb: float) -> Outcome:
    if case.marker is not None:
        case.marker.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as err:

        def cap() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))

        start = time.perf_counter()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "srgan", *case.argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            preexec_fn=cap,
            start_new_session=True,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode(errors="replace")
    peak_mb = usage.ru_maxrss / 1024
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0][:200] if lines else ""
    code = process.returncode
    if case.marker is not None and case.marker.exists():
        outcome = "CODE EXECUTED"
    elif killed.is_set():
        outcome = "timeout"
    elif peak_mb > limit_mb or any(
        s in text for s in ("out of memory", "Cannot allocate memory", "MemoryError")
    ):
        outcome = "memory over limit"
    elif "Traceback (most recent call last)" in text:
        outcome = "traceback"
    elif code == 2 and len(lines) == 1 and lines[0].startswith("srgan: error:"):
        outcome = EXPECTED
    elif code == 2:
        outcome = "exit 2, several lines"
    else:
        outcome = f"exit {code}"
    return Outcome(case, outcome, first, peak_mb, seconds)


def training_inputs(root: Path) -> tuple[Path, Path, Path]:
    from skimage import data

    from srgan.imaging import Image, ImageMeta, write_image

    photos, clip = root / "photos", root / "clips" / "clip"
    photos.mkdir()
    clip.mkdir(parents=True)
    picture = np.ascontiguousarray(data.astronaut()[100:164, 100:164])
    write_image(photos / "0.png", Image(picture, ImageMeta()))
    for index in range(3):
        shutil.copy(photos / "0.png", clip / f"{index:03d}.png")
    image = root / "input.png"
    write_image(image, Image(picture[:16, :16].copy(), ImageMeta()))
    return photos, root / "clips", image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--memory-limit-mb", type=float, default=1200.0)
    parser.add_argument("--only", nargs="*", default=["models", "checkpoints", "configs"])
    parser.add_argument("--show-all", action="store_true", help="Print every case's line.")
    args = parser.parse_args()

    from srgan.inference.devices import cpu_model_name

    with tempfile.TemporaryDirectory(prefix="srgan-fuzz-") as temp:
        root = Path(temp)
        (root / "markers").mkdir()
        (root / "out").mkdir()
        photos, clips, image = training_inputs(root)
        cases: list[Case] = []
        if "models" in args.only:
            cases += model_cases(root, image, root / "out")
        if "checkpoints" in args.only:
            cases += checkpoint_cases(root, photos, clips)
        if "configs" in args.only:
            cases += config_cases(root)
        print(
            f"{len(cases)} cases on {cpu_model_name()}, {args.jobs} at a time; "
            f"load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        start = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(
                pool.map(lambda c: run_case(c, args.timeout, args.memory_limit_mb), cases)
            )
        elapsed = time.perf_counter() - start
        partial = [p.name for p in (root / "out").iterdir()]

    counts = Counter((r.case.category, r.outcome) for r in results)
    categories = sorted({r.case.category for r in results})
    outcomes = sorted({r.outcome for r in results}, key=lambda o: (o != EXPECTED, o))
    width = max(len(o) for o in outcomes)
    print(f"\n{'outcome':<{width}}  " + "  ".join(f"{c:>11}" for c in categories) + "  total")
    for outcome in outcomes:
        row = [counts[(c, outcome)] for c in categories]
        print(f"{outcome:<{width}}  " + "  ".join(f"{n:>11}" for n in row) + f"  {sum(row):>5}")
    peak = max(results, key=lambda r: r.peak_mb)
    print(f"\nhighest peak RSS: {peak.peak_mb:.0f} MB ({peak.case.category}: {peak.case.name})")
    print(f"output files written by refused cases: {len(partial)}")
    print(f"{elapsed:.0f} s; load average now {os.getloadavg()[0]:.2f}")
    shown = [r for r in results if args.show_all or r.outcome != r.case.expected]
    if shown:
        print()
    for r in shown:
        print(f"[{r.outcome}] {r.case.category}: {r.case.name}: {r.first_line}")
    sys.exit(
        1 if any(r.outcome in ("CODE EXECUTED", "traceback", "timeout") for r in results) else 0
    )


if __name__ == "__main__":
    main()
