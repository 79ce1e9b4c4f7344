"""The video super-resolution trainer: BidirectionalRecurrentVSR with the hybrid loss.

One optimizer step uses an effective batch of `batch_size x accumulation` windows taken
in a seeded order (the same windows whatever split autotune chooses), with linear warmup,
cosine decay to a floor and halving on validation plateaus (`schedules`), clipping at
the 95th percentile of recent gradient norms (`stability.GradientClipper`), and loss
weights adapted to their terms' magnitudes (`adaptive`). It never prints: every record
(steps, validations, adjustments, checkpoints, autotune trials) goes to `training.log`,
TensorBoard and the `on_log` callback. Checkpoints hold everything needed to resume
exactly: a fixed-seed CPU run stopped at step k and resumed logs the same losses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from srgan.archs.vsr import BidirectionalRecurrentVSR
from srgan.errors import BadInputError
from srgan.training import checkpoints, distributed
from srgan.training.adaptive import AdaptiveWeights
from srgan.training.autotune import (
    AutotuneResult,
    Candidate,
    Measure,
    StepShape,
    Trial,
    candidates,
    choose,
    cpu_measure,
    cuda_measure,
    default_crops,
    memory_budget,
)
from srgan.training.run_log import RunLog, memory_megabytes
from srgan.training.schedules import Cosine, PlateauHalving, Warmup
from srgan.training.stability import GradientClipper
from srgan.training.trainer import Position, terminate_as_interrupt
from srgan.training.vsr_checkpoints import BestWindow, CheckpointManager, Kind, holds_run
from srgan.training.vsr_clips import discover_clips
from srgan.training.vsr_config import TERMS, VSRTrainConfig
from srgan.training.vsr_data import ClipWindowDataset, WindowSettings
from srgan.training.vsr_losses import HybridLoss
from srgan.training.vsr_status import PHASES, status_text, write_status
from srgan.training.vsr_validation import evaluate_clips

LogCallback = Callable[[dict[str, Any]], None]
MicroBatches = list[tuple[torch.Tensor, torch.Tensor]]
CHECKPOINT_CODES = {"regular": 1, "candidate": 2, "emergency": 3}


class VSRTrainer:
    def __init__(
        self,
        config: VSRTrainConfig,
        on_log: LogCallback | None = None,
        measure: Measure | None = None,
    ) -> None:
        """`measure` replaces autotune's memory measurement (tests)."""
        self.config = config
        self.on_log = on_log
        self.measure = measure
        if distributed.from_environment().enabled:
            raise BadInputError("train-vsr runs in one process: start it without torchrun")
        data = config.data
        if data.train is None:
            raise BadInputError("data.train: set the training clips (--train DIR_OR_VIDEO)")
        self.device = distributed.Distributed().device(config.device)
        torch.manual_seed(config.seed)
        self.model = BidirectionalRecurrentVSR(
            num_features=config.model.num_features,
            num_blocks=config.model.num_blocks,
            scale=data.scale,
        ).to(self.device)
        optim = config.optim
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            optim.lr,
            (optim.beta1, optim.beta2),
            weight_decay=optim.weight_decay,
        )
        self.loss = HybridLoss(config.loss.levels)
        adaptive = config.adaptive
        self.weights = AdaptiveWeights(
            config.loss.weights(),
            adaptive.shares,
            adaptive.interval,
            adaptive.momentum,
            adaptive.min_factor,
            adaptive.max_factor,
            adaptive.max_change,
            adaptive.enabled,
        )
        clip = config.clip
        self.clipper = GradientClipper(
            clip.max_norm, clip.percentile, clip.window, min(clip.min_history, clip.window)
        )
        schedule = config.schedule
        self.cosine_steps = schedule.cosine_steps or max(config.steps - schedule.warmup_steps, 1)
        cosine = Cosine(optim.lr, self.cosine_steps, schedule.floor)
        self.schedule = (
            Warmup(schedule.warmup_steps, cosine) if schedule.warmup_steps > 0 else cosine
        )
        self.plateau = PlateauHalving(schedule.plateau_patience, schedule.plateau_factor)
        self.clips = discover_clips(data.train)
        self.lr_clips = discover_clips(data.train_lr) if data.train_lr else None
        self.val_clips = discover_clips(data.val) if data.val else []
        self.run_dir = config.output_dir
        ckpt = config.checkpoint
        window = BestWindow(ckpt.best_from, ckpt.best_until, ckpt.best_last)
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", ckpt.interval, window)
        self.plan = Candidate(data.batch_size, data.crop, data.accumulation)
        self.position = Position()
        self.last_validation: dict[str, Any] | None = None
        self.log: RunLog | None = None
        self.dataset: ClipWindowDataset | None = None

    # ------------------------------------------------------------------ schedule

    def phase(self, step: int) -> int:
        """0 warmup, 1 cosine decay, 2 at the floor."""
        warmup = self.config.schedule.warmup_steps
        if step < warmup:
            return 0
        return 1 if step < warmup + self.cosine_steps else 2

    def learning_rate(self, step: int) -> float:
        return self.schedule(step) * self.plateau.scale

    # ------------------------------------------------------------------ run

    def run(self, resume: bool = False, stop_at_step: int | None = None) -> Path:
        """Train to the end (or to `stop_at_step`); returns the last checkpoint folder."""
        ckpt_dir = self.run_dir / "checkpoints"
        if resume:
            self._resume(ckpt_dir)
        elif holds_run(self.run_dir):
            raise BadInputError(
                f"{self.run_dir} already holds a run: add --resume to continue it or --fresh "
                "to move it aside and start again"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.run_dir, self.config.tensorboard)
        try:
            if not resume and self.config.autotune.enabled:
                self.plan = self.autotune().chosen
            self.dataset = self._dataset()
            end = min(self.config.steps, stop_at_step or self.config.steps)
            self.model.train()
            with terminate_as_interrupt():
                return self._loop(self._batches(), end)
        finally:
            self.log.close()

    def autotune(self) -> AutotuneResult:
        """Choose the plan (batch, crop, accumulation); writes autotune.json."""
        config = self.config
        data = config.data
        shape = StepShape(
            config.model.num_features, config.model.num_blocks, data.scale, data.frames
        )
        measure = self.measure
        method = "given"
        if measure is None and self.device.type == "cuda":
            measure, method = cuda_measure(shape, self.device), "cuda peak allocated"
        elif measure is None:
            measure = cpu_measure(shape, config.autotune.probe_timeout_s)
            method = "cpu peak RSS growth (subprocess)"
        crops = config.autotune.crops or default_crops(data.crop, data.scale)
        options = candidates(data.effective_batch, crops)
        fraction, override = config.autotune.budget_fraction, config.autotune.memory_budget_mb
        budget = memory_budget(self.device, fraction, override)

        def report(trial: Trial) -> None:
            record = {"step": 0, "event": "autotune_trial", **asdict(trial.candidate)}
            record |= {"peak_mb": trial.peak_mb, "fits": trial.fits, "reason": trial.reason}
            self._emit(record)

        rng = checkpoints.rng_state()  # measuring runs real steps; keep the run's seeds
        result = choose(options, measure, budget, method, report)
        checkpoints.restore_rng_state(rng)
        result.write(self.run_dir)
        chosen = {"step": 0, "event": "autotune", **asdict(result.chosen)}
        self._emit({**chosen, "effective_batch": result.chosen.effective_batch})
        return result

    def _dataset(self) -> ClipWindowDataset:
        data = self.config.data
        settings = WindowSettings(
            data.scale,
            data.frames,
            self.plan.crop,
            data.augment,
            data.temporal_reverse,
            self.config.seed,
        )
        return ClipWindowDataset(
            self.clips, settings, data.samples_per_clip, self.lr_clips, data.cache_mb * 2**20
        )

    def _batches(self) -> Iterator[MicroBatches]:
        """Effective batches (as micro-batches) from the saved position on."""
        assert self.dataset is not None
        plan, size = self.plan, self.plan.effective_batch
        epoch, skip = self.position.epoch, self.position.batch
        while True:
            self.dataset.set_epoch(epoch)
            order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.dataset))
            batches = [order[i : i + size] for i in range(0, len(order) - size + 1, size)]
            if not batches:
                raise BadInputError(
                    f"data.batch_size x data.accumulation ({size}) is more than the "
                    f"{len(self.dataset)} windows of an epoch: raise data.samples_per_clip"
                )
            micro = [
                batch[i : i + plan.batch_size].tolist()
                for batch in batches[skip:]
                for i in range(0, size, plan.batch_size)
            ]
            loader = DataLoader(
                self.dataset, batch_sampler=micro, num_workers=self.config.data.workers
            )
            group: MicroBatches = []
            for lr, hr in loader:
                group.append((lr, hr))
                if len(group) == plan.accumulation:
                    self.position.batch += 1
                    yield group
                    group = []
            epoch, skip = epoch + 1, 0
            self.position.epoch, self.position.batch = epoch, 0

    def _loop(self, batches: Iterator[MicroBatches], end: int) -> Path:
        last: Path | None = None
        first_step, started = self.position.step, time.perf_counter()
        snapshot = self._snapshot()
        try:
            while self.position.step < end:
                snapshot = self._snapshot()
                step_started = time.perf_counter()
                step = self.position.step
                rate = self.learning_rate(step)
                for group in self.optimizer.param_groups:
                    group["lr"] = rate
                values = self._step(next(batches))
                self.position.step = step = step + 1
                snapshot = None
                adjustment = self.weights.adjust(step)
                if adjustment is not None:
                    self._adjusted(adjustment.record())
                now = time.perf_counter()
                eta = (end - step) * (now - started) / (step - first_step)
                record = self._record(values, rate, now - step_started, eta)
                if step % self.config.log_interval == 0 or step == end:
                    self._log(record)
                if self.val_clips and (
                    step % self.config.val_interval == 0 or step == self.config.steps
                ):
                    self._validate()
                if self.checkpoints.regular_due(step, end):
                    last = self._save("regular")
                if step % self.config.status_interval == 0 or step == end:
                    self._status(record)
        except BaseException:
            if snapshot is not None:  # stopped inside a step: save the state before it
                self._restore_snapshot(snapshot)
            if self.position.step > 0:
                self._save("emergency")
            raise
        if last is None:  # resumed at the end: nothing left to do
            last = checkpoints.resolve(self.run_dir / "checkpoints")
        assert last is not None
        return last

    def _step(self, micro: MicroBatches) -> dict[str, float]:
        self.optimizer.zero_grad(set_to_none=True)
        sums = dict.fromkeys((*TERMS, "total"), 0.0)
        for lr, hr in micro:
            lr, hr = lr.to(self.device), hr.to(self.device)
            result = self.loss(self.model(lr), hr, self.weights.weights)
            (result.total / len(micro)).backward()
            for name, value in result.terms.items():
                sums[name] += value.item() / len(micro)
            sums["total"] += result.total.item() / len(micro)
        clip = self.clipper.clip(self.model.parameters())
        self.weights.observe({name: sums[name] for name in TERMS})
        self.optimizer.step()
        values = {**sums, "grad_norm": clip.norm}
        if math.isfinite(clip.limit):
            values["clip_limit"] = clip.limit
        return values

    # ------------------------------------------------------------------ reporting

    def _emit(self, record: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.record(record)
        if self.on_log:
            self.on_log(record)

    def _record(
        self, values: dict[str, float], rate: float, seconds: float, eta: float
    ) -> dict[str, Any]:
        step = self.position.step
        record: dict[str, Any] = {"step": step, "phase": PHASES[self.phase(step - 1)], "lr": rate}
        record.update(values)
        record.update({f"w_{name}": self.weights.weights[name] for name in TERMS})
        record.update({"s_per_step": seconds, "eta_s": eta})
        record.update(memory_megabytes(self.device))
        return record

    def _log(self, record: dict[str, Any]) -> None:
        assert self.log is not None
        self._emit(record)
        step = record["step"]
        scalars = {f"loss/{name}": record[name] for name in (*TERMS, "total")}
        scalars |= {f"weights/{name}": record[f"w_{name}"] for name in TERMS}
        scalars |= {
            "train/lr": record["lr"],
            "train/lr_phase": float(self.phase(step - 1)),
            "train/plateau_scale": self.plateau.scale,
            "train/grad_norm": record["grad_norm"],
            "train/seconds_per_step": record["s_per_step"],
        }
        if "clip_limit" in record:
            scalars["train/clip_limit"] = record["clip_limit"]
        scalars |= {f"memory/{k}": v for k, v in record.items() if k.endswith("_mb")}
        self.log.scalars(step, scalars)

    def _status(self, record: dict[str, Any]) -> None:
        assert self.log is not None
        plan = self.plan
        info = {
            "total_steps": self.config.steps,
            "plateau_scale": self.plateau.scale,
            "plan": f"{plan.describe()} (effective batch {plan.effective_batch})",
            "validation": self.last_validation,
            "best": self.checkpoints.best,
        }
        write_status(self.run_dir, status_text(self.run_dir, record, info))
        self.log.status({**record, "total_steps": self.config.steps})

    def _adjusted(self, record: dict[str, Any]) -> None:
        assert self.log is not None
        self._emit(record)
        changes = {
            f"adaptive/{name}_change": record["weights"][name] / record["previous"][name]
            for name in record["weights"]
            if record["previous"][name] > 0
        }
        self.log.scalars(record["step"], changes)

    # ------------------------------------------------------------------ validation

    def _validate(self) -> None:
        assert self.log is not None
        data, step = self.config.data, self.position.step
        scores = evaluate_clips(
            self.model,
            self.val_clips,
            data.scale,
            data.val_frames,
            data.val_crop,
            frames_per_pass=1 if data.frames == 1 else None,  # a frame model: frame by frame
            keep_centre=self.config.val_images,
        )
        record = {
            "step": step,
            "val_psnr": scores.mean("psnr"),
            "val_ssim": scores.mean("ssim"),
            "val_bicubic_psnr": scores.mean("bicubic_psnr"),
            "val_bicubic_ssim": scores.mean("bicubic_ssim"),
        }
        self.last_validation = record
        self._emit(record)
        self.log.scalars(step, {f"val/{k[4:]}": v for k, v in record.items() if k != "step"})
        if scores.centre_frames:
            self.log.image(step, "val/comparison", scores.comparison_image())
        if self.plateau.observe(record["val_psnr"]):
            self._emit({"step": step, "event": "plateau", "lr_scale": self.plateau.scale})
            self.log.scalars(step, {"events/plateau_lr_scale": self.plateau.scale})
        save, changed = self.checkpoints.observe(step, record["val_psnr"])
        if save:
            self._save("candidate")
        dropped = self.checkpoints.settle()
        if changed and self.checkpoints.best is not None:
            best_step, best_psnr = self.checkpoints.best
            self._emit({"step": step, "event": "best", "best_step": best_step, "psnr": best_psnr})
            self.log.scalars(step, {"events/best_psnr": best_psnr})
        for old in dropped:
            self._emit({"step": step, "event": "candidate_removed", "path": f"step_{old:07d}"})

    # ------------------------------------------------------------------ checkpoints

    def _snapshot(self) -> dict[str, Any]:
        return {
            "position": vars(self.position).copy(),
            "clipper": self.clipper.state_dict(),
            "weights": self.weights.state_dict(),
        }

    def _restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.position = Position(**snapshot["position"])
        self.clipper.load_state_dict(snapshot["clipper"])
        self.weights.load_state_dict(snapshot["weights"])

    def _save(self, kind: Kind) -> Path:
        state = {
            "position": vars(self.position).copy(),
            "optimizer": self.optimizer.state_dict(),
            "clipper": self.clipper.state_dict(),
            "plateau": self.plateau.state_dict(),
            "weights": self.weights.state_dict(),
            "plan": asdict(self.plan),
            "rng": checkpoints.rng_state(),
            "emergency": kind == "emergency",
            "config": self.config.model_dump(mode="json"),
        }
        weights = {"generator": self.model.state_dict()}
        saved = self.checkpoints.save(self.position.step, weights, state, kind)
        event = "emergency_checkpoint" if kind == "emergency" else f"{kind}_checkpoint"
        self._emit({"step": self.position.step, "event": event, "path": saved.name})
        if self.log is not None:
            self.log.scalars(self.position.step, {"events/checkpoint": CHECKPOINT_CODES[kind]})
        return saved

    def _resume(self, folder: Path) -> None:
        checkpoint = checkpoints.resolve(folder)
        if checkpoint is None:
            raise BadInputError(f"{folder}: no checkpoint to resume from")
        state = checkpoints.load_checkpoint(checkpoint, {"generator": self.model})
        with checkpoints.restoring(checkpoint):
            self.optimizer.load_state_dict(state["optimizer"])
            self.clipper.load_state_dict(state["clipper"])
            self.plateau.load_state_dict(state["plateau"])
            self.weights.load_state_dict(state["weights"])
            self.checkpoints.load_state_dict(state["checkpoint_manager"])
            self.plan = Candidate(**state["plan"])
            checkpoints.restore_rng_state(state["rng"])
            self.position = Position(**state["position"])
