"""Write small ncnn models (``.param`` + ``.bin``) for tests, and run them with the ncnn
runtime."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest


class NcnnFile:
    """A ``.param`` being written: layers in order, their weights appended to the ``.bin``."""

    def __init__(self, seed: int = 0) -> None:
        self.lines: list[str] = []
        self.blobs: set[str] = set()
        self.bin = bytearray()
        self.rng = np.random.default_rng(seed)

    def layer(self, kind: str, name: str, inputs: list[str], outputs: list[str], params: str = ""):
        self.lines.append(
            f"{kind} {name} {len(inputs)} {len(outputs)} {' '.join(inputs + outputs)} {params}"
        )
        self.blobs.update(inputs + outputs)

    def tagged(self, count: int, scale: float = 0.3) -> None:
        """A "type 0" weight: fp32 tag then values."""
        values = (self.rng.standard_normal(count) * scale).astype("<f4")
        self.bin += struct.pack("<I", 0) + values.tobytes()

    def raw(self, count: int, scale: float = 0.3, offset: float = 0.0) -> None:
        values = (self.rng.standard_normal(count) * scale + offset).astype("<f4")
        self.bin += values.tobytes()

    def save(self, stem: Path) -> tuple[Path, Path]:
        param, weights = stem.with_suffix(".param"), stem.with_suffix(".bin")
        header = f"7767517\n{len(self.lines)} {len(self.blobs)}\n"
        param.write_text(header + "\n".join(self.lines) + "\n", encoding="ascii")
        weights.write_bytes(bytes(self.bin))
        return param, weights


def run_ncnn(
    param: Path, weights: Path, inputs: dict[str, np.ndarray], outputs: list[str]
) -> dict[str, np.ndarray]:
    """The ncnn runtime's blobs ``outputs`` (fp32, one thread) for the given input blobs."""
    ncnn = pytest.importorskip("ncnn")
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    opt.use_fp16_storage = False
    opt.use_fp16_packed = False
    opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    opt.use_packing_layout = False
    # One thread: ncnn bundles its own libgomp, and two OpenMP pools spinning against each
    # other (torch's and ncnn's) make both crawl on a small, busy CPU.
    opt.num_threads = 1
    assert net.load_param(str(param)) == 0
    assert net.load_model(str(weights)) == 0
    results = {}
    kept = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in inputs.items()}
    for name in outputs:
        with net.create_extractor() as ex:
            for blob, value in kept.items():
                assert ex.input(blob, ncnn.Mat(value)) == 0
            ret, out = ex.extract(name)
            assert ret == 0, f"ncnn failed to compute {name}"
            results[name] = np.array(out, dtype=np.float32, copy=True)
    net.clear()
    return results
