"""`training_status.txt`: a few plain lines about a run, rewritten atomically every
`status_interval` steps (`cat` or `watch cat` it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from srgan.imaging.io import write_bytes_atomically
from srgan.training.progress import format_duration


def status_text(title: str, record: dict[str, Any], info: dict[str, Any]) -> str:
    """`record`: the step's log record; `info`: total steps, plan, validation, best, the
    recipe's loss line."""
    step, total = record["step"], info["total_steps"]
    clip = record.get("clip_limit")
    lines = [
        title,
        f"step {step} / {total} ({100 * step / total:.1f}%)  phase {record['phase']} "
        f"({record['lr_phase']})  lr {record['lr']:.3g} (plateau factor {info['plateau_scale']:g})",
        f"loss: {info['losses']}",
        f"gradient norm {record['grad_norm']:.4g}"
        + (f" (clip limit {clip:.4g})" if clip is not None else " (no clip limit)"),
        f"speed {record['s_per_step']:.3g} s/step, ETA {format_duration(record['eta_s'])}",
        f"plan: {info['plan']}",
    ]
    validation = info.get("validation")
    if validation:
        lines.append(
            f"validation at step {validation['step']}: PSNR {validation['val_psnr']:.2f} dB "
            f"(bicubic {validation['val_bicubic_psnr']:.2f}), SSIM {validation['val_ssim']:.4f} "
            f"(bicubic {validation['val_bicubic_ssim']:.4f})"
        )
    best = info.get("best")
    if best:
        lines.append(f"best: step {best[0]}, {best[1]:.2f} dB")
    memory = ", ".join(f"{k} {v:.0f}" for k, v in record.items() if k.endswith("_mb"))
    lines += [f"memory: {memory}", f"updated {time.strftime('%Y-%m-%d %H:%M:%S')}", ""]
    return "\n".join(lines)


def write_status(run_dir: Path, text: str) -> None:
    write_bytes_atomically(run_dir / "training_status.txt", text.encode())
