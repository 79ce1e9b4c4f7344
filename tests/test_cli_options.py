"""Options that several commands take are declared once (`srgan.cli.common`): the same
name means the same help text and bounds wherever it appears."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import typer

from srgan.cli.main import app

SHARED = ("--device", "--backend", "--tile", "--tile-pad", "--half", "--bf16")
# `srgan benchmark` takes lists of backends and devices to time, a different option;
# `srgan compare --tile` defaults to whole images when it scores against --hr.
OWN_MEANING = {"benchmark"}
OWN_OPTIONS = {("compare", "--tile")}


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every command and sub-group of a Typer group (whose own options are those of
    `srgan serve`); Typer carries its own click, hence no isinstance."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        found[f"{prefix}{name}"] = command
        if hasattr(command, "commands"):
            found.update(_commands(command, f"{prefix}{name} "))
    return found


def test_shared_options_read_the_same_in_every_command():
    root = typer.main.get_command(app)
    seen: dict[str, dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, command in _commands(root).items():
        if name in OWN_MEANING:
            continue
        for param in command.params:
            for option in set(getattr(param, "opts", [])) & set(SHARED):
                if (name, option) in OWN_OPTIONS:
                    continue
                help_text = (getattr(param, "help", "") or "").removesuffix(
                    " Default: from the config."
                )
                bounds = (getattr(param, "min", None), getattr(param, "max", None))
                seen[option][(help_text, bounds, tuple(param.opts))].append(name)
    assert {"upscale", "video", "serve", "train", "train-vsr"} <= {
        command for variants in seen["--device"].values() for command in variants
    }
    assert len(seen["--tile"][next(iter(seen["--tile"]))]) >= 2  # upscale and video
    for option, variants in seen.items():
        assert len(variants) == 1, f"{option} is declared differently: {dict(variants)}"
