"""Fire the hostile-request corpus of `tests/serve_fuzz.py` at a live `srgan serve` and
print how each case came out: counts by outcome (expected 4xx JSON, expected 2xx,
expected close, 5xx, hang/timeout, connection reset, non-JSON error body, unexpected
status, leak), counts by category, and every case that did not come out as it should.

Starts its own server (keys on, small limits, short timeouts: `FUZZ_SETTINGS`) on a
free loopback port in a temporary data folder; exits 1 if any case came out bad.

    python benchmarks/fuzz_server.py [-v]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.serve_*

from tests.serve_fuzz import FUZZ_SETTINGS, GOOD, Result, prepare, run_corpus, table
from tests.serve_support import start_server


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = parser.parse_args()

    def report(result: Result) -> None:
        if args.verbose or result.outcome not in GOOD:
            print(
                f"[{result.case.category}] {result.case.name}: {result.outcome} {result.note[:160]}"
            )

    with tempfile.TemporaryDirectory(prefix="srgan-fuzz-") as temporary:
        server = start_server(Path(temporary) / "data", FUZZ_SETTINGS)
        try:
            keys, job = prepare(server.url, server.data_dir)
            started = time.monotonic()
            results = run_corpus(server.url, keys, job, report)
            seconds = time.monotonic() - started
            alive = server.process.poll() is None
        finally:
            server.stop()
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\n{table(results)}\n")
    print(f"{seconds:.0f} s; server still running at the end: {alive}; load average {load}")
    if not alive or any(result.outcome not in GOOD for result in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
