"""The server under hostile and careless use (issue 12, part 5), each case against a live
`srgan serve` subprocess: TCP_NODELAY, memory after rejected uploads, ownerless jobs,
key names, the limit on failed authentication, JSON error bodies everywhere, and a
/metrics that prometheus_client's own parser reads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import struct
import time
import zlib
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from srgan.serve.server import bind
from tests.serve_support import (
    LiveServer,
    metric_samples,
    png_bytes,
    sample,
    smooth_image,
    start_server,
    wait_for_job,
)

MiB = 1024 * 1024
FAST = {"models": ["bicubic"], "default_model": "bicubic"}


# ----------------------------------------------------------------------------- TCP_NODELAY


def test_connections_accepted_on_the_servers_socket_have_tcp_nodelay():
    """uvicorn serves on `bind()`'s socket through asyncio, which sets TCP_NODELAY on an
    accepted connection only when the listening socket says IPPROTO_TCP."""
    seen: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        connected = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                connected.set_result(None)

        server = await loop.create_server(Probe, sock=bind("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.wait_for(connected, 10)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert seen and seen[0] != 0


# ----------------------------------------------------------------------------- memory


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def huge_canvas_png(width: int, height: int) -> bytes:
    """A valid PNG header for width x height with one tiny IDAT: refused for its pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def rejected_uploads(size: int) -> dict[int, bytes]:
    """Three `size`-byte bodies the server refuses, by the status it answers."""
    too_many_pixels = huge_canvas_png(20_000, 20_000)
    return {
        413: too_many_pixels + bytes(size - len(too_many_pixels)),  # bytes after IEND
        415: b"not an image " * (size // 13),
        400: b"\x89PNG\r\n\x1a\n" + b"\x01" * (size - 8),  # the signature, then garbage
    }


def test_rejected_large_uploads_do_not_stay_in_memory(tmp_path):
    server = start_server(tmp_path / "data", {**FAST, "rate_limit": {"per_second": 0}})
    try:
        client = server.client()
        bodies = rejected_uploads(45 * MiB)
        # Warm up first: the model opened (and PyTorch imported) by a real upscale, and
        # the refusals' code paths run once on small bodies.
        photo = {"image": ("p.png", png_bytes(smooth_image(16, 16)))}
        assert client.post("/v1/upscale", files=photo).status_code == 200
        for status, body in rejected_uploads(64 * 1024).items():
            assert client.post("/v1/jobs", files={"image": ("a.png", body)}).status_code == status
        baseline = server.rss_kib()
        above = []
        for index in range(20):
            status = (413, 415, 400)[index % 3]
            route = "/v1/jobs" if index % 2 else "/v1/upscale"
            response = client.post(route, files={"image": ("big.png", bodies[status])})
            assert response.status_code == status, response.text
            above.append((server.rss_kib() - baseline) / 1024)
        # Each body is 45 MiB and none may stay. (Before the fix the tracebacks kept up
        # to about eight of them: 280-380 MiB above the baseline; after it, about 1 MiB.)
        print(f"RSS above baseline after each upload (MiB): {[round(a) for a in above]}")
        assert max(above) < 90, above
        assert above[-1] < 30, above
    finally:
        server.stop()


# ----------------------------------------------------------------------------- ownership


def test_jobs_made_while_keys_were_off_belong_to_no_key(tmp_path, cli):
    data_dir = tmp_path / "data"
    open_server = start_server(data_dir, {**FAST, "require_keys": False})
    try:
        files = {"image": ("p.png", png_bytes(smooth_image(24, 24)))}
        job = open_server.client().post("/v1/jobs", files=files).json()
        assert wait_for_job(open_server.client(), job["id"])["state"] == "done"
    finally:
        open_server.stop()

    keyed = start_server(data_dir, {**FAST, "require_keys": True})
    try:
        key = cli("-q", "serve", "keys", "add", "alice", "--data-dir", data_dir).stdout.strip()
        alice = keyed.client(key)
        for method, route in (
            ("GET", f"/v1/jobs/{job['id']}"),
            ("GET", f"/v1/jobs/{job['id']}/result"),
            ("DELETE", f"/v1/jobs/{job['id']}"),
        ):
            response = alice.request(method, route)
            assert response.status_code == 404, (method, route, response.text)
        with sqlite3.connect(data_dir / "srgan.sqlite3") as db:  # refused, not deleted
            assert db.execute("SELECT key_id FROM jobs WHERE id = ?", (job["id"],)).fetchall() == [
                (None,)
            ]
        own = alice.post("/v1/jobs", files=files).json()  # her own jobs are hers
        assert wait_for_job(alice, own["id"])["state"] == "done"
        assert alice.delete(f"/v1/jobs/{own['id']}").status_code == 204
    finally:
        keyed.stop()


# ----------------------------------------------------------------------------- key names


def test_key_names_are_unique_and_revoke_names_exactly_one_key(tmp_path, cli):
    data = ("--data-dir", tmp_path)
    cli("-q", "serve", "keys", "add", "alice", *data)
    bob_key = cli("-q", "serve", "keys", "add", "bob", *data).stdout.strip()
    bob_id = bob_key.split("_")[1]

    duplicate = cli("serve", "keys", "add", "alice", *data, check=False)
    assert duplicate.returncode == 2
    assert "a key named 'alice' exists already" in duplicate.stderr
    assert len(duplicate.stderr.strip().splitlines()) == 1
    like_an_id = cli("serve", "keys", "add", "0123456789ab", *data, check=False)
    assert like_an_id.returncode == 2 and "looks like a key id" in like_an_id.stderr

    # A database where one key's name is another's id (made before names were checked).
    with sqlite3.connect(tmp_path / "srgan.sqlite3") as db:
        db.execute(
            "INSERT INTO api_keys (id, name, secret_sha256, created_at) VALUES (?, ?, ?, ?)",
            ("aaaaaaaaaaaa", bob_id, "0" * 64, time.time()),
        )
    ambiguous = cli("serve", "keys", "revoke", bob_id, *data, check=False)
    assert ambiguous.returncode == 2
    assert "names more than one key" in ambiguous.stderr and "aaaaaaaaaaaa" in ambiguous.stderr
    unknown = cli("serve", "keys", "revoke", "carol", *data, check=False)
    assert unknown.returncode == 2 and "no key with id or name 'carol'" in unknown.stderr
    assert all(key["revoked_at"] is None for key in listed_keys(cli, data))  # none revoked

    by_name = cli("serve", "keys", "revoke", "alice", *data)
    assert "revoked key" in by_name.stderr and "'alice', matched by name" in by_name.stderr
    by_id = cli("serve", "keys", "revoke", "aaaaaaaaaaaa", *data)
    assert "matched by id" in by_id.stderr
    again = cli("serve", "keys", "revoke", "alice", *data)
    assert "was already revoked" in again.stderr
    revoked = {key["name"] for key in listed_keys(cli, data) if key["revoked_at"]}
    assert revoked == {"alice", bob_id}  # bob himself is untouched


def listed_keys(cli, data: tuple) -> list[dict]:
    return json.loads(cli("serve", "keys", "list", "--json", *data).stdout)


# ----------------------------------------------------------------------------- 401 limit


def client_from(server: LiveServer, address: str, key: str | None) -> httpx.Client:
    """A client whose connections come from `address` (any 127.x.y.z is loopback)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.HTTPTransport(local_address=address)
    client = httpx.Client(base_url=server.url, headers=headers, transport=transport, timeout=30)
    server.clients.append(client)
    return client


def test_failed_authentication_is_rate_limited_per_client_address(tmp_path, cli):
    settings = {
        **FAST,
        "require_keys": True,
        "rate_limit": {"per_second": 0},
        "auth_failure_limit": {"per_second": 0.2, "burst": 3},
        "trusted_proxies": [],  # X-Forwarded-For is not believed
    }
    server = start_server(tmp_path / "data", settings)
    try:
        key = cli("-q", "serve", "keys", "add", "ok", "--data-dir", server.data_dir).stdout
        key = key.strip()
        guesser = client_from(server, "127.0.0.1", "srgan_000000000000_" + "x" * 32)
        assert [guesser.get("/v1/models").status_code for _ in range(3)] == [401] * 3
        blocked = guesser.get("/v1/models", headers={"X-Forwarded-For": "203.0.113.9"})
        assert blocked.status_code == 429, blocked.text
        assert blocked.headers["content-type"] == "application/json"
        assert "failed authentications" in blocked.json()["detail"]
        assert int(blocked.headers["retry-after"]) >= 1
        # Even a good key from that address is refused: a guess would be told apart.
        assert client_from(server, "127.0.0.1", key).get("/v1/models").status_code == 429
        assert guesser.get("/healthz").status_code == 200  # no key needed: not limited
        # Another address is not affected.
        assert client_from(server, "127.0.0.2", key).get("/v1/models").status_code == 200
        time.sleep(float(blocked.headers["retry-after"]) + 0.1)
        assert client_from(server, "127.0.0.1", key).get("/v1/models").status_code == 200
    finally:
        server.stop()


# ----------------------------------------------------------------------------- JSON errors


def raw_exchange(server: LiveServer, data: bytes, then: bytes = b"") -> bytes:
    """Send raw bytes (and `then` a moment later), and read until the server closes
    (or 10 s)."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        if then:
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                sock.sendall(then)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def json_error(answer: bytes) -> tuple[int, str]:
    """(status, detail) of a raw HTTP answer whose body must be a JSON error."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/json", answer[:300]
    return int(lines[0].split()[1]), json.loads(body)["detail"]


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory) -> Iterator[LiveServer]:
    settings = {
        **FAST,
        "require_keys": True,
        "max_body_bytes": 1 * MiB,
        "header_timeout_s": 1.0,
        "rate_limit": {"per_second": 0},
        "auth_failure_limit": {"per_second": 0},
    }
    live = start_server(tmp_path_factory.mktemp("strict") / "data", settings)
    yield live
    live.stop()


def test_a_body_over_the_limit_gets_a_json_413(strict_server, cli):
    key = cli("-q", "serve", "keys", "add", "big", "--data-dir", strict_server.data_dir).stdout
    client = strict_server.client(key.strip())
    oversized = b"\x89PNG\r\n\x1a\n" + bytes(2 * MiB)
    with_length = client.post("/v1/jobs", files={"image": ("big.png", oversized)})
    assert with_length.status_code == 413
    assert with_length.headers["content-type"] == "application/json"
    assert "limit of 1,048,576 bytes" in with_length.json()["detail"]

    def chunks():  # no Content-Length: the limit is found while the form is read
        yield (
            b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n"
        )
        for _ in range(8):
            yield bytes(256 * 1024)
        yield b"\r\n--x--\r\n"

    chunked = client.post(
        "/v1/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert chunked.status_code == 413, chunked.text
    assert chunked.headers["content-type"] == "application/json"
    assert "limit of 1,048,576 bytes" in chunked.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/v1/nowhere", 401),  # a /v1 path needs a key before anything else
        ("POST", "/healthz", 405),
        ("DELETE", "/metrics", 405),
        ("GET", "/static/missing.js", 404),
        ("GET", "/static/%2e%2e/%2e%2e/srgan.sqlite3", 404),
        ("BREW", "/", 405),
    ],
)
def test_routing_errors_are_json(strict_server, method, path, status):
    response = strict_server.client().request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str)


def test_validation_errors_are_one_line_json(strict_server, cli):
    key = cli("-q", "serve", "keys", "add", "v", "--data-dir", strict_server.data_dir).stdout
    client = strict_server.client(key.strip())
    files = {"image": ("p.png", png_bytes(smooth_image(8, 8)))}
    response = client.post("/v1/upscale", files=files, data={"quality": "lots"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("quality: ")
    assert client.get("/v1/jobs/not-a-uuid").json()["detail"].startswith("job_id: ")


def test_what_the_http_layer_answers_itself_is_json(strict_server):
    garbage = raw_exchange(strict_server, b"HELLO THERE\r\n\r\n")
    assert json_error(garbage)[0] == 400
    huge_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    assert json_error(raw_exchange(strict_server, huge_headers))[0] == 431  # in one read
    in_pieces = raw_exchange(strict_server, huge_headers[:66_000], then=huge_headers[66_000:])
    assert json_error(in_pieces)[0] == 400  # the parser's own limit, while incomplete
    # A request head that never ends: cut off after header_timeout_s (1 s here).
    started = time.monotonic()
    slow = raw_exchange(strict_server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    status, detail = json_error(slow)
    assert status == 408 and "did not arrive within 1 s" in detail
    assert time.monotonic() - started < 8
    # A connection that says nothing is closed as quietly.
    assert raw_exchange(strict_server, b"") == b""


# ----------------------------------------------------------------------------- metrics


def test_metrics_parse_with_prometheus_clients_parser(strict_server, tmp_path):
    client = strict_server.client()
    before = metric_samples(client.get("/metrics").text)
    for _ in range(3):
        client.get("/healthz")
    client.request("FROBNICATE", "/healthz")  # any method: counted as "other"
    scrape = client.get("/metrics")
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = metric_samples(scrape.text)
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    counted = sample(after, "srgan_http_requests_total", **healthz)
    assert counted - sample(before, "srgan_http_requests_total", **healthz) == 3
    assert (
        sample(after, "srgan_http_requests_total", route="/healthz", method="other", status="405")
        == 1
    )
    assert not any(labels and ("method", "FROBNICATE") in labels for _, labels in after)
    families = {family.name: family.type for family in text_string_to_metric_families(scrape.text)}
    assert families == {
        "srgan_http_requests": "counter",
        "srgan_http_request_duration_seconds": "histogram",
        "srgan_jobs_finished": "counter",
        "srgan_job_duration_seconds": "histogram",
        "srgan_cache_hits": "counter",
        "srgan_cache_misses": "counter",
        "srgan_workers_busy": "gauge",
        "srgan_jobs": "gauge",
        "srgan_queue_depth": "gauge",
        "srgan_cache_bytes": "gauge",
        "srgan_cache_entries": "gauge",
    }
    assert sample(after, "srgan_jobs", state="queued") == 0

    open_metrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    names = {family.name for family in parse_openmetrics(open_metrics.text)}
    assert {"srgan_http_requests", "srgan_jobs", "srgan_queue_depth"} <= names


def test_metrics_sum_over_processes_in_multiprocess_mode(tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    first = start_server(tmp_path / "a", {**FAST, "require_keys": False}, env=env)
    try:
        second = start_server(tmp_path / "b", {**FAST, "require_keys": False}, env=env)
        try:
            for _ in range(4):
                first.client().get("/healthz")
            second.client().get("/healthz")
            samples = metric_samples(second.client().get("/metrics").text)
            healthz = {"route": "/healthz", "method": "GET", "status": "200"}
            # Both start-up probes (one each), then 4 + 1: every process is counted.
            assert sample(samples, "srgan_http_requests_total", **healthz) == 7
        finally:
            second.stop()
    finally:
        first.stop()
    assert list(folder.glob("*.db"))
