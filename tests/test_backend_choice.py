"""`--backend auto`: the choice follows a timing table; the cache is keyed and invalidated
by everything that changes the answer; concurrent processes measure once."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from dataclasses import asdict, replace

import pytest

from srgan.errors import BadInputError, SrganError
from srgan.inference.backends import select_backend, with_known_descriptor
from srgan.inference.backends.choice import (
    FORMAT_VERSION,
    ChoiceCache,
    ChoiceKey,
    Probe,
    choose,
    fastest,
)
from srgan.zoo.sources import resolve_source

INTEL_AVX512 = {"onnxruntime": 0.030, "ncnn": 0.041, "torch": 0.120}
AMD_AVX2 = {"onnxruntime": 0.085, "ncnn": 0.070, "torch": 0.156}


def key(**changes) -> ChoiceKey:
    base = ChoiceKey(
        model="anime-video-abc123",
        name="anime-video",
        precision="fp32",
        device="cpu",
        threads=2,
        cpu="Intel(R) Xeon(R) Processor",
        cpu_signature="avx512",
        versions=(("onnxruntime", "1.31.1"), ("ncnn", "1.0.2026"), ("torch", "2.13.0")),
    )
    return replace(base, **changes)


class FakeMeasure:
    """A timing table standing in for the probe; counts how often it is asked."""

    def __init__(self, table: dict[str, float], errors: dict[str, str] | None = None) -> None:
        self.table, self.errors, self.calls = table, errors or {}, 0

    def __call__(self, names):
        self.calls += 1
        times = {name: self.table[name] for name in names if name in self.table}
        return Probe(times, 64, 0.2, dict(self.errors))


@pytest.fixture
def cache(tmp_path):
    return ChoiceCache(tmp_path)


def test_fastest_follows_the_table_not_an_order():
    assert fastest(INTEL_AVX512) == "onnxruntime"
    assert fastest(AMD_AVX2) == "ncnn"
    assert fastest({"torch": 0.01, "ncnn": 0.02}) == "torch"
    assert fastest({"ncnn": 0.05, "onnxruntime": 0.05}) == "ncnn"  # ties: by name
    with pytest.raises(ValueError):
        fastest({})


def test_each_cpu_gets_its_own_measured_choice(cache):
    intel, amd = FakeMeasure(INTEL_AVX512), FakeMeasure(AMD_AVX2)
    on_intel = choose(key(cpu_signature="intel"), intel, cache)
    on_amd = choose(key(cpu_signature="amd", cpu="AMD EPYC"), amd, cache)
    assert (on_intel.backend, on_amd.backend) == ("onnxruntime", "ncnn")
    assert not on_intel.from_cache and "measured now" in on_intel.explain()
    # later runs read the file: no measurement, same answer, with the times behind it
    fresh = ChoiceCache(cache.path.parent)
    again = choose(key(cpu_signature="amd", cpu="AMD EPYC"), FakeMeasure({}), fresh)
    assert again.backend == "ncnn" and again.from_cache and again.probe.times == AMD_AVX2
    assert "cached" in again.explain() and "onnxruntime 85 ms" in again.explain()
    assert (intel.calls, amd.calls) == (1, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"threads": 1},
        {"model": "anime-video-def456"},  # other weights
        {"precision": "int8"},
        {"cpu_signature": "avx2"},
        {"versions": (("onnxruntime", "1.32.0"), ("ncnn", "1.0.2026"), ("torch", "2.13.0"))},
        {"versions": (("onnxruntime", "1.31.1"), ("torch", "2.13.0"))},  # ncnn uninstalled
    ],
)
def test_anything_that_changes_the_answer_measures_again(cache, change):
    first = FakeMeasure(INTEL_AVX512)
    choose(key(), first, cache)
    second = FakeMeasure(AMD_AVX2)
    changed = key(**change)
    expected = fastest({n: AMD_AVX2[n] for n in changed.backends})
    assert choose(changed, second, cache).backend == expected
    assert (first.calls, second.calls) == (1, 1)
    assert choose(key(), FakeMeasure({}), cache).backend == "onnxruntime"  # still known


def test_new_versions_replace_the_stale_entry(cache):
    choose(key(), FakeMeasure(INTEL_AVX512), cache)
    upgraded = key(versions=(("onnxruntime", "2.0"), ("ncnn", "1.0.2026"), ("torch", "2.13.0")))
    choose(upgraded, FakeMeasure(AMD_AVX2), cache)
    entries = cache.entries()
    assert [e.key for e in entries] == [upgraded]  # same slot: the old versions' entry is gone


def test_recalibrate_measures_again_and_replaces(cache):
    choose(key(), FakeMeasure(INTEL_AVX512), cache)
    remeasured = FakeMeasure(AMD_AVX2)
    assert choose(key(), remeasured, cache, recalibrate=True).backend == "ncnn"
    assert remeasured.calls == 1
    assert choose(key(), FakeMeasure({}), ChoiceCache(cache.path.parent)).backend == "ncnn"


def test_a_choice_measured_on_a_busy_machine_is_measured_again_when_quiet(cache):
    busy, quiet = (lambda: 4.0), (lambda: 0.2)
    first = FakeMeasure(INTEL_AVX512)
    measured = choose(key(), first, cache, load=busy)
    assert measured.measured_busy and "busy machine" in measured.explain()
    assert choose(key(), FakeMeasure({}), cache, load=busy).from_cache  # still busy: kept
    again = FakeMeasure(AMD_AVX2)
    remeasured = choose(key(), again, cache, load=quiet)
    assert remeasured.backend == "ncnn" and not remeasured.measured_busy and again.calls == 1
    assert choose(key(), FakeMeasure({}), cache, load=quiet).backend == "ncnn"  # final


def test_failing_backends_are_skipped_and_reported(cache):
    measure = FakeMeasure({"torch": 0.2}, errors={"onnxruntime": "RuntimeError: boom"})
    choice = choose(key(), measure, cache)
    assert (
        choice.backend == "torch" and "onnxruntime failed: RuntimeError: boom" in choice.explain()
    )
    with pytest.raises(SrganError, match="no backend could run"):
        choose(key(threads=7), FakeMeasure({}, errors={"ncnn": "x"}), cache)


def test_a_damaged_or_foreign_cache_file_counts_as_empty(cache):
    damaged = ("{not json", json.dumps([1, 2]), json.dumps({"format": 99, "choices": {}}))
    for threads, text in enumerate(damaged, start=1):
        cache.path.write_text(text)
        measure = FakeMeasure(INTEL_AVX512)
        assert choose(key(threads=threads), measure, cache).backend == "onnxruntime"
        assert measure.calls == 1 and json.loads(cache.path.read_text())["format"] == FORMAT_VERSION
    # an entry with wrong types is ignored, the rest of the file still counts
    choose(key(), FakeMeasure(INTEL_AVX512), cache)
    document = json.loads(cache.path.read_text())
    entry = next(iter(document["choices"].values()))
    document["choices"]["bogus"] = {**entry, "times": "fast"}
    cache.path.write_text(json.dumps(document))
    assert [c.backend for c in cache.entries()] == ["onnxruntime"]


def test_an_unwritable_cache_still_measures_once_per_process(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the folder should be: nothing can be written
    cache = ChoiceCache(blocked / "srgan")
    measure = FakeMeasure(AMD_AVX2)
    assert choose(key(model="unwritable"), measure, cache).backend == "ncnn"
    assert choose(key(model="unwritable"), measure, cache).backend == "ncnn"
    assert measure.calls == 1


def test_concurrent_processes_measure_once(tmp_path):
    """Four processes start at once on an empty cache: one measures (slowly), the other
    three wait on the lock and read its result."""
    script = textwrap.dedent(
        f"""
        import json, time
        from pathlib import Path
        from srgan.inference.backends.choice import ChoiceCache, ChoiceKey, Probe, choose
        data = json.loads(Path({str(tmp_path / "key.json")!r}).read_text())
        key = ChoiceKey(**{{**data, "versions": tuple(map(tuple, data["versions"]))}})
        log = Path({str(tmp_path / "measured.log")!r})

        def measure(names):
            with log.open("a") as stream:
                stream.write("measured\\n")
            time.sleep(1.0)
            return Probe({{"ncnn": 0.07, "onnxruntime": 0.08, "torch": 0.2}}, 64, 1.0)

        choice = choose(key, measure, ChoiceCache(Path({str(tmp_path / "cache")!r})))
        print(choice.backend, choice.from_cache)
        """
    )
    (tmp_path / "key.json").write_text(json.dumps(asdict(key())))
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    answers = [p.communicate(timeout=120)[0].split() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert (tmp_path / "measured.log").read_text().count("measured") == 1
    assert sorted(a[0] for a in answers) == ["ncnn"] * 4
    assert sorted(a[1] for a in answers) == ["False", "True", "True", "True"]


def test_selection_uses_the_table_for_a_real_model():
    source = with_known_descriptor(resolve_source("anime-video"))
    for table in (INTEL_AVX512, AMD_AVX2):
        measure = FakeMeasure(table)
        threads = 100 + len(table) + int(table["ncnn"] * 1000)  # a slot of its own
        chosen = select_backend(source, threads=threads, measure=measure, recalibrate=True)
        installed = set(chosen.choice.key.backends) if chosen.choice else set()
        assert chosen.backend == fastest({n: t for n, t in table.items() if n in installed})
        assert measure.calls == 1


def test_one_candidate_needs_no_measurement_and_forcing_is_checked(monkeypatch, tmp_path):
    source = with_known_descriptor(resolve_source("anime-video"))
    # the fake timings below must not become the choices later tests read
    monkeypatch.setenv("SRGAN_CACHE", str(tmp_path))
    never = FakeMeasure({})
    assert select_backend(source, precision="bf16", measure=never).backend == "torch"
    half = FakeMeasure({"ncnn": 0.04, "torch": 3.0})  # fp16 on the CPU: ncnn's fp16 storage too
    chosen = select_backend(source, precision="fp16", measure=half, recalibrate=True)
    assert chosen.backend == ("ncnn" if importlib.util.find_spec("ncnn") else "torch")
    assert select_backend(source, device="cuda", measure=never).backend == "torch"
    assert never.calls == 0
    int8 = FakeMeasure({"onnxruntime": 0.05, "ncnn": 0.04, "torch": 0.01})
    chosen = select_backend(source, precision="int8", measure=int8, recalibrate=True)
    assert chosen.choice is not None and "torch" not in chosen.choice.key.backends
    assert chosen.backend == ("ncnn" if "ncnn" in chosen.choice.key.backends else "onnxruntime")
    assert select_backend(source, backend="ncnn", measure=never).reason == "forced with --backend"
    for backend, precision, message in (
        ("ncnn", "bf16", "ncnn runs fp32, fp16 and int8"),
        ("torch", "int8", "runs on onnxruntime"),
        ("onnxruntime", "bf16", "onnxruntime runs fp32 and int8"),
        ("tpu", "fp32", "--backend 'tpu'"),
    ):
        with pytest.raises(BadInputError, match=message):
            select_backend(source, precision=precision, backend=backend, measure=never)
    bicubic = with_known_descriptor(resolve_source("bicubic"))
    assert select_backend(bicubic, measure=never).backend == "torch"
    with pytest.raises(BadInputError, match="cannot be exported"):
        select_backend(bicubic, backend="onnxruntime", measure=never)


def test_the_larger_tile_decides_between_close_backends(cache):
    """ncnn leads on the small probe, ONNX Runtime on the tile of twice the side: the
    larger tile decides, and the cache keeps both tables."""
    probe = Probe(
        {"ncnn": 0.036, "onnxruntime": 0.042, "torch": 0.052},
        112,
        0.6,
        large_times={"ncnn": 0.140, "onnxruntime": 0.121, "torch": 0.190},
        large_side=224,
    )
    choice = choose(key(), lambda names: probe, cache)
    assert choice.backend == "onnxruntime" and "decided on a 224x224 tile" in choice.explain()
    assert "against ncnn 36 ms, torch 52 ms;" in choice.explain()
    again = choose(key(), FakeMeasure({}), ChoiceCache(cache.path.parent))
    assert again.from_cache and again.backend == "onnxruntime"
    assert again.probe.large_times == probe.large_times and again.probe.large_side == 224


class SleepingRunner:
    """A backend whose run costs `fixed` seconds plus `per_pixel` per input pixel."""

    def __init__(self, fixed: float, per_pixel: float) -> None:
        self.fixed, self.per_pixel = fixed, per_pixel

    def __call__(self, tile):
        import time

        time.sleep(self.fixed + self.per_pixel * tile.shape[-1] * tile.shape[-2])
        return tile


def test_measure_times_the_finalists_on_a_tile_of_twice_the_side():
    """A backend with a fixed cost per run loses on the small probe and wins on the
    larger tile; one far behind is not timed again."""
    from types import SimpleNamespace

    from srgan.inference.backends import probe

    costs = {  # at the 32 px probe: 50, 56 and 100 ms; at 64 px: 62, 57 (and 131) ms
        "lean": (0.046, 4e-6),
        "fixed": (0.055, 5e-7),
        "slow": (0.09, 1e-5),
    }
    backends = [SimpleNamespace(name=name) for name in costs]
    measured = probe.measure(
        backends,
        prepare=lambda backend: backend.name,
        make_runner=lambda backend, model: SleepingRunner(*costs[model]),
        channels=3,
    )
    assert measured.side == 32 and measured.large_side == 64
    assert set(measured.times) == set(costs) and set(measured.large_times) == {"lean", "fixed"}
    assert measured.times["lean"] < measured.times["fixed"]
    assert measured.winner() == "fixed"
