"""What this machine offers: CPUs, GPUs, and the inference backends that can use them."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field

import torch

from srgan.inference.tiling import available_memory_bytes
from srgan.zoo.selection import CPU_BACKENDS, installed


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # as given to --device: cpu, cuda:0, mps
    description: str
    memory_gb: float  # free memory usable for tiles
    backends: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_devices() -> list[DeviceInfo]:
    cpu_backends = ["torch", *(name for name in CPU_BACKENDS if installed(name))]
    devices = [
        DeviceInfo(
            "cpu",
            cpu_model_name(),
            available_memory_bytes("cpu") / 1e9,
            cpu_backends,
            {
                "cores": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "torch": torch.__version__,
            },
        )
    ]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append(
                DeviceInfo(
                    f"cuda:{index}",
                    props.name,
                    available_memory_bytes(f"cuda:{index}") / 1e9,
                    ["torch"],
                    {
                        "total_memory_gb": round(props.total_memory / 1e9, 1),
                        "compute_capability": f"{props.major}.{props.minor}",
                        "bf16": torch.cuda.is_bf16_supported(),
                        "cuda": torch.version.cuda,
                    },
                )
            )
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append(
            DeviceInfo("mps", "Apple Metal", available_memory_bytes("cpu") / 1e9, ["torch"])
        )
    return devices
