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

Before those phases, the latency of a keep-alive `GET /healthz`: `--healthz N` requests
one after the other on one connection, p50/p95/max. It is what the server adds to every
answer (without TCP_NODELAY, about 40 ms of Nagle plus delayed ACK). With
`--baseline-src DIR` (the `src` folder of another checkout, e.g. of main before a
change) a second server runs that code, and the two are measured side by side in
alternating rounds, so that both see the same machine load.

    python benchmarks/serve_load.py [--clients 4] [--duration 20] [--size 64]
        [--model anime-video] [--sync-concurrency 1] [--healthz 500]
        [--baseline-src DIR] [--healthz-only]
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
from prometheus_client.parser import text_string_to_metric_families

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


def start_server(
    folder: Path, args: argparse.Namespace, src: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """`srgan serve` from this checkout, or from the package in `src` (PYTHONPATH)."""
    folder.mkdir(parents=True, exist_ok=True)
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
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "srgan", "serve", "--config", str(config)],
            stdout=stream,
            stderr=subprocess.STDOUT,
            env=env,
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


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def healthz_latencies(url: str, count: int) -> list[float]:
    """`count` keep-alive GET /healthz on one connection, one after the other (s)."""
    latencies = []
    with httpx.Client(base_url=url, timeout=30) as http:
        http.get("/healthz").raise_for_status()  # the connection is open from here on
        for _ in range(count):
            started = time.perf_counter()
            http.get("/healthz").raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


def healthz_table(servers: dict[str, str], count: int, rounds: int = 5) -> None:
    """Alternating rounds over `servers` (label -> URL), then one line per server."""
    latencies: dict[str, list[float]] = {label: [] for label in servers}
    for _ in range(rounds):
        for label, url in servers.items():
            latencies[label].extend(healthz_latencies(url, max(1, count // rounds)))
    print(
        f"keep-alive GET /healthz, {count} requests on one connection per server, "
        f"{rounds} alternating rounds; load average {load_average()}"
    )
    header = f"{'server':<34}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
    print(header)
    print("-" * len(header))
    for label, values in latencies.items():
        ms = np.asarray(values) * 1000
        print(
            f"{label:<34}{len(values):>9}{np.percentile(ms, 50):>9.2f}"
            f"{np.percentile(ms, 95):>9.2f}{ms.max():>9.2f}"
        )
    print()


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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--size", type=int, default=64, help="input side in pixels")
    parser.add_argument("--model", default="anime-video")
    parser.add_argument("--sync-concurrency", type=int, default=1)
    parser.add_argument("--healthz", type=int, default=500, help="keep-alive /healthz count")
    parser.add_argument(
        "--baseline-src", type=Path, help="also serve this src folder; compare /healthz"
    )
    parser.add_argument("--healthz-only", action="store_true", help="skip the upscale phases")
    args = parser.parse_args()

    print(f"{cpu_name()}, {os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory(prefix="srgan-load-") as temporary:
        process, url = start_server(Path(temporary) / "this", args)
        baseline = None
        try:
            servers = {"this checkout": url}
            if args.baseline_src:
                baseline = start_server(Path(temporary) / "baseline", args, args.baseline_src)
                servers[f"baseline ({args.baseline_src})"] = baseline[1]
            if args.healthz:
                healthz_table(servers, args.healthz)
            if args.healthz_only:
                return
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
            for running in (process, baseline[0] if baseline else None):
                if running is not None:
                    running.send_signal(signal.SIGTERM)
                    running.wait(30)

    cpu = os.cpu_count()
    print(
        f"srgan serve, POST /v1/upscale, {args.size}x{args.size} RGB PNG -> x4 with "
        f"{args.model}, {args.clients} concurrent clients, {args.duration:g} s per phase, "
        f"{cpu} CPU cores, sync_concurrency {args.sync_concurrency}; load average "
        f"{load_average()}"
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
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "srgan_http_requests_total" and sample.labels["status"][0] == "5"
    )
    print(f"server-side 5xx in /metrics: {served_5xx:g}")
    errors = computed.server_errors + cached.server_errors + served_5xx
    if statistics.fmean([len(computed.latencies), len(cached.latencies)]) == 0 or errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
