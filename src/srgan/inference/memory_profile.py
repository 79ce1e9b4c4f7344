"""Sample a command's memory while it runs: RSS of the process tree, and GPU memory when
`nvidia-smi` can report it."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from srgan.errors import BadInputError

_GPU_EVERY_S = 1.0


@dataclass(frozen=True)
class Sample:
    time_s: float
    rss_mb: float
    gpu_mb: float | None


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (ru_maxrss: KiB on Linux, bytes on
    macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _children(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = Path(f"/proc/{current}/task").iterdir()
            for task in tasks:
                text = (task / "children").read_text()
                pending.extend(int(child) for child in text.split())
        except OSError:
            continue
    return found


def _rss_mb(pid: int) -> float:
    total = 0
    for process in _children(pid):
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _gpu_mb(pids: set[int]) -> float | None:
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    try:
        output = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = 0.0
    for line in output.splitlines():
        pid, _, memory = line.partition(",")
        if pid.strip().isdigit() and int(pid) in pids:
            used += float(memory)
    return used


def profile_command(command: list[str], interval: float = 0.1) -> tuple[list[Sample], int, float]:
    """Run `command`, sampling every `interval` seconds. Returns the samples, the exit code
    (128 + N for a command killed by signal N, as shells report it) and the true peak RSS
    in MB from the kernel's accounting (`wait4`), which sampling alone can miss."""
    if not command:
        raise BadInputError("profile-memory needs a command, e.g. -- srgan upscale a.png b.png")
    if not Path("/proc/self/status").exists():
        raise BadInputError("profile-memory reads /proc and runs on Linux only")
    try:
        process = subprocess.Popen(command)
    except OSError as exc:
        raise BadInputError(f"{command[0]}: cannot run ({exc.strerror})") from exc
    samples: list[Sample] = []
    started, gpu, gpu_read = time.perf_counter(), None, float("-inf")
    while True:
        finished, status, usage = os.wait4(process.pid, os.WNOHANG)
        if finished:
            break
        now = time.perf_counter()
        if now - gpu_read >= _GPU_EVERY_S:  # nvidia-smi is slow: ask it less often
            gpu, gpu_read = _gpu_mb(set(_children(process.pid))), now
        samples.append(Sample(now - started, _rss_mb(process.pid), gpu))
        time.sleep(interval)
    process.returncode = os.waitstatus_to_exitcode(status)
    code = process.returncode if process.returncode >= 0 else 128 - process.returncode
    peak = max([usage.ru_maxrss / 1024, *(s.rss_mb for s in samples)])
    return samples, code, peak
