"""`srgan benchmark` and `srgan profile-memory`, run for real on tiny inputs."""

from __future__ import annotations

import csv
import json
import sys

import pytest


def test_benchmark_rows_csv_and_compare(cli, tmp_path):
    pytest.importorskip("ncnn")
    result = cli(
        "benchmark",
        "-m",
        "anime-video",
        "--backend",
        "torch",
        "--backend",
        "ncnn",
        "--size",
        "32x24",
        "--repeats",
        "1",
        "--threads",
        "1",
        "--json",
        "--csv",
        tmp_path / "bench.csv",
    )
    rows = json.loads(result.stdout)
    assert [r["backend"] for r in rows] == ["torch", "ncnn"]
    for row in rows:
        assert row["error"] is None and row["width"] == 32 and row["height"] == 24
        assert row["seconds"] > 0 and row["gflop_per_s"] > 0 and row["peak_rss_mb"] > 50
    with (tmp_path / "bench.csv").open() as stream:
        assert len(list(csv.DictReader(stream))) == 2
    table = cli(
        "benchmark",
        "-m",
        "anime-video",
        "--backend",
        "torch",
        "--size",
        "16x16",
        "--repeats",
        "1",
        "--compare",
    ).stdout
    assert "speed vs first" in table and "1.00x" in table


def test_benchmark_rejects_unknown_models(cli):
    result = cli("benchmark", "-m", "nope", check=False)
    assert result.returncode == 2 and "named models" in result.stderr


def test_profile_memory_records_peak_and_exit_code(cli, tmp_path):
    allocate = "import time; block = bytearray(300 * 2**20); time.sleep(0.6)"
    cli(
        "profile-memory",
        "--interval",
        "0.05",
        "--csv",
        tmp_path / "mem.csv",
        "--",
        sys.executable,
        "-c",
        allocate,
    )
    with (tmp_path / "mem.csv").open() as stream:
        samples = list(csv.DictReader(stream))
    assert max(float(s["rss_mb"]) for s in samples) > 290
    failing = cli(
        "profile-memory", "--", sys.executable, "-c", "import sys; sys.exit(3)", check=False
    )
    assert failing.returncode == 3
    missing = cli("profile-memory", "--", "/no/such/program", check=False)
    assert missing.returncode == 2
