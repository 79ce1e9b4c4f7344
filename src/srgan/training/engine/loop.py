"""The training loop every recipe runs in.

`Engine(recipe).run()` owns what any run needs: the run folder (`training.log`,
`status.json`, `training_status.txt`, TensorBoard, samples), the seeded data order and
its resume position, the phases and their learning-rate schedules (warmup, decay,
halving on validation plateaus), gradient accumulation, mixed precision, the EMA,
DistributedDataParallel under torchrun, gradient clipping (`Stepper`), validation and
checkpoint timing, regular / best-window / emergency checkpoints with relative `latest`
and `best` links, SIGTERM and Ctrl-C, `--resume`, and autotune of batch/crop/accumulation.

It never prints: every record (steps, validations, events, autotune trials) goes to
`training.log`, TensorBoard and the `on_log` callback. A fixed-seed CPU run stopped at
step k (or interrupted) and resumed logs the same losses as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from srgan.errors import BadInputError
from srgan.training.engine import distributed
from srgan.training.engine.autotune import (
    AutotuneResult,
    Candidate,
    Measure,
    Trial,
    candidates,
    choose,
    cpu_measure,
    cuda_measure,
    default_crops,
    memory_budget,
)
from srgan.training.engine.checkpoints import (
    BestWindow,
    CheckpointManager,
    Kind,
    holds_run,
    load_state,
    resolve,
)
from srgan.training.engine.data_order import Position, Split, step_batches
from srgan.training.engine.recipe import Phase, Recipe, Record
from srgan.training.engine.rng import restore_rng_state, rng_state
from srgan.training.engine.run_log import RunLog, memory_megabytes
from srgan.training.engine.schedules import (
    SCHEDULE_PARTS,
    PlateauHalving,
    build_schedule,
    schedule_part,
)
from srgan.training.engine.signals import StopRequest, Terminated
from srgan.training.engine.status import status_text, write_status
from srgan.training.engine.stepper import Stepper

LogCallback = Callable[[Record], None]
CHECKPOINT_CODES = {"regular": 1, "candidate": 2, "emergency": 3}
TIMING = {"s_per_step", "steps_per_s", "eta_s"}


class Engine:
    def __init__(
        self,
        recipe: Recipe,
        on_log: LogCallback | None = None,
        context: distributed.Distributed | None = None,
        measure: Measure | None = None,
    ) -> None:
        """`measure` replaces autotune's memory measurement (tests)."""
        self.recipe = recipe
        self.config = config = recipe.config
        self.on_log = on_log
        self.measure = measure
        self.context = context or distributed.from_environment()
        self.device = self.context.device(config.device)
        self.phases = list(recipe.phases())
        self.total_steps = sum(phase.steps for phase in self.phases)
        if self.total_steps == 0:
            raise BadInputError("nothing to train: every phase has 0 steps")
        self.schedules = {
            phase.name: build_schedule(
                phase.lr,
                phase.steps,
                decay=phase.schedule.decay,
                warmup_steps=phase.schedule.warmup_steps,
                milestones=phase.schedule.milestones,
                gamma=phase.schedule.gamma,
                floor=phase.schedule.floor,
                decay_steps=phase.schedule.decay_steps,
            )
            for phase in self.phases
        }
        self.plateaus = {
            phase.name: PlateauHalving(
                phase.schedule.plateau_patience, phase.schedule.plateau_factor
            )
            for phase in self.phases
        }
        self.run_dir = config.output_dir
        ckpt = config.checkpoint
        window = BestWindow(ckpt.best_from, ckpt.best_until, ckpt.best_last)
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", ckpt.interval, window)
        data = config.data
        self.plan = Candidate(data.batch_size, data.crop, data.accumulation)
        self.position = Position()
        self.stepper: Stepper | None = None
        self.log: RunLog | None = None
        self.last_validation: Record | None = None
        self.stop = StopRequest()

    # ------------------------------------------------------------------ phases and rates

    def phase_at(self, step: int) -> tuple[Phase, int]:
        """The phase a global step belongs to, and the step within it."""
        start = 0
        for phase in self.phases:
            if step < start + phase.steps:
                return phase, step - start
            start += phase.steps
        last = self.phases[-1]
        return last, step - (start - last.steps)

    def learning_rate(self, step: int) -> float:
        phase, local = self.phase_at(step)
        return self.schedules[phase.name](local) * self.plateaus[phase.name].scale

    def lr_part(self, step: int) -> int:
        phase, local = self.phase_at(step)
        schedule = phase.schedule
        return schedule_part(
            local, phase.steps, schedule.decay, schedule.warmup_steps, schedule.decay_steps
        )

    # ------------------------------------------------------------------ run

    def run(self, resume: bool = False, stop_at_step: int | None = None) -> Path:
        """Train to the end (or to `stop_at_step`); returns the last checkpoint folder."""
        ckpt_dir = self.run_dir / "checkpoints"
        state: dict[str, Any] | None = None
        if resume:
            checkpoint = resolve(ckpt_dir)
            if checkpoint is None:
                raise BadInputError(f"{ckpt_dir}: no checkpoint to resume from")
            state = load_state(checkpoint)
        elif self.context.is_main and holds_run(self.run_dir):
            raise BadInputError(
                f"{self.run_dir} already holds a run: add --resume to continue it or --fresh "
                "to move it aside and start again"
            )
        self.recipe.prepare()
        distributed.start(self.context, self.device)
        self.context.barrier()  # every process has read the checkpoint before any writes
        if self.context.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.log = RunLog(self.run_dir, self.config.tensorboard)
        try:
            if state is not None:
                self._resume(state)
            else:
                if self.config.autotune.enabled:
                    self.plan = self._agreed_plan()
                torch.manual_seed(self.config.seed)
                self.stepper = Stepper(self.recipe, self.plan.crop, self.device, self.context)
            end = min(self.total_steps, stop_at_step or self.total_steps)
            split = Split(
                self.plan.batch_size,
                self.plan.accumulation,
                self.context.world_size,
                self.context.rank,
            )
            batches = step_batches(
                self.recipe.dataset(self.plan.crop),
                self.config.seed,
                split,
                self.position,
                self.config.data.workers,
            )
            with self.stop.listening():
                last = self._loop(batches, end)
            # Left to the interpreter's exit, gloo's threads are still running and abort the
            # process ("terminate called without an active exception") now and then.
            distributed.stop(self.context)
            return last
        finally:
            if self.log is not None:
                self.log.close()

    def _loop(self, batches: Iterator[list[Any]], end: int) -> Path:
        assert self.stepper is not None
        last: Path | None = None
        first_step, started = self.position.step, time.perf_counter()
        snapshot: dict[str, Any] | None = None
        try:
            while self.position.step < end:
                snapshot = self._snapshot()
                step_started = time.perf_counter()
                phase, _ = self.phase_at(self.position.step)
                rate = self.learning_rate(self.position.step)
                part = SCHEDULE_PARTS[self.lr_part(self.position.step)]
                self.stepper.set_rate(rate)
                logs = self.stepper.step(next(batches), phase)
                logs = self.context.mean(logs, self.device)
                self.position.step = step = self.position.step + 1
                snapshot = None
                for event, scalars in self.recipe.after_step(step, logs):
                    self._emit(event)
                    self._scalars(step, scalars)
                now = time.perf_counter()
                speed = (step - first_step) / (now - started)
                record: Record = {"step": step, "phase": phase.name, "lr_phase": part}
                record |= {"lr": rate, **logs, **self.recipe.step_values()}
                record |= {"s_per_step": now - step_started, "steps_per_s": speed}
                record |= {"eta_s": (end - step) / speed if speed > 0 else 0.0}
                record |= memory_megabytes(self.device)
                if step % self.config.log_interval == 0 or step == self.total_steps:
                    self._log(record)
                if self.recipe.has_validation() and (
                    step % self.config.val_interval == 0 or step == self.total_steps
                ):
                    self._validate(phase)
                if self.checkpoints.regular_due(step, end):
                    last = self._save("regular")
                if step % self.config.status_interval == 0 or step == end:
                    self._status(record)
                if self.context.any(self.stop.requested, self.device):
                    self._save("emergency")
                    raise Terminated(f"stopped by signal {self.stop.signal} at step {step}")
        except BaseException:
            if snapshot is not None:  # stopped inside a step: save the state before it
                self._restore_snapshot(snapshot)
            if self.position.step > 0:
                self._save("emergency")
            raise
        if last is None:  # resumed at the end: nothing left to do
            last = resolve(self.run_dir / "checkpoints")
        assert last is not None
        return last

    # ------------------------------------------------------------------ autotune

    def _agreed_plan(self) -> Candidate:
        """Rank 0 chooses; under torchrun every process takes its plan."""
        plan = self.autotune().chosen if self.context.is_main else self.plan
        values = [float(plan.batch_size), float(plan.crop), float(plan.accumulation)]
        batch, crop, accumulation = (int(v) for v in self.context.broadcast(values, self.device))
        return Candidate(batch, crop, accumulation)

    def autotune(self) -> AutotuneResult:
        """Choose the plan (batch, crop, accumulation); writes autotune.json."""
        config, data = self.config, self.config.data
        measure, method = self.measure, "given"
        if measure is None and self.device.type == "cuda":
            measure, method = cuda_measure(self.recipe, self.device), "cuda peak allocated"
        elif measure is None:
            measure = cpu_measure(self.recipe, config.autotune.probe_timeout_s)
            method = "cpu peak RSS growth (subprocess)"
        multiple = self.recipe.crop_multiple()
        crops = config.autotune.crops or default_crops(data.crop, data.scale, multiple)
        bad = [crop for crop in crops if crop % multiple]
        if bad:
            raise BadInputError(f"autotune.crops {bad}: crops must be multiples of {multiple}")
        options = candidates(data.effective_batch, crops)
        fraction, override = config.autotune.budget_fraction, config.autotune.memory_budget_mb
        budget = memory_budget(self.device, fraction, override)

        def report(trial: Trial) -> None:
            record = {"step": 0, "event": "autotune_trial", **asdict(trial.candidate)}
            record |= {"peak_mb": trial.peak_mb, "fits": trial.fits, "reason": trial.reason}
            self._emit(record)

        rng = rng_state()  # measuring runs real steps; keep the run's seeds
        result = choose(options, measure, budget, method, report)
        restore_rng_state(rng)
        result.write(self.run_dir)
        chosen = {"step": 0, "event": "autotune", **asdict(result.chosen)}
        self._emit({**chosen, "effective_batch": result.chosen.effective_batch})
        return result

    # ------------------------------------------------------------------ reporting

    def _emit(self, record: Record) -> None:
        if self.log is not None:
            self.log.record(record)
            if self.on_log:
                self.on_log(record)

    def _scalars(self, step: int, values: dict[str, float]) -> None:
        if self.log is not None and values:
            self.log.scalars(step, values)

    def _log(self, record: Record) -> None:
        self._emit(record)
        step = record["step"]
        skip = {"step", "phase", "lr_phase", "lr", *TIMING, *self.recipe.step_values()}
        scalars: dict[str, float] = {}
        for key, value in record.items():
            if key in skip or not isinstance(value, int | float):
                continue
            if key.endswith("_mb"):
                scalars[f"memory/{key}"] = value
            elif "grad_norm" in key or "clip_limit" in key:
                scalars[f"train/{key}"] = value
            else:
                scalars[f"loss/{key}"] = value
        phase, _ = self.phase_at(step - 1)
        scalars |= {
            "train/lr": record["lr"],
            "train/lr_phase": float(SCHEDULE_PARTS.index(record["lr_phase"])),
            "train/plateau_scale": self.plateaus[phase.name].scale,
            "train/steps_per_s": record["steps_per_s"],
            "train/seconds_per_step": record["s_per_step"],
        }
        scalars |= self.recipe.scalars(record)
        self._scalars(step, scalars)
        if self.log is not None:
            status = {**record, "total_steps": self.total_steps}
            best = self.checkpoints.best
            self.log.status({**status, "best_psnr": best[1] if best else None})

    def _status(self, record: Record) -> None:
        if self.log is None:
            return
        phase, _ = self.phase_at(record["step"] - 1)
        plan = self.plan
        info = {
            "total_steps": self.total_steps,
            "plateau_scale": self.plateaus[phase.name].scale,
            "plan": f"{plan.describe()} (effective batch {plan.effective_batch})"
            + (f" x {self.context.world_size} processes" if self.context.enabled else ""),
            "validation": self.last_validation,
            "best": self.checkpoints.best,
            "losses": self.recipe.summary(record),
        }
        title = f"srgan {self.recipe.command}: {self.run_dir}"
        write_status(self.run_dir, status_text(title, record, info))

    # ------------------------------------------------------------------ validation

    def _validate(self, phase: Phase) -> None:
        assert self.stepper is not None
        step = self.position.step
        score = [math.nan]
        if self.context.is_main:
            nets = self.stepper.nets
            generator = nets.plain("generator")
            average = nets.averaged()
            generator.eval()
            try:
                result = self.recipe.validate(self.recipe.inference_model(average), step)
            finally:
                generator.train()
            assert result is not None
            record = result.record(step)
            self.last_validation = record
            self._emit(record)
            self._scalars(step, {f"val/{k[4:]}": v for k, v in record.items() if k != "step"})
            if result.image is not None and self.log is not None:
                self.log.image(step, "val/comparison", result.image)
            score = [result.psnr]
        (psnr,) = self.context.broadcast(score, self.device)  # every process cuts alike
        plateau = self.plateaus[phase.name]
        if plateau.observe(psnr):
            self._emit({"step": step, "event": "plateau", "phase": phase.name,
                        "lr_scale": plateau.scale})  # fmt: skip
            self._scalars(step, {"events/plateau_lr_scale": plateau.scale})
        if not self.context.is_main:
            return
        save, changed = self.checkpoints.observe(step, psnr)
        if save:
            self._save("candidate")
        dropped = self.checkpoints.settle()
        if changed and self.checkpoints.best is not None:
            best_step, best_psnr = self.checkpoints.best
            self._emit({"step": step, "event": "best", "best_step": best_step, "psnr": best_psnr})
            self._scalars(step, {"events/best_psnr": best_psnr})
        for old in dropped:
            self._emit({"step": step, "event": "candidate_removed", "path": f"step_{old:07d}"})

    # ------------------------------------------------------------------ checkpoints

    def _snapshot(self) -> dict[str, Any]:
        """What a step changes before its optimizer steps (restored when it is cut short)."""
        assert self.stepper is not None
        return {
            "position": self.position.as_dict(),
            "clippers": self.stepper.clipper_states(),
            "recipe": self.recipe.state_dict(),
        }

    def _restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        assert self.stepper is not None
        self.position = Position(**snapshot["position"])
        self.stepper.load_clipper_states(snapshot["clippers"])
        self.recipe.load_state_dict(snapshot["recipe"])

    def _save(self, kind: Kind) -> Path:
        assert self.stepper is not None
        step = self.position.step
        folder = self.run_dir / "checkpoints"
        if not self.context.is_main:
            return folder / f"step_{step:07d}"
        state = {
            "recipe_kind": self.recipe.kind,
            "position": self.position.as_dict(),
            "plan": asdict(self.plan),
            "stepper": self.stepper.state_dict(),
            "plateaus": {name: plateau.state_dict() for name, plateau in self.plateaus.items()},
            "recipe": self.recipe.state_dict(),
            "rng": rng_state(),
            "emergency": kind == "emergency",
            "world_size": self.context.world_size,
            "config": self.config.model_dump(mode="json"),
        }
        weights = self.recipe.export(self.stepper.nets)
        saved, written = self.checkpoints.save(step, weights, state, kind)
        if not written:
            return saved
        event = "emergency_checkpoint" if kind == "emergency" else f"{kind}_checkpoint"
        self._emit({"step": step, "event": event, "path": saved.name})
        self._scalars(step, {"events/checkpoint": CHECKPOINT_CODES[kind]})
        return saved

    def _resume(self, state: dict[str, Any]) -> None:
        kind = state.get("recipe_kind")
        if isinstance(kind, str) and kind != self.recipe.kind:
            raise BadInputError(
                f"{self.run_dir}: holds a {kind} run, not a {self.recipe.kind} one: resume it "
                "with the command that made it"
            )
        try:
            if kind is None:
                raise KeyError("recipe_kind")
            self.plan = Candidate(**state["plan"])
            torch.manual_seed(self.config.seed)
            self.stepper = Stepper(self.recipe, self.plan.crop, self.device, self.context)
            self.stepper.load_state_dict(state["stepper"])
            for name, plateau_state in state["plateaus"].items():
                if name in self.plateaus:
                    self.plateaus[name].load_state_dict(plateau_state)
            self.recipe.load_state_dict(state["recipe"])
            self.checkpoints.load_state_dict(state["checkpoint_manager"])
            restore_rng_state(state["rng"])
            self.position = Position(**state["position"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise BadInputError(
                f"{self.run_dir}: its latest checkpoint does not fit this configuration "
                f"({type(exc).__name__}: {detail})"
            ) from exc
