"""Counters and histograms for `GET /metrics`, in the Prometheus text format (0.0.4).

Kept in memory, per process: request counts by route template, method and status,
request latency by route, finished jobs by outcome; the job counts by state, the queue
depth and the cache figures are read when the page is rendered.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1
                break

    def lines(self, name: str, labels: str) -> Iterable[str]:
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts, strict=True):
            cumulative += count
            yield f'{name}_bucket{{{labels},le="{bound:g}"}} {cumulative}'
        yield f'{name}_bucket{{{labels},le="+Inf"}} {self.total}'
        yield f"{name}_sum{{{labels}}} {self.sum:.6f}"
        yield f"{name}_count{{{labels}}} {self.total}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.jobs_finished: dict[str, int] = defaultdict(int)
        self.job_seconds = Histogram(LATENCY_BUCKETS_S)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, status)] += 1
            histogram = self.latency.get(route)
            if histogram is None:
                histogram = self.latency[route] = Histogram(LATENCY_BUCKETS_S)
            histogram.observe(seconds)

    def job_finished(self, outcome: str, seconds: float) -> None:
        with self._lock:
            self.jobs_finished[outcome] += 1
            self.job_seconds.observe(seconds)

    def render(
        self,
        jobs_by_state: Mapping[str, int],
        queue_depth: int,
        workers_busy: int,
        extra: Mapping[str, tuple[str, str, float]],
    ) -> str:
        """The exposition text. `extra`: name -> (type, help, value) of other figures."""
        out: list[str] = []
        with self._lock:
            _header(out, "srgan_http_requests_total", "counter", "HTTP requests handled")
            for (route, method, status), count in sorted(self.requests.items()):
                labels = _labels(route=route, method=method, status=str(status))
                out.append(f"srgan_http_requests_total{{{labels}}} {count}")
            _header(
                out,
                "srgan_http_request_duration_seconds",
                "histogram",
                "Time to answer a request, by route",
            )
            for route, histogram in sorted(self.latency.items()):
                out.extend(
                    histogram.lines("srgan_http_request_duration_seconds", _labels(route=route))
                )
            _header(out, "srgan_jobs_finished_total", "counter", "Jobs ended, by outcome")
            for outcome, count in sorted(self.jobs_finished.items()):
                out.append(f"srgan_jobs_finished_total{{{_labels(outcome=outcome)}}} {count}")
            _header(out, "srgan_job_duration_seconds", "histogram", "Time a worker spent on a job")
            out.extend(self.job_seconds.lines("srgan_job_duration_seconds", 'worker="all"'))
        _header(out, "srgan_jobs", "gauge", "Jobs in the store, by state")
        for state, count in jobs_by_state.items():
            out.append(f"srgan_jobs{{{_labels(state=state)}}} {count}")
        _header(out, "srgan_queue_depth", "gauge", "Jobs waiting for a worker")
        out.append(f"srgan_queue_depth {queue_depth}")
        _header(out, "srgan_workers_busy", "gauge", "Workers running a job")
        out.append(f"srgan_workers_busy {workers_busy}")
        for name, (kind, help_text, value) in extra.items():
            _header(out, name, kind, help_text)
            out.append(f"{name} {value:g}")
        return "\n".join(out) + "\n"


def _header(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def _labels(**labels: str) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
