"""A real `srgan serve` in a subprocess on a free loopback port, for the serve tests."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

_READY = re.compile(r"serving on (http://\S+)")


@dataclass
class LiveServer:
    process: subprocess.Popen
    url: str
    data_dir: Path
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=60)
        self.clients.append(client)
        return client

    def rss_kib(self, field_name: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field_name} for {self.process.pid}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self._close_clients()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        self._close_clients()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def _close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()


def start_server(
    data_dir: Path,
    settings: dict | None = None,
    *args: str,
    timeout_s: float = 60,
    env: dict[str, str] | None = None,
) -> LiveServer:
    """`python -m srgan serve --port 0` with `settings` as a JSON config file; returns once
    /healthz answers. The model cache is the test session's ($SRGAN_CACHE); `env` adds
    environment variables."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir.parent / f"{data_dir.name}-settings.json"
    config.write_text(json.dumps({"port": 0, "data_dir": str(data_dir), **(settings or {})}))
    log = data_dir.parent / f"{data_dir.name}-server.log"
    start = log.stat().st_size if log.exists() else 0  # a restart appends to the same log
    with open(log, "ab") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "srgan", "serve", "--config", str(config), *args],
            stdout=stream,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    try:
        return _wait_until_ready(process, log, start, data_dir, timeout_s)
    except BaseException:
        process.kill()  # never leave a server behind a failed start
        process.wait(10)
        raise


def _wait_until_ready(
    process: subprocess.Popen, log: Path, start: int, data_dir: Path, timeout_s: float
) -> LiveServer:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"srgan serve exited ({process.returncode}):\n{log.read_text()}")
        match = _READY.search(log.read_text()[start:])
        if match:
            url = match.group(1)
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return LiveServer(process, url, data_dir, log)
        time.sleep(0.1)
    raise RuntimeError(f"srgan serve did not start in {timeout_s} s:\n{log.read_text()}")


def wait_for_job(client: httpx.Client, job_id: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    job = None
    while time.monotonic() < deadline:
        response = client.get(f"/v1/jobs/{job_id}")
        if response.status_code == 429:
            time.sleep(float(response.headers["retry-after"]))
            continue
        job = response.raise_for_status().json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished in {timeout_s} s: {job}")


def metric_samples(text: str) -> dict[tuple[str, frozenset], float]:
    """A scrape parsed by prometheus_client's own parser: (sample name, its labels) ->
    value. The parser raises on text that is not the exposition format."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """The value of one sample of `metric_samples` (0 when it is absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_image(height: int, width: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (height, width, channels) if channels > 1 else (height, width)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth gradients with a few edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [
        np.sin(6 * x + rng.uniform(0, 6)) * np.cos(5 * y + rng.uniform(0, 6)) for _ in "rgb"
    ]
    pixels = (np.stack(channels, axis=-1) + 1) * 127.5
    pixels[height // 3 : height // 2, width // 4 : width // 2] = rng.uniform(0, 255, 3)
    return pixels.clip(0, 255).astype(np.uint8)


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))
