"""Durable jobs: a job survives SIGKILL of the server and a restart; the queue is
bounded; interrupted jobs are retried once; results expire; the cache is an LRU."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from srgan.serve.auth import RateLimiter
from srgan.serve.cache import ResultCache
from srgan.serve.database import Database
from srgan.serve.schemas import UpscaleParams
from srgan.serve.settings import RateLimit
from srgan.serve.store import JobStore
from tests.serve_support import (
    decode,
    metric_samples,
    png_bytes,
    sample,
    smooth_image,
    start_server,
    wait_for_job,
)

# Small tiles make a job take long enough to be caught running (about a second).
SLOW = {"model": "anime-video", "tile": "16", "tile_pad": "4"}
SETTINGS = {
    "models": ["anime-video"],
    "default_model": "anime-video",
    "workers": 1,
    "rate_limit": {"per_second": 0},  # the tests poll fast
}


def states_in_database(data_dir: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(data_dir / "srgan.sqlite3") as db:
        rows = db.execute("SELECT id, state, attempts FROM jobs").fetchall()
    return {job_id: (state, attempts) for job_id, state, attempts in rows}


def test_jobs_survive_a_killed_server(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir, SETTINGS)
    try:
        client = server.client()
        images = [smooth_image(96, 96, seed=seed) for seed in range(3)]
        ids = []
        for pixels in images:
            response = client.post(
                "/v1/jobs", files={"image": ("p.png", png_bytes(pixels))}, data=SLOW
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{ids[0]}").json()["state"] == "queued":
            assert time.monotonic() < deadline, "the first job never started"
            time.sleep(0.02)
    finally:
        server.kill()

    before = states_in_database(data_dir)
    was_running = [job_id for job_id in ids if before[job_id][0] == "running"]
    assert was_running, f"no job was running at the kill: {before}"
    assert before[ids[-1]][0] == "queued"

    restarted = start_server(data_dir, SETTINGS)
    try:
        client = restarted.client()
        for job_id in ids:
            job = wait_for_job(client, job_id)
            assert job["state"] == "done", job["error"]
            result = decode(client.get(job["result_url"]).content)
            assert result.shape == (384, 384, 3)
        for job_id in was_running:  # started again: its second attempt
            assert client.get(f"/v1/jobs/{job_id}").json()["attempts"] == 2
        assert not list((data_dir / "inputs").iterdir())  # inputs go once jobs finish
    finally:
        restarted.stop()


def test_full_queue_503_and_timeouts(tmp_path):
    # 384x384 in 16 px tiles: many seconds of work, well past the limits even on an idle
    # machine. The job limit (1 s) leaves time to fill the queue on a busy one: the
    # images are encoded before, and sent one right after the other.
    limits = {"queue_size": 1, "job_timeout_s": 1.0, "request_timeout_s": 0.3}
    server = start_server(tmp_path / "data", {**SETTINGS, **limits})
    try:
        client = server.client()
        statuses, retry_after, ids = [], [], []
        images = [png_bytes(smooth_image(384, 384, seed=seed)) for seed in range(4)]
        for image in images:
            response = client.post("/v1/jobs", files={"image": ("p.png", image)}, data=SLOW)
            statuses.append(response.status_code)
            if response.status_code == 503:
                retry_after.append(int(response.headers["retry-after"]))
            else:
                ids.append(response.json()["id"])
        assert 202 in statuses and 503 in statuses, statuses
        assert all(seconds >= 1 for seconds in retry_after)
        samples = metric_samples(client.get("/metrics").text)
        refused = {"route": "/v1/jobs", "method": "POST", "status": "503"}
        assert sample(samples, "srgan_http_requests_total", **refused) == statuses.count(503)

        timed_out = wait_for_job(client, ids[0])
        assert timed_out["state"] == "failed"
        assert timed_out["error"] == "timed out after 1 s"

        files = {"image": ("p.png", png_bytes(smooth_image(256, 256, seed=9)))}
        sync = client.post("/v1/upscale", files=files, data=SLOW)
        assert sync.status_code == 504, sync.text
        assert "timed out" in sync.json()["detail"]
    finally:
        server.stop()


# ----------------------------------------------------------------------------- the parts


@pytest.fixture
def store(tmp_path) -> JobStore:
    return JobStore(Database(tmp_path / "db.sqlite3"), tmp_path, result_ttl_s=60)


PARAMS = UpscaleParams(model="bicubic")


def submit(store: JobStore, data: bytes = b"input") -> str:
    return store.create(PARAMS, "0" * 64, None, (4, 4), data, queue_size=10).id


def test_interrupted_jobs_are_retried_once_then_failed_with_a_reason(store):
    job_id = submit(store)
    assert store.claim_next().id == job_id  # attempt 1, then the "server dies"
    assert store.recover(max_attempts=2).requeued == 1
    assert store.get(job_id).state == "queued"
    assert store.claim_next().attempts == 2  # dies again
    recovery = store.recover(max_attempts=2)
    assert (recovery.requeued, recovery.failed) == (0, 1)
    failed = store.get(job_id)
    assert failed.state == "failed"
    assert "stopped while this job was running" in failed.error
    assert not store.input_path(job_id).exists()


def test_finished_jobs_expire_with_their_results(store):
    job_id = submit(store)
    store.claim_next()
    result = store.result_path(job_id, "image/png")
    result.write_bytes(b"png")
    assert store.finish(job_id, "image/png", 3)
    assert store.expire(now=time.time()) == 0
    assert store.expire(now=time.time() + 61) == 1
    assert store.get(job_id) is None and not result.exists()


def test_a_shutdown_gives_the_job_back_without_counting_it(store):
    job_id = submit(store)
    store.claim_next()
    store.requeue(job_id)
    job = store.get(job_id)
    assert (job.state, job.attempts) == ("queued", 0)


def test_orphan_files_are_removed_at_recovery(store):
    (store.inputs / "11111111-1111-1111-1111-111111111111").write_bytes(b"x")
    (store.results / ".partial.part").write_bytes(b"x")
    kept = submit(store)
    store.recover(max_attempts=2)
    assert [p.name for p in store.inputs.iterdir()] == [kept]
    assert not list(store.results.iterdir())


def test_cache_evicts_least_recently_used(tmp_path):
    cache = ResultCache(Database(tmp_path / "db.sqlite3"), tmp_path / "cache", max_bytes=250)
    keys = [f"{index:064x}" for index in range(3)]
    cache.put(keys[0], b"a" * 100, "image/png")
    cache.put(keys[1], b"b" * 100, "image/png")
    time.sleep(0.01)
    assert cache.get(keys[0]) is not None  # now the most recent
    cache.put(keys[2], b"c" * 100, "image/png")  # over 250: the LRU entry goes
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]).path.read_bytes() == b"a" * 100
    assert cache.total_bytes() == 200
    cache.put("f" * 64, b"x" * 300, "image/png")  # bigger than the cap: not kept
    assert cache.get("f" * 64) is None


def test_token_bucket():
    limiter = RateLimiter(RateLimit(per_second=10, burst=3))
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    wait = limiter.take("a")
    assert wait is not None and 0 < wait <= 0.1
    assert limiter.take("b") is None
    time.sleep(0.11)
    assert limiter.take("a") is None


def test_job_results_are_byte_identical_to_the_synchronous_ones(tmp_path):
    server = start_server(tmp_path / "data", SETTINGS)
    try:
        client = server.client()
        files = {"image": ("p.png", png_bytes(smooth_image(40, 40, seed=7)))}
        sync = client.post("/v1/upscale", files=files, data={"model": "anime-video"})
        job = client.post("/v1/jobs", files=files, data={"model": "anime-video"}).json()
        done = wait_for_job(client, job["id"])
        assert client.get(done["result_url"]).content == sync.content  # from the cache
        assert np.asarray(decode(sync.content)).shape == (160, 160, 3)
    finally:
        server.stop()


def test_the_cli_loads_without_the_server_or_torch():
    code = (
        "import sys; from srgan.cli.main import app; "
        "heavy = [m for m in ('fastapi', 'uvicorn', 'torch') if m in sys.modules]; "
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
