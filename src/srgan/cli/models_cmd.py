"""`srgan models`: the named models, where they come from, and whether they are cached."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from srgan.cli import console


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the named models: architecture, scale, parameters, source, licence, cache, and
    the measured quality of their int8 versions (`--precision int8`)."""
    from srgan.zoo.catalog import model_catalog
    from srgan.zoo.pretrained import INT8_VISIBLE_LOSS_DB

    rows = model_catalog()
    if as_json:
        console.print_result(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    header = (
        f"{'name':<15}{'architecture':<17}{'scale':>5}{'params':>9}  {'cached':<7}"
        f"{'int8 dB':<9}description"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        params = f"{row.parameters / 1e6:.2f}M" if row.parameters else "-"
        cached = "yes" if row.cached else "no" if row.cached is not None else "-"
        int8 = "-" if row.int8_psnr_vs_fp32 is None else f"{row.int8_psnr_vs_fp32:.1f}"
        int8 += "*" if row.int8_loses_quality else ""
        lines.append(
            f"{row.name:<15}{row.architecture:<17}{row.scale:>5}{params:>9}  {cached:<7}"
            f"{int8:<9}{row.description}"
        )
    lines.append("")
    lines.append(
        "int8 dB: PSNR of `--precision int8` against fp32 (Y, Set14 x4; benchmarks/"
        f"int8_quality.py); * visible loss (under {INT8_VISIBLE_LOSS_DB:.0f} dB): keep fp32"
    )
    lines.append(f"source: {rows[-1].source}; licence: {rows[-1].licence}")
    console.print_result("\n".join(lines))
