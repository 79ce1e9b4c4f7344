"""A tiny randomly initialised video SR network saved as a training checkpoint would be."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from srgan.archs.vsr import BidirectionalRecurrentVSR

TINY_VSR = {"num_features": 6, "num_blocks": 1, "scale": 2}


def tiny_vsr(seed: int = 0, residual_gain: float = 0.1) -> BidirectionalRecurrentVSR:
    """Random weights; the learned residual is scaled by `residual_gain` so that outputs
    stay close to the (bilinear) upsampled frames and pictures remain recognisable."""
    torch.manual_seed(seed)
    model = BidirectionalRecurrentVSR(**TINY_VSR).eval()
    with torch.no_grad():
        model.output_conv.weight.mul_(residual_gain)
        model.output_conv.bias.mul_(residual_gain)
    return model


def save_checkpoint(folder: Path, seed: int = 0) -> Path:
    """`folder/generator.safetensors`, the layout of a training checkpoint folder."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tiny_vsr(seed).state_dict(), str(folder / "generator.safetensors"))
    return folder


def run_network(model: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """The network on a whole (T, H, W, C) uint8 clip, quantised as the upscaler does."""
    clip = torch.from_numpy(frames.astype(np.float32) / np.float32(255)).permute(0, 3, 1, 2)
    with torch.no_grad():
        out = model(clip[None])[0].permute(0, 2, 3, 1).numpy()
    out = np.clip(out, 0.0, 1.0) * np.float32(255)
    return np.rint(out).astype(np.uint8)
