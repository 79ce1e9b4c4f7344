"""ONNX files of an architecture srgan does not have, made in a separate process.

The network is written here as the text of a script that a fresh Python process runs: it
defines the network, exports it in several conventions (NCHW 0-1 RGB with free sizes;
NHWC 0-255 BGR; a fixed 24x24 input; float16) and saves its PyTorch outputs on a test
image. The test process never sees the PyTorch code: only the ONNX files and the outputs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = r'''
import copy, sys, warnings
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

class Oddball(nn.Module):
    """x2: pixel-unshuffled features, a sigmoid-gated residual, a transposed convolution,
    plus the bilinearly enlarged input (no such network in srgan)."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(12, 16, 3, padding=1)
        self.gate = nn.Conv2d(16, 16, 1)
        self.body = nn.Conv2d(16, 16, 3, padding=1)
        self.up = nn.ConvTranspose2d(16, 12, 4, stride=2, padding=1)

    def forward(self, x):
        f = F.gelu(self.down(F.pixel_unshuffle(x, 2)))
        f = f + torch.sigmoid(self.gate(f)) * self.body(f)
        y = F.pixel_shuffle(self.up(f), 2)
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False) + 0.3 * y

class Nhwc255Bgr(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):  # [N, H, W, 3] BGR in 0-255
        rgb = x.permute(0, 3, 1, 2).flip(1) / 255.0
        return (self.net(rgb).flip(1) * 255.0).permute(0, 2, 3, 1)

def export(module, example, path, dynamic, meta=None, dtype=torch.float32):
    axes = {"pixels": dynamic, "result": dynamic} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.to(dtype), (example.to(dtype),), path, opset_version=17,
                          input_names=["pixels"], output_names=["result"],
                          dynamic_axes=axes, dynamo=False)
    if meta:
        import onnx
        model = onnx.load(path)
        for key, value in meta.items():
            prop = model.metadata_props.add()
            prop.key, prop.value = key, value
        onnx.save(model, path)

folder = sys.argv[1]
torch.manual_seed(11)
net = Oddball().eval()
with torch.no_grad():
    for p in net.parameters():
        p.mul_(0.5)
image = np.load(f"{folder}/image.npy")  # [1, 3, H, W] float32 in [0, 1]
with torch.no_grad():
    expected = net(torch.from_numpy(image)).numpy()
np.save(f"{folder}/expected.npy", expected)
export(net, torch.rand(1, 3, 16, 16), f"{folder}/nchw.onnx", {2: "h", 3: "w"})
export(Nhwc255Bgr(net), torch.rand(1, 16, 16, 3) * 255, f"{folder}/nhwc_bgr.onnx",
       {1: "h", 2: "w"}, {"color_order": "BGR", "input_range": "0-255"})
export(net, torch.rand(1, 3, 24, 24), f"{folder}/fixed24.onnx", None)
export(copy.deepcopy(net), torch.rand(1, 3, 16, 16), f"{folder}/fp16.onnx",
       {2: "h", 3: "w"}, dtype=torch.float16)
'''


def make_oddball_models(folder: Path, image: np.ndarray) -> np.ndarray:
    """Write the ONNX files into `folder`; returns PyTorch's output on `image`."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "image.npy", image.astype(np.float32))
    script = folder / "make_oddball.py"
    script.write_text(SCRIPT)
    subprocess.run([sys.executable, str(script), str(folder)], check=True)
    script.unlink()  # the PyTorch code path is gone
    return np.load(folder / "expected.npy")
