"""Configuration files (TOML, YAML or JSON) read into plain dicts, and pydantic errors
turned into one line that names the bad key. Shared by the trainers and the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from srgan.errors import BadInputError


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BadInputError(f"{path}: no such config file")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise BadInputError(f"{path}: use a .toml, .yaml or .json config file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise BadInputError(f"{path}: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: expected a table of settings")
    return data


def invalid_config(exc: ValidationError, path: Path | None) -> BadInputError:
    """`path: section.key: what is wrong (and N more)`."""
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "config"
    source = f"{path}: " if path else ""
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return BadInputError(f"{source}{key}: {first['msg']}{more}")
