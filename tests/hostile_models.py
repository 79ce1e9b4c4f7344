"""Builders of hostile model files and configs, shared by the tests and
benchmarks/fuzz_models_configs.py (hostile images: tests/hostile_files.py).

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the data: easy to write by hand, and to make
lie about any of it.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}


def handmade_safetensors(
    path: Path,
    shapes: dict[str, list[int]],
    dtype: str = "F32",
    offsets: dict[str, list[int]] | None = None,
    data_bytes: int | None = None,
    header_length: int | None = None,
) -> Path:
    """Zero-filled tensors of `shapes`; `offsets`, `data_bytes` and `header_length`
    override what an honest writer would put there."""
    header: dict[str, object] = {}
    position = 0
    for name, shape in shapes.items():
        size = math.prod(shape) * _BYTES[dtype]
        span = (offsets or {}).get(name, [position, position + size])
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": span}
        position += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    length = len(text) if header_length is None else header_length
    data = bytes(position if data_bytes is None else data_bytes)
    path.write_bytes(struct.pack("<Q", length) + text + data)
    return path


def grow_channels_3000(path: Path) -> Path:
    """The issue's 376-byte RRDBNet whose `body.0.rdb1.conv1` claims 3000 growth channels:
    every tensor has a zero-sized dimension, so the file holds no data at all."""
    return handmade_safetensors(
        path,
        {
            "conv_first.weight": [64, 3, 0, 0],
            "conv_body.weight": [64, 64, 0, 0],
            "conv_up1.weight": [64, 64, 0, 0],
            "conv_last.weight": [3, 64, 0, 0],
            "body.0.rdb1.conv1.weight": [3000, 0],
        },
    )


def upscale_x1000(path: Path) -> Path:
    """The issue's SRVGGNetCompact whose last convolution implies a x1000 upscale."""
    return handmade_safetensors(
        path,
        {
            "body.0.weight": [64, 3, 0, 3],
            "body.1.weight": [0],
            "body.2.weight": [3_000_000, 64, 3, 0],
        },
    )


def million_blocks(path: Path) -> Path:
    """An RRDBNet whose block keys jump from 0 to 999999."""
    shapes = {
        "conv_first.weight": [8, 3, 0, 3],
        "conv_body.weight": [8, 8, 0, 3],
        "conv_up1.weight": [8, 8, 0, 3],
        "conv_last.weight": [3, 8, 0, 3],
        "body.0.rdb1.conv1.weight": [4, 8, 0, 3],
        "body.999999.rdb1.conv1.weight": [4, 8, 0, 3],
    }
    return handmade_safetensors(path, shapes)


def past_the_end(path: Path) -> Path:
    """A tensor of 1 GB whose bytes would lie after the end of the 16 bytes of data."""
    return handmade_safetensors(path, {"body.0.weight": [250_000_000]}, data_bytes=16)


def shape_larger_than_data(path: Path) -> Path:
    """A tensor that declares 25 GB of floats over 64 bytes of data."""
    shapes = {"body.0.weight": [80_000, 80_000]}
    return handmade_safetensors(path, shapes, offsets={"body.0.weight": [0, 64]}, data_bytes=64)


def header_longer_than_file(path: Path) -> Path:
    return handmade_safetensors(path, {"a": [1]}, header_length=2**40)


HUGE = "9" * 5000
DEEP = 20_000

# Config files: (file name, content, what the one-line error must contain).
CONFIG_CASES: dict[str, tuple[str, bytes, str]] = {
    "yaml_syntax": ("c.yaml", b"seed: [1, 2\nlr: 3\n", "line 2"),
    "yaml_tab": ("c.yaml", b"a:\n\t- 1\n", "line 2"),
    "toml_syntax": ("c.toml", b"seed = = 3\n", "line 1"),
    "json_syntax": ("c.json", b'{"seed": 1,}', "line 1"),
    "toml_latin1": ("c.toml", 'output_dir = "caf\xe9"\n'.encode("latin-1"), "not UTF-8 text"),
    "toml_utf16": ("c.toml", "seed = 1\n".encode("utf-16"), "UTF-16"),
    "toml_utf16_no_bom": ("c.toml", "seed = 1\n".encode("utf-16-le"), "UTF-16"),
    "yaml_deep": ("c.yaml", b"a: " + b"[" * DEEP + b"]" * DEEP, "nested"),
    "yaml_deep_block": (
        "c.yaml",
        "".join(" " * i + "a:\n" for i in range(1200)).encode(),
        "nested",
    ),
    "json_deep": ("c.json", b'{"a": ' + b"[" * DEEP + b"]" * DEEP + b"}", "nested"),
    "toml_deep": ("c.toml", b"a = " + b"[" * DEEP + b"]" * DEEP, "nested"),
    "json_deep_33": ("c.json", b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "nested more than 32"),
    "toml_inf": ("c.toml", b"seed = 1\nx = inf\n", "x: inf is not a finite number"),
    "toml_nan": ("c.toml", b"[sec]\nfloor = nan\n", "sec.floor: nan is not a finite number"),
    "toml_overflow": ("c.toml", b"x = 1e400\n", "x: inf is not a finite number"),
    "json_infinity": ("c.json", b'{"a": {"lr": Infinity}}', "a.lr: inf is not a finite"),
    "json_nan": ("c.json", b'{"a": [1, NaN]}', "a[1]: nan is not a finite"),
    "json_minus_infinity": ("c.json", b'{"x": -Infinity}', "x: -inf is not a finite"),
    "yaml_inf": ("c.yaml", b"a:\n  floor: .inf\n", "a.floor: inf is not a finite"),
    "yaml_nan": ("c.yaml", b"x: .NaN\n", "x: nan is not a finite"),
    "toml_huge_seed": ("c.toml", f"seed = {HUGE}\n".encode(), "seed: an integer of 5000 digits"),
    "toml_huge_in_table": ("c.toml", f"[gan]\nsteps = {HUGE}\n".encode(), "gan.steps: an integer"),
    "json_huge_seed": ("c.json", f'{{"seed": {HUGE}}}'.encode(), "seed: an integer of 5000"),
    "yaml_huge_seed": ("c.yaml", f"seed: {HUGE}\n".encode(), "seed: an integer of 5000"),
    "int64_overflow": ("c.toml", b"seed = 9223372036854775808\n", "seed: 9223372036854775808 is"),
    "yaml_alias_bomb": (
        "c.yaml",
        b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode()
            for i in range(6)
        ),
        "more than 100,000 values",
    ),
    "yaml_cycle": ("c.yaml", b"a: &x [*x]\n", "nested more than 32"),
    "not_a_table": ("c.json", b"[1, 2]", "expected a table"),
    "too_big": ("c.toml", b"# " + b"x" * (1 << 20) + b"\n", "over 1 MiB, too big"),
    "wrong_suffix": ("c.ini", b"[a]\n", "use a .toml, .yaml or .json"),
}
