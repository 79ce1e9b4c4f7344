"""What a training run leaves behind to be watched: `training.log` (one JSON object per
line), `status.json` (rewritten atomically), TensorBoard scalars and images under
`tensorboard/`, and validation comparison images under `samples/`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srgan.imaging.io import write_bytes_atomically
from srgan.inference.memory_profile import peak_rss_bytes


class RunLog:
    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.run_dir = run_dir
        self.writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def record(self, record: dict[str, Any]) -> None:
        with (self.run_dir / "training.log").open("a") as stream:
            stream.write(json.dumps(record) + "\n")

    def status(self, status: dict[str, Any]) -> None:
        write_bytes_atomically(self.run_dir / "status.json", json.dumps(status).encode())

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is None:
            return
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def image(self, step: int, tag: str, pixels: np.ndarray) -> Path:
        """An HWC uint8 RGB image, to TensorBoard and to samples/<tag>_<step>.png."""
        from srgan.imaging.io import Image, ImageMeta, write_image

        path = self.run_dir / "samples" / f"{tag.replace('/', '_')}_{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, Image(pixels, ImageMeta()))
        if self.writer is not None:
            self.writer.add_image(tag, pixels, step, dataformats="HWC")
            self.writer.flush()
        return path

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def memory_megabytes(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process, and peak GPU memory on a CUDA device."""
    memory = {"peak_rss_mb": peak_rss_bytes() / 2**20}
    if device.type == "cuda":
        memory["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return memory
