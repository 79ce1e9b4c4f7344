"""Batch processing: folders, structure, failures, resume, parallel equals sequential."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from srgan.imaging import Image, ImageMeta, write_image
from srgan.inference.batch import Job, discover, plan_jobs, run_batch, select_shard


def _photo(seed: int, size=(24, 32)) -> Image:
    from skimage import data

    rng = np.random.default_rng(seed)
    y, x = rng.integers(0, 300, 2)
    return Image(
        np.ascontiguousarray(data.astronaut()[y : y + size[0], x : x + size[1]]), ImageMeta()
    )


@pytest.fixture
def nested(tmp_path) -> Path:
    root = tmp_path / "in"
    for index, relative in enumerate(["a.png", "b.jpg", "sub/c.png", "sub/deeper/d.png"]):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        write_image(root / relative, _photo(index))
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "notes.txt").write_text("not an image")
    return root


def test_nested_folder_keeps_structure_reports_failures_and_exits_1(cli, nested, tmp_path):
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = cli(
        "batch-process",
        nested,
        out,
        "-m",
        "anime-video",
        "--recursive",
        "--report",
        report,
        check=False,
    )
    assert result.returncode == 1
    assert "broken.png" in result.stderr and "4 done, 0 skipped, 1 failed" in result.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "b.jpg", "sub/c.png", "sub/deeper/d.png"]
    data = json.loads(report.read_text())
    assert data["counts"] == {"done": 4, "skipped": 0, "failed": 1}
    assert data["failed"][0]["file"] == "sub/broken.png"


def test_rerun_with_skip_existing_redoes_only_what_is_missing(cli, nested, tmp_path):
    out = tmp_path / "out"
    cli("batch", nested, out, "-m", "bicubic", "-r", "--pattern", "*.png", check=False)
    (out / "sub" / "c.png").unlink()  # as if the run had been interrupted there
    (out / "sub" / ".c.png.1234abcd.part").write_bytes(b"half a file")
    stamp = (out / "a.png").stat().st_mtime_ns
    report = tmp_path / "again.json"
    cli(
        "batch",
        nested,
        out,
        "-m",
        "bicubic",
        "-r",
        "--pattern",
        "*.png",
        "--skip-existing",
        "--report",
        report,
        check=False,
    )
    data = json.loads(report.read_text())
    assert data["done"] == ["sub/c.png"]
    assert sorted(data["skipped"]) == ["a.png", "sub/deeper/d.png"]
    assert (out / "a.png").stat().st_mtime_ns == stamp
    assert (out / "sub" / "c.png").is_file()


def test_parallel_and_sequential_outputs_are_byte_identical(cli, tmp_path):
    source = tmp_path / "in"
    for index in range(6):
        write_image(source / f"img{index}.png", _photo(index, (20 + index, 28)))
    cli("batch", source, tmp_path / "seq", "-m", "anime-video", "--sequential")
    cli(
        "batch",
        source,
        tmp_path / "par",
        "-m",
        "anime-video",
        "--threads",
        "3",
        "--chunk-size",
        "4",
    )
    for index in range(6):
        name = f"img{index}.png"
        assert (tmp_path / "seq" / name).read_bytes() == (tmp_path / "par" / name).read_bytes()


def test_patterns_and_shards(tmp_path):
    root = tmp_path / "in"
    for relative in ["x/1.png", "x/2.jpg", "3.png", "4.tif", ".hidden.png", ".git/5.png"]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"")
    everything = discover(root, recursive=True)
    assert [p.as_posix() for p in everything] == ["3.png", "4.tif", "x/1.png", "x/2.jpg"]
    assert [p.as_posix() for p in discover(root, True, ["*.png"])] == ["3.png", "x/1.png"]
    assert [p.as_posix() for p in discover(root, False)] == ["3.png", "4.tif"]
    many = [Path(f"dir/{n}.png") for n in range(200)]
    shards = [select_shard(many, i, 3) for i in range(3)]
    assert sorted(p for s in shards for p in s) == sorted(many)  # a partition
    assert all(30 < len(s) < 100 for s in shards)  # roughly balanced
    assert select_shard(many, 1, 3) == shards[1]  # deterministic
    assert select_shard([*many, Path("new.png")], 1, 3)[: len(shards[1])] == shards[1]


def test_shard_option_splits_the_work(cli, tmp_path):
    source = tmp_path / "in"
    for index in range(8):
        write_image(source / f"{index}.png", _photo(index, (8, 8)))
    for shard in ("1/2", "2/2"):
        cli("batch", source, tmp_path / "out", "-m", "bicubic", "-s", "2", "--shard", shard)
    assert len(list((tmp_path / "out").iterdir())) == 8
    result = cli("batch", source, tmp_path / "o", "--shard", "3/2", check=False)
    assert result.returncode == 2


def test_workers_run_at_most_n_files_at_once(tmp_path):
    jobs = [Job(tmp_path / f"{n}", tmp_path / f"{n}.out", str(n)) for n in range(20)]
    lock, active, peak = threading.Lock(), [0], [0]

    def process(source: Path, target: Path) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        target.write_text("ok")

    report = run_batch(jobs, process, workers=3, chunk_size=8)
    assert len(report.names("done")) == 20 and 2 <= peak[0] <= 3
    assert report.names("done") == sorted(str(n) for n in range(20))


def test_plan_rejects_outputs_that_would_collide(tmp_path):
    from srgan.errors import BadInputError

    with pytest.raises(BadInputError, match="would be written there"):
        plan_jobs(tmp_path, tmp_path / "out", [Path("a.png"), Path("a.jpg")], ext="png")


def test_single_file_skip_existing_report_and_folder_only_flags(cli, tmp_path):
    write_image(tmp_path / "a.png", _photo(0, (8, 8)))
    (tmp_path / "b.png").write_bytes(b"keep me")
    result = cli(
        "upscale",
        tmp_path / "a.png",
        tmp_path / "b.png",
        "-m",
        "bicubic",
        "--skip-existing",
        "--report",
        tmp_path / "r.json",
    )
    assert "skipped" in result.stderr and (tmp_path / "b.png").read_bytes() == b"keep me"
    assert json.loads((tmp_path / "r.json").read_text())["skipped"] == ["a.png"]
    result = cli("upscale", tmp_path / "a.png", tmp_path / "c.png", "-r", check=False)
    assert result.returncode == 2 and "apply to folders" in result.stderr


def test_output_folder_inside_the_input_folder_is_not_an_input(cli, tmp_path):
    source = tmp_path / "in"
    write_image(source / "a.png", _photo(0, (8, 8)))
    (source / "notes.txt").write_text("x")
    for _ in range(2):  # the second run must not see the first run's outputs as inputs
        cli(
            "batch",
            source,
            source / "x2",
            "-m",
            "bicubic",
            "-s",
            "2",
            "-r",
            "--skip-existing",
            "--pattern",
            "*",
        )
    assert sorted(p.name for p in (source / "x2").iterdir()) == ["a.png"]
