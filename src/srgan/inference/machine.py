"""What CPU this is, told without importing PyTorch: model name and instruction-set flags.

Backend speed depends on the CPU's vector units (an AVX-512 Xeon favours ONNX Runtime's
convolutions, an AVX2 EPYC ncnn's), so the flags key the cached backend choices.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform

# The flags that decide which kernels the backends pick; shown in tables and headers.
NOTABLE_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimdhp",
    "sve",
)


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty elsewhere than Linux)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if not line.strip():
                    if fields:
                        break
                    continue
                name, _, value = line.partition(":")
                fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model_name() -> str:
    info = _cpuinfo()
    return info.get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("Features") or "").split())


def notable_flags() -> list[str]:
    """The instruction-set extensions that matter for inference speed, in a fixed order."""
    flags = cpu_flags()
    return [flag for flag in NOTABLE_FLAGS if flag in flags]


def cpu_signature() -> str:
    """A short digest of everything that names this CPU's speed: model, architecture and
    every flag (microcode-level flags included: they are cheap to over-count)."""
    text = "|".join([cpu_model_name(), platform.machine(), *sorted(cpu_flags())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def has_vnni() -> bool:
    """Whether int8 dot products run without 16-bit saturation (VNNI, AMX or Arm dotprod)."""
    flags = cpu_flags()
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})


def describe_cpu() -> str:
    """'Intel(R) Xeon(R) ... (avx2, fma, avx512f, ...)', for benchmark headers."""
    flags = notable_flags()
    return f"{cpu_model_name()} ({', '.join(flags) if flags else 'no notable flags'})"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for benchmark tables ('-' where unknown)."""
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "-"
