"""The folder pipeline: reading and writing overlap the compute, memory stays bounded,
failures stay per file, Ctrl-C finishes what is computing."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from srgan.imaging import Image, ImageMeta, read_image, write_image
from srgan.inference.pipeline import Stages, Timings, run_pipeline

WAIT_S = 20  # generous: only a missing overlap makes a wait run out


def pairs(tmp_path: Path, count: int) -> list[tuple[Path, Path]]:
    return [(tmp_path / f"in{i}", tmp_path / f"out{i}") for i in range(count)]


def test_next_read_and_previous_write_happen_while_computing(tmp_path):
    """compute(i) returns only once read(i + 1) has started and write(i - 1) has run: a
    pipeline that did one thing at a time would wait here forever."""
    count = 5
    read_started = [threading.Event() for _ in range(count)]
    written = [threading.Event() for _ in range(count)]

    def read(source: Path) -> int:
        index = int(source.name[2:])
        read_started[index].set()
        return index

    def compute(index: int) -> int:
        if index + 1 < count:
            assert read_started[index + 1].wait(WAIT_S), f"read {index + 1} not overlapped"
        if index > 0:
            assert written[index - 1].wait(WAIT_S), f"write {index - 1} not overlapped"
        return index

    def write(index: int, target: Path) -> None:
        target.write_text(str(index))
        written[index].set()

    done = run_pipeline(pairs(tmp_path, count), Stages(read, compute, write))
    assert sorted(f.index for f in done) == list(range(count))
    assert all(f.error is None for f in done)
    assert [(tmp_path / f"out{i}").read_text() for i in range(count)] == [
        str(i) for i in range(count)
    ]


@pytest.mark.parametrize("workers", [1, 3])
def test_memory_is_bounded_by_the_workers_not_the_files(tmp_path, workers):
    alive, peak, lock = [0], [0], threading.Lock()
    release = threading.Semaphore(0)

    def read(source: Path) -> str:
        with lock:
            alive[0] += 1
            peak[0] = max(peak[0], alive[0])
        return source.name

    def compute(name: str) -> str:
        release.acquire(timeout=0.05)  # slow compute: the reader runs ahead if it can
        return name

    def write(name: str, target: Path) -> None:
        with lock:
            alive[0] -= 1

    done = run_pipeline(pairs(tmp_path, 40), Stages(read, compute, write), workers, queued=1)
    assert len(done) == 40
    # reading + queued + computing + waiting for the writer + writing
    assert peak[0] <= 1 + 1 + workers + 1 + 1


def test_a_failure_in_any_stage_is_that_files_outcome(tmp_path):
    def read(source: Path) -> str:
        if source.name == "in1":
            raise ValueError("unreadable")
        return source.name

    def compute(name: str) -> str:
        if name == "in2":
            raise MemoryError
        return name

    def write(name: str, target: Path) -> None:
        if name == "in3":
            raise OSError("disk full")
        target.write_text(name)

    done = {
        f.index: f.error for f in run_pipeline(pairs(tmp_path, 5), Stages(read, compute, write))
    }
    assert isinstance(done[1], ValueError) and isinstance(done[2], MemoryError)
    assert isinstance(done[3], OSError) and done[0] is None and done[4] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out0", "out4"]


def test_interrupt_drops_the_queue_and_writes_what_was_computed(tmp_path):
    computing = threading.Event()

    def read(source: Path) -> str:
        return source.name

    def compute(name: str) -> str:
        computing.set()
        return name

    def write(name: str, target: Path) -> None:
        target.write_text(name)

    def interrupt(_finished) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(pairs(tmp_path, 30), Stages(read, compute, write), on_finished=interrupt)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert 1 <= len(written) < 30  # the queue was dropped
    assert all((tmp_path / name).read_text() == f"in{name[3:]}" for name in written)
    assert threading.active_count() < 5  # no stage thread left behind


def test_timings_add_up_across_threads():
    timings = Timings()

    def work() -> None:
        for _ in range(100):
            timings.add("compute", 0.01)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert timings.seconds["compute"] == pytest.approx(4.0)
    assert "compute 4.00 s" in timings.describe()


def test_folder_upscale_through_the_pipeline_matches_single_files(cli, tmp_path):
    folder = tmp_path / "in"
    rng = np.random.default_rng(3)
    for index in range(4):
        pixels = rng.integers(0, 256, (12 + index, 10, 3), dtype=np.uint8)
        write_image(folder / f"{index}.png", Image(pixels, ImageMeta()))
    cli("-q", "upscale", folder, tmp_path / "out", "-m", "bicubic")
    for index in range(4):
        cli("-q", "upscale", folder / f"{index}.png", tmp_path / f"{index}.png", "-m", "bicubic")
        single = read_image(tmp_path / f"{index}.png").pixels
        assert np.array_equal(read_image(tmp_path / "out" / f"{index}.png").pixels, single)


def test_a_single_image_is_encoded_band_by_band_while_the_next_band_computes(tmp_path):
    """The writer holds band i until band i + 1 has been made: a stream made only when
    the writer asks for the next band would wait here forever."""
    from srgan.imaging.io import write_rows
    from srgan.imaging.rows import RowStream
    from srgan.inference.pipeline import prefetched

    count = 4
    made = [threading.Event() for _ in range(count)]

    def bands():
        for index in range(count):
            made[index].set()
            yield np.full((1, 4, 3), index, np.uint8)

    def encoder_view(stream: RowStream):
        for index, block in enumerate(stream):
            if index + 1 < count:
                assert made[index + 1].wait(WAIT_S), f"band {index + 1} not computed ahead"
            yield block

    timings = Timings()
    ahead = prefetched(RowStream(count, 4, 3, np.dtype(np.uint8), bands()), timings)
    rows = ahead.rows
    checked = RowStream(rows.height, rows.width, rows.channels, rows.dtype, encoder_view(rows))
    write_rows(tmp_path / "out.png", checked, ImageMeta())
    pixels = read_image(tmp_path / "out.png").pixels
    assert [int(pixels[i, 0, 0]) for i in range(count)] == list(range(count))
    assert timings.seconds["compute"] >= 0 and ahead.waited >= 0


def test_band_errors_reach_the_writer_and_an_abandoned_stream_stops(tmp_path):
    from srgan.imaging.rows import RowStream
    from srgan.inference.pipeline import prefetched

    def failing():
        yield np.zeros((1, 2, 1), np.uint8)
        raise RuntimeError("band 2 failed")

    stream = prefetched(RowStream(3, 2, 1, np.dtype(np.uint8), failing())).rows
    with pytest.raises(RuntimeError, match="band 2 failed"):
        list(stream)

    produced = []

    def endless():
        while True:
            produced.append(1)
            yield np.zeros((1, 2, 1), np.uint8)

    blocks = iter(prefetched(RowStream(10**9, 2, 1, np.dtype(np.uint8), endless())).rows)
    next(blocks)
    before = threading.active_count()
    blocks.close()  # the writer gave up: the band thread ends
    assert threading.active_count() < before
    assert len(produced) < 10
