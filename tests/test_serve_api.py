"""The web API against a live `srgan serve` subprocess with API keys on: synchronous
upscales, jobs, keys, rate limits, body/pixel limits, type sniffing, metrics, CORS."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srgan
from tests.serve_support import (
    LiveServer,
    decode,
    metric_samples,
    noise_image,
    png_bytes,
    sample,
    smooth_image,
    start_server,
    wait_for_job,
)

SETTINGS = {
    "require_keys": True,
    "models": ["anime-video", "bicubic"],
    "default_model": "anime-video",
    "sync_max_pixels": 96 * 96,
    "max_pixels": 1024 * 1024,
    "max_body_bytes": 4 * 1024 * 1024,
    "rate_limit": {"per_second": 5, "burst": 15},
    "cors_origins": ["https://app.example"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> LiveServer:
    live = start_server(tmp_path_factory.mktemp("serve-api") / "data", SETTINGS)
    yield live
    live.stop()


@pytest.fixture
def new_key(server, cli):
    """`srgan serve keys add NAME` on the server's data folder; returns the key text."""
    count = 0

    def make(name: str | None = None) -> str:
        nonlocal count
        count += 1
        label = name or f"test-{time.monotonic_ns()}-{count}"
        result = cli("-q", "serve", "keys", "add", label, "--data-dir", server.data_dir)
        return result.stdout.strip()

    return make


def upload(pixels: np.ndarray) -> dict:
    return {"image": ("photo.png", png_bytes(pixels), "image/png")}


def test_sync_upscale_matches_the_python_api(server, new_key):
    client = server.client(new_key())
    pixels = smooth_image(30, 40)

    response = client.post("/v1/upscale", files=upload(pixels), data={"model": "anime-video"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    served = decode(response.content)
    expected = srgan.upscale(pixels, "anime-video", device="cpu")
    assert served.shape == expected.shape == (120, 160, 3)
    # The server runs ONNX Runtime, the API here PyTorch: equal within one level.
    assert np.abs(served.astype(int) - expected.astype(int)).max() <= 1

    bicubic = client.post(
        "/v1/upscale", files=upload(pixels), data={"model": "bicubic", "outscale": "2.5"}
    )
    assert bicubic.status_code == 200, bicubic.text
    expected_bicubic = srgan.upscale(pixels, "bicubic", outscale=2.5, device="cpu")
    np.testing.assert_array_equal(decode(bicubic.content), expected_bicubic)

    again = client.post("/v1/upscale", files=upload(pixels), data={"model": "anime-video"})
    assert again.headers["x-srgan-cache"] == "hit"
    assert again.content == response.content


def test_output_formats_and_alpha(server, new_key):
    client = server.client(new_key())
    rgba = noise_image(20, 24, seed=3, channels=4)
    webp = client.post(
        "/v1/upscale",
        files=upload(rgba),
        data={"model": "bicubic", "format": "webp", "quality": "100"},
    )
    assert webp.status_code == 200, webp.text
    assert webp.headers["content-type"] == "image/webp"
    assert decode(webp.content).shape == (80, 96, 4)
    jpeg = client.post("/v1/upscale", files=upload(rgba), data={"format": "jpeg"})
    assert jpeg.status_code == 200 and decode(jpeg.content).shape == (80, 96, 3)


def test_job_lifecycle(server, new_key):
    client = server.client(new_key())
    pixels = smooth_image(120, 100, seed=1)  # more than the synchronous limit

    too_big = client.post("/v1/upscale", files=upload(pixels))
    assert too_big.status_code == 413
    assert "/v1/jobs" in too_big.json()["detail"]

    submitted = client.post("/v1/jobs", files=upload(pixels), data={"outscale": "2"})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert submitted.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] in ("queued", "running", "done")
    assert job["input"] == {"width": 100, "height": 120}

    finished = wait_for_job(client, job["id"])
    assert finished["state"] == "done", finished["error"]
    assert finished["progress"] == 1 and finished["expires_at"] > time.time()
    result = client.get(finished["result_url"])
    assert result.status_code == 200
    assert decode(result.content).shape == (240, 200, 3)

    stranger = server.client(new_key())
    assert stranger.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert stranger.delete(f"/v1/jobs/{job['id']}").status_code == 404

    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert client.get(f"/v1/jobs/{job['id']}/result").status_code == 404
    assert not list((server.data_dir / "results").iterdir())
    assert client.get("/v1/jobs/not-a-uuid").status_code == 422


def test_keys_are_required_and_revocation_works(server, new_key, cli):
    anonymous = server.client()
    missing = anonymous.get("/v1/models")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert server.client("srgan_000000000000_" + "x" * 32).get("/v1/models").status_code == 401
    big = {"image": ("big.png", b"\x89PNG\r\n\x1a\n" + bytes(3 * 1024 * 1024), "image/png")}
    assert anonymous.post("/v1/jobs", files=big).status_code == 401  # (from the headers)

    key = new_key("revoke-me")
    client = server.client(key)
    models = client.get("/v1/models")
    assert models.status_code == 200
    assert [m["name"] for m in models.json()] == ["bicubic", "anime-video"]
    by_header = server.client().get("/v1/models", headers={"X-API-Key": key})
    assert by_header.status_code == 200

    listed = cli("serve", "keys", "list", "--json", "--data-dir", server.data_dir).stdout
    assert "revoke-me" in listed and key.split("_", 2)[2] not in listed  # the secret is not stored
    cli("-q", "serve", "keys", "revoke", "revoke-me", "--data-dir", server.data_dir)
    revoked = client.get("/v1/models")
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]


def test_a_flood_is_rate_limited_with_retry_after(server, new_key):
    client = server.client(new_key())
    statuses = []
    for _ in range(40):
        response = client.get("/v1/models")
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
    assert statuses[:15] == [200] * 15  # the burst
    assert 429 in statuses
    other = server.client(new_key())  # limits are per key
    assert other.get("/v1/models").status_code == 200


def bomb_png(width: int, height: int) -> bytes:
    """A valid gray PNG of zeros: ~100 KB for 10000 x 10000 pixels (100 MB decoded)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    compressed = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", compressed)
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_from_its_header(server, new_key):
    client = server.client(new_key())
    bomb = bomb_png(10_000, 10_000)
    assert len(bomb) < 200_000
    peak_before = server.rss_kib("VmHWM")
    for route in ("/v1/upscale", "/v1/jobs"):
        response = client.post(route, files={"image": ("bomb.png", bomb, "image/png")})
        assert response.status_code == 413, response.text
        assert "10000x10000" in response.json()["detail"]
    # Decoding it would need 100 MB; the server's peak memory did not move that much.
    assert server.rss_kib("VmHWM") - peak_before < 50 * 1024


def test_non_images_are_refused(server, new_key):
    client = server.client(new_key())
    text = client.post("/v1/upscale", files={"image": ("photo.png", b"hello, world\n" * 10)})
    assert text.status_code == 415
    assert "not an image" in text.json()["detail"]
    truncated = png_bytes(noise_image(20, 20))[:40]
    damaged = client.post("/v1/jobs", files={"image": ("a.png", truncated, "image/png")})
    assert damaged.status_code == 400
    no_file = client.post("/v1/upscale", data={"model": "bicubic"})
    assert no_file.status_code == 422
    unknown_model = client.post("/v1/upscale", files=upload(noise_image(8, 8)), data={"model": "x"})
    assert unknown_model.status_code == 422


def test_request_body_limit(server, new_key):
    client = server.client(new_key())
    oversized = b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024)
    response = client.post("/v1/jobs", files={"image": ("big.png", oversized, "image/png")})
    assert response.status_code == 413


def test_health_metrics_docs_and_cors(server, new_key):
    anonymous = server.client()
    health = anonymous.get("/healthz").json()
    assert health["status"] == "ok" and health["keys_required"] is True
    assert anonymous.get("/openapi.json").json()["paths"].keys() >= {
        "/v1/upscale",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/result",
        "/v1/models",
    }
    assert anonymous.get("/docs").status_code == 200

    metrics = anonymous.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = metric_samples(metrics.text)
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert sample(samples, "srgan_http_requests_total", **healthz) >= 1
    assert sample(
        samples, "srgan_http_request_duration_seconds_bucket", route="/healthz", le="+Inf"
    ) == sample(samples, "srgan_http_request_duration_seconds_count", route="/healthz")
    assert ("srgan_jobs", frozenset({("state", "queued")})) in samples
    assert ("srgan_queue_depth", frozenset()) in samples

    allowed = anonymous.options(
        "/v1/jobs",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = anonymous.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers

    page = anonymous.get("/")
    assert page.status_code == 200 and "content-security-policy" in page.headers
    assert anonymous.get("/static/app.js").status_code == 200


def documented_examples() -> dict[str, tuple[str, str]]:
    """The blocks of docs/SERVING.md marked `<!-- tested: NAME -->`: name -> (language, code)."""
    text = (Path(__file__).parents[1] / "docs" / "SERVING.md").read_text()
    pattern = re.compile(r"<!-- tested: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.DOTALL)
    return {name: (language, code) for name, language, code in pattern.findall(text)}


def test_the_documented_client_examples_work(server, new_key, tmp_path):
    examples = documented_examples()
    assert set(examples) == {"curl-upscale", "curl-job", "python-httpx"}
    (tmp_path / "photo.png").write_bytes(png_bytes(smooth_image(24, 32, seed=11)))
    env = {**os.environ, "SRGAN_URL": server.url, "SRGAN_API_KEY": new_key()}
    for name, (language, code) in examples.items():
        if language == "bash" and shutil.which("curl") is None:
            pytest.skip("curl is not installed")
        command = (
            ["bash", "-euo", "pipefail", "-c", code]
            if language == "bash"
            else [
                sys.executable,
                "-c",
                code,
            ]
        )
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{name}:\n{done.stdout}\n{done.stderr}"
    sizes = {
        name: Image.open(tmp_path / name).size
        for name in ("photo_x2.png", "photo_x4.png", "photo_x4_now.png", "photo_x3.png")
    }
    assert sizes == {
        "photo_x2.png": (64, 48),
        "photo_x4.png": (128, 96),
        "photo_x4_now.png": (128, 96),
        "photo_x3.png": (96, 72),
    }
