"""`GET /metrics` through `prometheus_client`: the text format every scraper expects
(OpenMetrics when the scraper asks for it), escaping and all.

Counted here, per process: requests by route template, method and status; request
latency by route; finished jobs by outcome and their duration; cache hits and misses;
busy workers. Read from the database when scraped (the same for every process on one
data folder): jobs by state, queue depth, cache size.

Several `srgan serve` processes on one data folder: start each with the environment
variable PROMETHEUS_MULTIPROC_DIR naming one empty folder, and the /metrics of any of
them reports the sums over all of them (prometheus_client's multi-process mode).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Any other method (a client may send any token) is counted as "other": a label may
# take only a few values, or a client could grow the metrics without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@dataclass(frozen=True)
class StoreSnapshot:
    jobs_by_state: Mapping[str, int]
    queue_depth: int
    cache_bytes: int
    cache_entries: int


class StoreFigures(Collector):
    """Gauges read from the database at each scrape."""

    def __init__(self, read: Callable[[], StoreSnapshot]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        snapshot = self.read()
        jobs = GaugeMetricFamily("srgan_jobs", "Jobs in the store, by state", labels=["state"])
        for state, count in snapshot.jobs_by_state.items():
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(
            "srgan_queue_depth", "Jobs waiting for a worker", value=snapshot.queue_depth
        )
        yield GaugeMetricFamily(
            "srgan_cache_bytes", "Bytes of cached results", value=snapshot.cache_bytes
        )
        yield GaugeMetricFamily(
            "srgan_cache_entries", "Cached results", value=snapshot.cache_entries
        )


class Metrics:
    def __init__(self) -> None:
        # No `*_created` series: in the text format each would be one more gauge per
        # counter and histogram, and they were never part of srgan's metrics.
        disable_created_metrics()
        # A registry of its own (not prometheus_client's global one): each app is
        # independent, and tests may build several in one process.
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "srgan_http_requests",
            "HTTP requests handled",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "srgan_http_request_duration_seconds",
            "Time to answer a request, by route",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.jobs_finished = Counter(
            "srgan_jobs_finished", "Jobs ended, by outcome", ["outcome"], registry=registry
        )
        self.job_seconds = Histogram(
            "srgan_job_duration_seconds",
            "Time a worker spent on a job",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.cache_hits = Counter(
            "srgan_cache_hits", "Results served from cache", registry=registry
        )
        self.cache_misses = Counter("srgan_cache_misses", "Results not in cache", registry=registry)
        self.workers_busy = Gauge(
            "srgan_workers_busy",
            "Workers running a job",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._lock = threading.Lock()
        self._jobs_done = 0
        self._job_seconds_sum = 0.0
        self._store: StoreFigures | None = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def job_finished(self, outcome: str, seconds: float) -> None:
        self.jobs_finished.labels(outcome).inc()
        self.job_seconds.observe(seconds)
        with self._lock:
            self._jobs_done += 1
            self._job_seconds_sum += seconds

    def mean_job_seconds(self) -> float | None:
        """The mean time of the jobs this process finished, None before the first."""
        with self._lock:
            return self._job_seconds_sum / self._jobs_done if self._jobs_done else None

    def cache_lookup(self, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).inc()

    def read_store_with(self, read: Callable[[], StoreSnapshot]) -> None:
        """Where the database figures come from (see `StoreFigures`)."""
        self._store = StoreFigures(read)
        self.registry.register(self._store)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape's body and content type, in the format `accept` asks for."""
        encoder, content_type = choose_encoder(accept)
        registry = self.registry
        if multiprocess_dir():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            if self._store is not None:
                registry.register(self._store)
        return encoder(registry), content_type

    def close(self) -> None:
        """At shutdown: in multi-process mode, this process's live gauges end."""
        if multiprocess_dir():
            mark_process_dead(os.getpid())
