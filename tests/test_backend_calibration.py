"""A real calibration run on this machine: every installed backend is timed on the probe,
the fastest is picked and cached, later processes read it, `srgan devices` and
`srgan benchmark` show it, `--calibrate` measures again."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from srgan.imaging import Image, ImageMeta, write_image
from srgan.inference.backends import (
    candidates_for,
    choice_cache,
    select_backend,
    with_known_descriptor,
)
from srgan.zoo.sources import resolve_source

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def measured():
    """anime-video measured for real (again: other tests may have cached it already)."""
    source = with_known_descriptor(resolve_source("anime-video"))
    selection = select_backend(source, "cpu", "fp32", "auto", recalibrate=True)
    return source, selection


def test_every_candidate_is_timed_and_the_fastest_wins(measured):
    source, selection = measured
    choice = selection.choice
    assert choice is not None and not choice.from_cache
    candidates = {b.name for b in candidates_for(source, "cpu", "fp32")}
    assert candidates >= {"onnxruntime", "torch"}
    assert set(choice.probe.times) == candidates and not choice.probe.errors
    assert all(seconds > 0 for seconds in choice.probe.times.values())
    assert choice.backend == choice.probe.winner()
    if choice.probe.large_times:  # the close ones, timed again on a tile twice the side
        assert choice.probe.large_side == 2 * choice.probe.side
        assert set(choice.probe.large_times) <= set(choice.probe.times)
    assert 32 <= choice.probe.side <= 128
    assert choice.backend in selection.reason and "measured now" in selection.reason


def test_a_later_process_reads_the_cache_without_measuring(measured, tmp_path):
    _, selection = measured
    stamp = choice_cache().path.stat().st_mtime_ns
    write_image(tmp_path / "a.png", Image(np.full((16, 16, 3), 90, np.uint8), ImageMeta()))
    command = [sys.executable, "-m", "srgan", "-v", "upscale", str(tmp_path / "a.png")]
    result = subprocess.run(
        [*command, str(tmp_path / "o.png"), "-m", "anime-video"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stderr.splitlines() if "srgan: info: backend " in x)
    assert f"backend {selection.backend}: {selection.backend}" in line and "cached" in line
    # the stage profile that benchmarks/ncnn_ratio.py reads
    ready = next(x for x in result.stderr.splitlines() if " after the process started" in x)
    assert 0 < float(ready.split("ready ")[1].split(" s")[0]) < 600
    assert "(start-up " in ready and ", then the model " in ready
    timing = next(x for x in result.stderr.splitlines() if "info: timing: " in x)
    # a PNG is written band by band: its encode includes the writing
    assert all(f"{stage} " in timing for stage in ("model", "decode", "compute", "encode"))
    assert choice_cache().path.stat().st_mtime_ns == stamp  # nothing measured, nothing written


def test_devices_and_benchmark_show_the_choice_and_calibrate_remeasures(measured, cli):
    _, selection = measured
    table = cli("devices").stdout
    row = next(line for line in table.splitlines() if line.startswith("anime-video "))
    assert row.split()[3] == selection.backend
    listed = json.loads(cli("devices", "--json").stdout)
    stored = [c for c in listed[0]["backend_choices"] if c["key"]["name"] == "anime-video"]
    assert any(c["backend"] == selection.backend for c in stored)
    before = max(c["measured_at"] for c in stored)
    result = cli(
        "benchmark", "-m", "anime-video", "--size", "16x16", "--repeats", "1", "--calibrate"
    )
    assert "calibrated:" in result.stderr and "backend auto, as measured" in result.stdout
    listed = json.loads(cli("devices", "--json").stdout)
    after = max(
        c["measured_at"] for c in listed[0]["backend_choices"] if c["key"]["name"] == "anime-video"
    )
    assert after > before
