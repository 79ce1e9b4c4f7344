"""`srgan serve`: the web API and pages; `srgan serve keys add|list|revoke`: API keys;
`srgan serve votes`: the A/B page's results."""

from __future__ import annotations

import datetime
import importlib.util
import json
from pathlib import Path
from typing import Annotated

import typer

from srgan.cli import console
from srgan.cli.common import BackendOrConfig, DeviceOrConfig
from srgan.errors import SrganError

serve_app = typer.Typer(
    help="Run the web API and page (see docs/SERVING.md), and manage its API keys.",
    no_args_is_help=False,
)
keys_app = typer.Typer(
    help="Manage API keys (in the data folder's database).", no_args_is_help=True
)
serve_app.add_typer(keys_app, name="keys")

ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings file (TOML, YAML or JSON); flags override it."),
]
DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Jobs, results, cache and keys (default ./srgan-data)."),
]


@serve_app.callback(invoke_without_command=True)
def serve(
    context: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", min=0, max=65535, help="Port (default 8080; 0: any free)."),
    ] = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    require_keys: Annotated[
        bool | None,
        typer.Option(
            "--require-keys/--no-require-keys",
            help="Require API keys (default: only when the host is not loopback).",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Jobs computed at once (default 1).")
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Allow browser calls from this origin (repeatable)."),
    ] = None,
    device: DeviceOrConfig = None,
    backend: BackendOrConfig = None,
    access_log: Annotated[
        bool | None, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = None,
) -> None:
    """Serve the web API (/v1, docs at /docs) and the page at /.

    Jobs, results, the result cache and API keys live in --data-dir; a restart loses no
    job. Stop with Ctrl-C or SIGTERM: running jobs go back to the queue.
    """
    if context.invoked_subcommand is not None:
        return
    _check_installed()
    from srgan.serve.settings import load_settings

    settings = load_settings(
        config,
        host=host,
        port=port,
        data_dir=data_dir,
        require_keys=require_keys,
        workers=workers,
        cors_origins=tuple(cors_origin) if cors_origin else None,
        device=device,
        backend=backend,
        access_log=access_log,
    )
    from srgan.serve.server import run_server

    def ready(url: str) -> None:
        keys = "required" if settings.keys_required else "not required"
        console.note(f"serving on {url} (page at /, API docs at /docs); API keys {keys}")
        console.note(f"data folder: {settings.data_dir.resolve()}")
        if settings.keys_required and not any(
            k.active for k in _keys_in(settings.database_path).list_keys()
        ):
            console.note(
                f"no API key yet: make one with `srgan serve keys add NAME --data-dir "
                f"{settings.data_dir}`"
            )

    run_server(settings, ready)


def _check_installed() -> None:
    missing = [
        n for n in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(n) is None
    ]
    if missing:
        raise SrganError(f"srgan serve needs {', '.join(missing)}: pip install 'srgan[serve]'")


def _key_store(config: Path | None, data_dir: Path | None):
    from srgan.serve.settings import load_settings

    return _keys_in(load_settings(config, data_dir=data_dir).database_path)


def _keys_in(database_path: Path):
    from srgan.serve.auth import KeyStore
    from srgan.serve.database import Database

    return KeyStore(Database(database_path))


@keys_app.command("add")
def add_key(
    name: Annotated[str, typer.Argument(help="Who or what the key is for, e.g. 'alice'.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Make a new key and print it (only now: just its hash is stored)."""
    record, key = _key_store(config, data_dir).add(name)
    console.note(f"key {record.id} for {record.name!r}: keep it secret, it is not shown again")
    console.print_result(key)


@keys_app.command("list")
def list_keys(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the keys: id, name, created, revoked."""
    keys = _key_store(config, data_dir).list_keys()
    if as_json:
        rows = [
            {"id": k.id, "name": k.name, "created_at": k.created_at, "revoked_at": k.revoked_at}
            for k in keys
        ]
        console.print_result(json.dumps(rows, indent=2))
        return
    lines = [f"{'id':<14}{'created':<18}{'revoked':<18}name"]
    for key in keys:
        revoked = _time(key.revoked_at) if key.revoked_at else "-"
        lines.append(f"{key.id:<14}{_time(key.created_at):<18}{revoked:<18}{key.name}")
    console.print_result("\n".join(lines))


@keys_app.command("revoke")
def revoke_key(
    key: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="The key's id or name.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Revoke one key, named by its id or its name: the server refuses it from the next
    request on. A text that matches no key, or two (one's id, another's name), is an
    error (exit 2)."""
    revocation = _key_store(config, data_dir).revoke(key)
    record = revocation.key
    if revocation.already_revoked and record.revoked_at is not None:
        console.note(
            f"key {record.id} ({record.name!r}) was already revoked on {_time(record.revoked_at)}"
        )
        return
    console.note(f"revoked key {record.id} ({record.name!r}, matched by {revocation.matched_by})")


@serve_app.command("votes")
def votes(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The blind A/B votes of the /compare page, per pair of models: wins, "same", and
    the first model's win rate (ties left out) with its 95% Wilson score interval."""
    from srgan.serve.ab import TrialStore
    from srgan.serve.database import Database
    from srgan.serve.settings import load_settings

    settings = load_settings(config, data_dir=data_dir)
    if not settings.database_path.is_file():
        raise SrganError(f"{settings.data_dir}: no server database here (no votes yet)")
    tallies = TrialStore(Database(settings.database_path)).tallies()
    if as_json:
        console.print_result(json.dumps([t.as_dict() for t in tallies], indent=2))
        return
    if not tallies:
        console.print_result("no votes yet")
        return
    pairs = [f"{t.first} vs {t.second}" for t in tallies]
    width = max(4, *(len(p) for p in pairs))
    lines = [f"{'pair':<{width}}  votes  {'wins':>9}  same  win rate of the first (95% interval)"]
    for pair, tally in zip(pairs, tallies, strict=True):
        wins = f"{tally.first_wins} : {tally.second_wins}"
        rate, interval = tally.first_rate, tally.interval
        shown = (
            "-"
            if rate is None or interval is None
            else (f"{rate:.0%} ({interval[0]:.0%} - {interval[1]:.0%})")
        )
        lines.append(f"{pair:<{width}}  {tally.votes:>5}  {wins:>9}  {tally.same:>4}  {shown}")
    console.print_result("\n".join(lines))


def _time(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")
