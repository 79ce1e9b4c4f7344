"""`srgan models`: the named models, where they come from, and whether they are cached."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from srgan.cli import console


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the named models: architecture, scales, denoise levels, parameters, what each is
    good for, source, licence, cache, and the measured quality of their int8 versions
    (`--precision int8`).

    Real-CUGAN, waifu2x and RealSR come in one file per scale and denoise level: pick with
    --scale and --denoise (-1..3, as their reference programs' -n) or --conservative, or
    name the variant, e.g. anime-cugan-x3-denoise3."""
    from srgan.zoo.catalog import model_catalog
    from srgan.zoo.pretrained import INT8_VISIBLE_LOSS_DB

    rows = model_catalog()
    if as_json:
        console.print_result(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    header = (
        f"{'name':<17}{'architecture':<26}{'scale':>6}{'params':>8}  {'cached':<7}"
        f"{'int8 dB':<9}{'denoise':<42}good for"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        params = f"{row.parameters / 1e6:.2f}M" if row.parameters else "-"
        cached = "yes" if row.cached else "no" if row.cached is not None else "-"
        int8 = "-" if row.int8_psnr_vs_fp32 is None else f"{row.int8_psnr_vs_fp32:.1f}"
        int8 += "*" if row.int8_loses_quality else ""
        lines.append(
            f"{row.name:<17}{row.architecture:<26}{row.scale!s:>6}{params:>8}  {cached:<7}"
            f"{int8:<9}{row.denoise:<42}{row.description}"
        )
    lines.append("")
    sources: dict[str, list[str]] = {}
    for row in rows[1:]:
        sources.setdefault(f"{row.source}; licence {row.licence}", []).append(row.name)
    for source, names in sources.items():
        lines.append(f"{', '.join(names)}: {source}")
    lines.append(
        "\nint8 dB: PSNR of `--precision int8` against fp32 (Y, Set14 x4; benchmarks/"
        f"int8_quality.py); * visible loss (under {INT8_VISIBLE_LOSS_DB:.0f} dB): keep fp32"
    )
    lines.append(
        "Scales and denoise levels pick the file: --scale N, --denoise L (-1..3, as the "
        "reference programs' -n; -1 is Real-CUGAN's conservative and waifu2x's no-denoise "
        "model) or --conservative; or name a variant, e.g. anime-cugan-x3-denoise3."
    )
    console.print_result("\n".join(lines))
