"""Load on a live `srgan serve`: requests/s, latency, server errors and memory.

Starts `python -m srgan serve` as a subprocess on a free loopback port (a fresh data
folder, keys and rate limits off, the model cache as the user has it), warms it up, then
runs two phases of `--duration` seconds each with `--clients` concurrent clients (one
thread and one keep-alive httpx connection each) sending `POST /v1/upscale` with a
SIZE x SIZE PNG:

- `computed`: every request a different image (random noise), so each one is upscaled;
- `cached`: the same image every time, so each one is answered from the result cache.

Latency is measured around each whole request by its client. The server's resident
memory (VmRSS of its process, from /proc) is read after the warm-up ("start"), between
the phases ("middle") and at the end; flat figures mean no leak per request. Any 5xx
answer counts as a server error and makes the script exit 1. Linux only.

    python benchmarks/serve_load.py [--clients 4] [--duration 20] [--size 64]
        [--model anime-video] [--sync-concurrency 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

MB = 1024 * 1024


@dataclass
class PhaseResult:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return float(np.percentile(self.latencies, q)) * 1000


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def start_server(folder: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    settings = {
        "port": 0,
        "data_dir": str(folder / "data"),
        "require_keys": False,
        "rate_limit": {"per_second": 0},
        "models": [args.model],
        "default_model": args.model,
        "sync_concurrency": args.sync_concurrency,
        "sync_backlog": 4 * args.clients,
    }
    config = folder / "serve.json"
    config.write_text(json.dumps(settings))
    log = folder / "server.log"
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "srgan", "serve", "--config", str(config)],
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        match = re.search(r"serving on (http://\S+)", log.read_text())
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"srgan serve did not start:\n{log.read_text()}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_phase(name: str, url: str, args: argparse.Namespace, distinct: bool) -> PhaseResult:
    result = PhaseResult(name, args.duration)
    lock = threading.Lock()
    same = png(np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), np.uint8))
    deadline = time.monotonic() + args.duration

    def client(index: int) -> None:
        rng = np.random.default_rng(1000 + index)
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.monotonic() < deadline:
                if distinct:
                    image = png(rng.integers(0, 256, (args.size, args.size, 3), np.uint8))
                else:
                    image = same
                started = time.perf_counter()
                try:
                    response = http.post(
                        "/v1/upscale",
                        files={"image": ("bench.png", image, "image/png")},
                        data={"model": args.model},
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 599  # no answer at all counts as a server error
                elapsed = time.perf_counter() - started
                with lock:
                    result.statuses[status] += 1
                    if status == 200:
                        result.latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - began
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--size", type=int, default=64, help="input side in pixels")
    parser.add_argument("--model", default="anime-video")
    parser.add_argument("--sync-concurrency", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="srgan-load-") as temporary:
        process, url = start_server(Path(temporary), args)
        try:
            with httpx.Client(base_url=url, timeout=120) as http:  # warm-up: model, caches
                warm = png(np.full((args.size, args.size, 3), 128, np.uint8))
                for _ in range(3):
                    http.post("/v1/upscale", files={"image": warm}).raise_for_status()
            memory = {"start": rss_mb(process.pid)}
            computed = run_phase("computed", url, args, distinct=True)
            memory["middle"] = rss_mb(process.pid)
            cached = run_phase("cached", url, args, distinct=False)
            memory["end"] = rss_mb(process.pid)
            metrics = httpx.get(f"{url}/metrics", timeout=30).text
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)

    cpu = os.cpu_count()
    print(
        f"srgan serve, POST /v1/upscale, {args.size}x{args.size} RGB PNG -> x4 with "
        f"{args.model}, {args.clients} concurrent clients, {args.duration:g} s per phase, "
        f"{cpu} CPU cores, sync_concurrency {args.sync_concurrency}"
    )
    header = (
        f"{'phase':<10}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'max ms':>9}{'5xx':>6}{'other':>7}"
    )
    print(header)
    print("-" * len(header))
    for phase in (computed, cached):
        other = phase.requests - phase.statuses[200] - phase.server_errors
        print(
            f"{phase.name:<10}{phase.requests:>9}{phase.requests / phase.seconds:>9.1f}"
            f"{phase.percentile(50):>9.1f}{phase.percentile(95):>9.1f}"
            f"{max(phase.latencies, default=0) * 1000:>9.1f}{phase.server_errors:>6}{other:>7}"
        )
    print(
        f"server RSS MB: start {memory['start']:.0f}, middle {memory['middle']:.0f}, "
        f"end {memory['end']:.0f}"
    )
    served_5xx = sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("srgan_http_requests_total") and 'status="5' in line
    )
    print(f"server-side 5xx in /metrics: {served_5xx}")
    errors = computed.server_errors + cached.server_errors + served_5xx
    if statistics.fmean([len(computed.latencies), len(cached.latencies)]) == 0 or errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
