"""Pick a batch size, crop size and gradient accumulation that fit in memory.

Candidates keep the effective batch (batch x accumulation) fixed and come in priority
order: the configured crop first, then smaller crops; for each crop the largest batch
first (accumulation 1), then halving the batch (and doubling the accumulation) through
the divisors of the effective batch. Each candidate's real training step (the recipe's
own step of every phase: forward, losses, backward, optimizer steps) is measured, and
the first whose peak memory fits in `budget_fraction` of the memory available is chosen:

- CUDA: the peak of `torch.cuda.max_memory_allocated` over the step, in this process,
  against the fraction of the device's total memory less what is already in use.
- CPU: the growth of the peak resident set size (`ru_maxrss`) over the step, measured
  in a fresh Python process per candidate (the peak of a process never goes down, so
  one process cannot measure several candidates), against the fraction of MemAvailable
  (or of the cgroup limit less its usage, when that is lower).

The engine reports each trial (with the reason for a rejection) and writes them all
to `autotune.json` in the run folder.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from srgan.errors import BadInputError
from srgan.imaging.io import write_bytes_atomically
from srgan.inference.memory_profile import peak_rss_bytes

if TYPE_CHECKING:
    from srgan.training.engine.recipe import Recipe

MB = 2**20


@dataclass(frozen=True)
class Candidate:
    batch_size: int
    crop: int  # HR crop side
    accumulation: int

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.accumulation

    def describe(self) -> str:
        return f"batch {self.batch_size} x crop {self.crop} x accumulation {self.accumulation}"


@dataclass(frozen=True)
class Trial:
    candidate: Candidate
    peak_mb: float | None  # None: the measurement failed
    fits: bool
    reason: str
    seconds: float


@dataclass
class AutotuneResult:
    chosen: Candidate
    budget_mb: float
    method: str
    trials: list[Trial] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chosen": asdict(self.chosen),
            "effective_batch": self.chosen.effective_batch,
            "budget_mb": self.budget_mb,
            "method": self.method,
            "trials": [
                {**asdict(t.candidate), **{k: v for k, v in asdict(t).items() if k != "candidate"}}
                for t in self.trials
            ],
        }

    def write(self, run_dir: Path) -> Path:
        path = run_dir / "autotune.json"
        write_bytes_atomically(path, json.dumps(self.as_dict(), indent=2).encode())
        return path


def default_crops(crop: int, scale: int, multiple: int | None = None) -> list[int]:
    """The crop, then about 3/4 and 1/2 of it (multiples of `multiple`, by default the
    scale; at least 4 LR px)."""
    multiple = multiple or scale
    smallest = -(-4 * scale // multiple) * multiple
    crops: list[int] = []
    for fraction in (1.0, 0.75, 0.5):
        side = max(int(crop * fraction) // multiple * multiple, smallest)
        if side not in crops:
            crops.append(side)
    return crops


def candidates(effective_batch: int, crops: Sequence[int]) -> list[Candidate]:
    """All (batch, crop, accumulation) with batch x accumulation == effective_batch, in
    priority order: larger crops first, then larger batches."""
    batches = [b for b in range(effective_batch, 0, -1) if effective_batch % b == 0]
    return [Candidate(b, crop, effective_batch // b) for crop in crops for b in batches]


Measure = Callable[[Candidate], float]  # peak bytes of one step; raises on failure
Report = Callable[[Trial], None]


def choose(
    options: Sequence[Candidate],
    measure: Measure,
    budget_bytes: float,
    method: str,
    report: Report | None = None,
) -> AutotuneResult:
    """The first candidate whose measured peak fits in `budget_bytes`."""
    trials: list[Trial] = []
    budget_mb = budget_bytes / MB
    for candidate in options:
        started = time.perf_counter()
        try:
            peak: float | None = measure(candidate) / MB
            fits = peak <= budget_mb
            verdict = "fits in" if fits else "exceeds"
            reason = f"needs {peak:.0f} MB, {verdict} the budget of {budget_mb:.0f} MB"
        except (MemoryError, RuntimeError, subprocess.SubprocessError, OSError) as exc:
            peak, fits = None, False
            reason = f"failed: {' '.join(str(exc).split())[:200]}"
        trial = Trial(candidate, peak, fits, reason, time.perf_counter() - started)
        trials.append(trial)
        if report:
            report(trial)
        if fits:
            return AutotuneResult(candidate, budget_mb, method, trials)
    raise BadInputError(
        f"autotune: no batch/crop fits in {budget_mb:.0f} MB (smallest tried: "
        f"{options[-1].describe()}); lower data.crop or model size, or set "
        "autotune.memory_budget_mb"
    )


# ------------------------------------------------------------------ budgets


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_ram_bytes() -> float:
    """MemAvailable, or the cgroup's limit less its usage when that is lower."""
    available = math.inf
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        limit, usage = _read_int(Path(limit_file)), _read_int(Path(usage_file))
        if limit is not None and usage is not None and limit < 2**60:
            available = min(available, limit - usage)
    if not math.isfinite(available):
        raise BadInputError("autotune: cannot tell the free memory; set autotune.memory_budget_mb")
    return float(available)


def memory_budget(device: torch.device, fraction: float, override_mb: float | None) -> float:
    """Bytes a training step may use: `fraction` of what is free (or of `override_mb`)."""
    if override_mb is not None:
        return fraction * override_mb * MB
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return max(fraction * total - (total - free), 0.0)
    return fraction * available_ram_bytes()


# ------------------------------------------------------------------ measuring


def probe_step(recipe: Recipe, candidate: Candidate, device: torch.device) -> None:
    """One real training step of every phase of `recipe` (fresh networks and optimizers,
    random data) with one micro-batch of `candidate`."""
    from srgan.training.engine.distributed import Distributed
    from srgan.training.engine.stepper import Stepper

    torch.manual_seed(0)
    stepper = Stepper(recipe, candidate.crop, device, Distributed())
    for phase in recipe.phases():
        if phase.steps:
            stepper.set_rate(phase.lr)
            stepper.step([recipe.example_batch(candidate.batch_size, candidate.crop)], phase)


def cuda_measure(recipe: Recipe, device: torch.device) -> Measure:
    def measure(candidate: Candidate) -> float:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        try:
            probe_step(recipe, candidate, device)
            torch.cuda.synchronize(device)
            return float(torch.cuda.max_memory_allocated(device) - before)
        except torch.OutOfMemoryError as exc:
            raise RuntimeError("out of memory") from exc
        finally:
            torch.cuda.empty_cache()

    return measure


def cpu_measure(recipe: Recipe, timeout_s: float = 300) -> Measure:
    """Peak RSS growth of one step, each candidate in its own Python process."""

    def measure(candidate: Candidate) -> float:
        with tempfile.TemporaryDirectory(prefix="srgan-autotune-") as folder:
            answer = Path(folder) / "peak.json"
            request = Path(folder) / "request.json"
            spec = {"kind": recipe.kind, "config": recipe.probe_config()}
            spec["candidate"] = asdict(candidate)
            request.write_text(json.dumps(spec))
            result = subprocess.run(
                [sys.executable, "-m", "srgan.training.engine.autotune", request, answer],
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            if result.returncode != 0 or not answer.is_file():
                lines = result.stderr.strip().splitlines() or [f"exit code {result.returncode}"]
                raise RuntimeError(lines[-1])
            return float(json.loads(answer.read_text())["peak_growth_bytes"])

    return measure


def _probe(request: Path, answer: Path) -> None:
    """The child side of `cpu_measure`: one step, then the peak growth to `answer`."""
    from srgan.training.recipes import make_recipe

    torch.set_num_threads(1)
    spec = json.loads(request.read_text())
    recipe = make_recipe(spec["kind"], spec["config"])
    candidate = Candidate(**spec["candidate"])
    smallest = default_crops(candidate.crop, recipe.config.data.scale, recipe.crop_multiple())[-1]
    # A tiny step first (batch 2: batch norm needs two values per channel)
    probe_step(recipe, Candidate(2, min(smallest, candidate.crop), 1), torch.device("cpu"))
    before = peak_rss_bytes()  # kernels and allocator pools are loaded now
    probe_step(recipe, candidate, torch.device("cpu"))
    answer.write_text(json.dumps({"peak_growth_bytes": peak_rss_bytes() - before}))


if __name__ == "__main__":
    _probe(Path(sys.argv[1]), Path(sys.argv[2]))
