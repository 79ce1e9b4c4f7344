"""The hostile-request corpus (tests/serve_fuzz.py, about 220 cases: bad multipart,
huge and broken heads, wrong option types, decompression bombs, path tricks, bad and
guessed keys, another key's job, oversized and smuggled bodies, slowloris heads and
bodies) against a live server: every case must come out as a correct server answers,
and the server must still be running."""

from __future__ import annotations

from tests.serve_fuzz import FUZZ_SETTINGS, GOOD, prepare, run_corpus, table
from tests.serve_support import start_server


def test_every_hostile_request_gets_a_correct_answer(tmp_path):
    server = start_server(tmp_path / "data", FUZZ_SETTINGS)
    try:
        keys, job = prepare(server.url, server.data_dir)
        results = run_corpus(server.url, keys, job)
        assert server.process.poll() is None, "the server died"
        assert server.client().get("/healthz").status_code == 200
    finally:
        server.stop()
    assert len(results) > 200
    assert all(result.outcome in GOOD for result in results), table(results)
