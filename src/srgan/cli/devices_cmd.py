"""`srgan devices`: the CPUs and GPUs here and what each backend can use."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from srgan.cli import console


def devices(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List CPUs and GPUs, their free memory, and the backends that can run on each."""
    from srgan.inference.devices import describe_devices

    found = describe_devices()
    if as_json:
        console.print_result(json.dumps([d.as_dict() for d in found], indent=2))
        return
    lines = [f"{'device':<8}{'free GB':>8}  {'backends':<26}description"]
    for device in found:
        details = ", ".join(f"{k} {v}" for k, v in device.details.items())
        lines.append(
            f"{device.name:<8}{device.memory_gb:>8.1f}  {', '.join(device.backends):<26}"
            f"{device.description} ({details})"
        )
    console.print_result("\n".join(lines))
