"""`srgan devices`: the CPUs and GPUs here, what each backend can use, and the backend
choices measured on this machine."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from srgan.cli import console

if TYPE_CHECKING:
    from srgan.inference.backends.choice import Choice


def devices(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List CPUs and GPUs, their free memory, the backends that can run on each, and the
    backend `--backend auto` picked for each model here, with the times behind it."""
    from srgan.inference.devices import cached_choices, describe_devices

    found = describe_devices()
    choices = cached_choices()
    if as_json:
        rows = [d.as_dict() for d in found]
        rows[0]["backend_choices"] = [c.as_dict() for c in choices]
        console.print_result(json.dumps(rows, indent=2))
        return
    lines = [f"{'device':<8}{'free GB':>8}  {'backends':<26}description"]
    for device in found:
        details = ", ".join(f"{k} {v}" for k, v in device.details.items())
        lines.append(
            f"{device.name:<8}{device.memory_gb:>8.1f}  {', '.join(device.backends):<26}"
            f"{device.description} ({details})"
        )
    lines += ["", choices_table(choices)]
    console.print_result("\n".join(lines))


def choices_table(choices: Sequence[Choice]) -> str:
    """The measured `--backend auto` choices: model, precision, threads, the pick, the time
    of every backend on the probe, and when."""
    if not choices:
        return (
            "backend auto: nothing measured on this CPU yet (the first run of a model "
            "measures; `srgan benchmark --calibrate -m MODEL` does it now)"
        )
    header = (
        f"{'model':<16}{'precision':<10}{'threads':>7}  {'auto picks':<13}{'measured':<18}"
        "ms per probe tile"
    )
    lines = ["backend auto, as measured on this CPU:", header]
    for choice in choices:
        ordered = sorted(choice.probe.times.items(), key=lambda item: (item[1], item[0]))
        times = ", ".join(f"{name} {seconds * 1000:.1f}" for name, seconds in ordered)
        times += "".join(f", {name} failed" for name in choice.probe.errors)
        side = choice.probe.side
        times += f" ({side}x{side})"
        if choice.probe.large_times:
            large = sorted(choice.probe.large_times.items(), key=lambda item: (item[1], item[0]))
            big = choice.probe.large_side
            times += "; " + ", ".join(f"{name} {s * 1000:.1f}" for name, s in large)
            times += f" ({big}x{big}, decides)"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(choice.measured_at))
        lines.append(
            f"{choice.key.name:<16}{choice.key.precision:<10}{choice.key.threads:>7}  "
            f"{choice.backend:<13}{when:<18}{times}"
        )
    return "\n".join(lines)
