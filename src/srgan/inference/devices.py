"""What this machine offers: CPUs, GPUs, and the inference backends that can use them."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import torch

from srgan.inference.backends import BACKENDS, choice_cache
from srgan.inference.backends.base import installed
from srgan.inference.backends.choice import Choice
from srgan.inference.machine import cpu_model_name, cpu_signature, notable_flags
from srgan.inference.tiling import available_memory_bytes


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # as given to --device: cpu, cuda:0, mps
    description: str
    memory_gb: float  # free memory usable for tiles
    backends: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def cached_choices() -> list[Choice]:
    """The backend choices measured on this CPU (any model, thread count, precision)."""
    here = cpu_signature()
    return [c for c in choice_cache().entries() if c.key.cpu_signature == here]


def describe_devices() -> list[DeviceInfo]:
    cpu_backends = [backend.name for backend in BACKENDS if installed(backend)]
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
                "flags": " ".join(notable_flags()),
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
