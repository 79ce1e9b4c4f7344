"""The `srgan` command: one Typer app, one module per command group."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from srgan import __version__
from srgan.cli import console
from srgan.cli.bench_cmds import benchmark, profile_memory
from srgan.cli.compare_cmd import compare
from srgan.cli.convert_cmd import convert
from srgan.cli.dataset_cmds import dataset_app
from srgan.cli.devices_cmd import devices
from srgan.cli.metric_cmds import evaluate, psnr
from srgan.cli.models_cmd import models
from srgan.cli.quantize_cmd import quantize
from srgan.cli.resize_cmds import downscale, upscale
from srgan.cli.serve_cmd import serve_app
from srgan.cli.train_cmd import train
from srgan.cli.train_vsr_cmd import train_vsr
from srgan.cli.video_cmd import video
from srgan.errors import SrganError

app = typer.Typer(
    name="srgan",
    help="Image and video super-resolution: upscale, evaluate, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("upscale")(upscale)
app.command("batch-process")(upscale)
app.command("batch", hidden=True)(upscale)
app.command("downscale")(downscale)
app.command("video")(video)
app.command("psnr")(psnr)
app.command("eval")(evaluate)
app.command("compare")(compare)
app.command("convert")(convert)
app.command("models")(models)
app.command("devices")(devices)
app.command("benchmark")(benchmark)
app.command("quantize")(quantize)
app.add_typer(dataset_app, name="dataset")
app.command("train")(train)
app.command("train-vsr")(train_vsr)
app.command("profile-memory")(profile_memory)
app.add_typer(serve_app, name="serve")

GLOBAL_FLAGS = {"-q", "--quiet", "-v", "--verbose", "--version"}


def _show_version(value: bool) -> None:
    if value:
        console.print_result(f"srgan {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors: no progress, no warnings.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Explain each step.")] = False,
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """srgan: image and video super-resolution.

    Exit codes: 0 success, 1 failure, 2 bad usage or bad input.
    """
    console.configure(quiet=quiet, verbose=verbose and not quiet)


def hoist_global_flags(argv: list[str]) -> list[str]:
    """Let -q/-v/--version appear anywhere before `--` (`srgan upscale a b -q`)."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [arg for arg in argv[:end] if arg in GLOBAL_FLAGS]
    rest = [arg for arg in argv[:end] if arg not in GLOBAL_FLAGS]
    return flags + rest + argv[end:]


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps srgan errors to one line and an exit code."""
    args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="srgan")
    except SrganError as exc:
        console.error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(130)
    except MemoryError:
        console.error("out of memory: try a smaller --tile or a smaller image")
        sys.exit(1)
    except Exception as exc:
        if logging.getLogger("srgan").isEnabledFor(logging.INFO):
            raise
        detail = " ".join(str(exc).split())
        console.error(f"unexpected {type(exc).__name__}: {detail} (run with -v for the traceback)")
        sys.exit(1)
