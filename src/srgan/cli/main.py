"""The `srgan` command: one Typer app, one module per command group."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Annotated

import typer

from srgan import __version__
from srgan.cli import console
from srgan.errors import SrganError

# name -> (module, attribute, hidden). Only the command being run is imported: the others'
# modules would add a tenth of a second to every start-up.
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "upscale": ("srgan.cli.resize_cmds", "upscale", False),
    "batch-process": ("srgan.cli.resize_cmds", "upscale", False),
    "batch": ("srgan.cli.resize_cmds", "upscale", True),
    "downscale": ("srgan.cli.resize_cmds", "downscale", False),
    "video": ("srgan.cli.video_cmd", "video", False),
    "psnr": ("srgan.cli.metric_cmds", "psnr", False),
    "eval": ("srgan.cli.metric_cmds", "evaluate", False),
    "compare": ("srgan.cli.compare_cmd", "compare", False),
    "convert": ("srgan.cli.convert_cmd", "convert", False),
    "models": ("srgan.cli.models_cmd", "models", False),
    "devices": ("srgan.cli.devices_cmd", "devices", False),
    "benchmark": ("srgan.cli.bench_cmds", "benchmark", False),
    "quantize": ("srgan.cli.quantize_cmd", "quantize", False),
    "dataset": ("srgan.cli.dataset_cmds", "dataset_app", False),
    "train": ("srgan.cli.train_cmd", "train", False),
    "train-vsr": ("srgan.cli.train_vsr_cmd", "train_vsr", False),
    "profile-memory": ("srgan.cli.bench_cmds", "profile_memory", False),
    "serve": ("srgan.cli.serve_cmd", "serve_app", False),
}


def build_app(only: str | None = None) -> typer.Typer:
    """The `srgan` app with every command, or with command `only` alone."""
    app = typer.Typer(
        name="srgan",
        help="Image and video super-resolution: upscale, evaluate, train.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(main)
    for name, (module, attribute, hidden) in COMMANDS.items():
        if only is not None and name != only:
            continue
        command = getattr(importlib.import_module(module), attribute)
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name, hidden=hidden)(command)
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        return build_app()
    raise AttributeError(name)


GLOBAL_FLAGS = {"-q", "--quiet", "-v", "--verbose", "--version"}


def _show_version(value: bool) -> None:
    if value:
        console.print_result(f"srgan {__version__}")
        raise typer.Exit()


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


def _command_named(args: list[str]) -> str | None:
    """The command `args` run, when it is one srgan has (else None: every command is
    registered, for `--help` and for Typer's "no such command")."""
    words = [arg for arg in args if arg not in GLOBAL_FLAGS]
    if not words or words[0] not in COMMANDS:
        return None
    return words[0]


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps srgan errors to one line and an exit code."""
    args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
    try:
        build_app(only=_command_named(args))(args=args, prog_name="srgan")
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
