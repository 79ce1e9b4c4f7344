"""Configuration files (TOML, YAML or JSON) read into plain dicts, and pydantic errors
turned into one line that names the bad key. Shared by the trainers and the server.

A config file is hostile input like any other. Whatever goes wrong, the error is one
line naming the file (and the dotted key where there is one):

- only regular files up to 1 MiB, UTF-8 (with or without a BOM); UTF-16 and other
  encodings are named;
- syntax errors of all three formats, with their line;
- nesting deeper than 32 levels (or deep enough to exhaust Python's stack), and more
  than 100 000 values (YAML aliases can make a small file huge);
- non-finite floats (TOML `inf`/`nan`, JSON `Infinity`/`NaN`, YAML `.inf`/`.nan`, and
  overflowing literals such as `1e400`), so every schema inherits the rule;
- integers outside a signed 64-bit range, including those too long for Python to read.

`--set key=value` overrides go through the same value rules (`parse_override`).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from srgan.errors import BadInputError

MAX_CONFIG_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_VALUES = 100_000
INT_LIMIT = 2**63  # settings are C integers below: seeds, counts, sizes
_LONG_DIGITS = 40  # integer literals longer than this are out of range however written


class _HugeInt:
    """An integer literal too long to be a setting, kept unread (reading a 5000-digit
    literal is refused by Python itself) so that the error can name its key."""

    def __init__(self, text: str) -> None:
        self.digits = sum(c.isdigit() for c in text)


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise BadInputError(f"{path}: no such config file")
    if not path.is_file():
        raise BadInputError(f"{path}: not a regular file (a config file is TOML, YAML or JSON)")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise BadInputError(f"{path}: use a .toml, .yaml or .json config file")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise BadInputError(f"{path}: over 1 MiB, too big for a config file")
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read it ({exc.strerror})") from exc
    text = _decode(raw, path)
    try:
        data = _parse(text, suffix, path)
    except RecursionError:
        raise BadInputError(f"{path}: nested too deeply to read") from None
    if data is None and suffix != ".json":
        data = {}  # an empty YAML file
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: expected a table of settings")
    check_values(data, str(path))
    return data


def parse_override(key: str, text: str) -> Any:
    """A `--set key=value` value: JSON when it parses (numbers, true, lists, quoted
    strings), else the plain string; checked like a config file's values."""
    try:
        value = json.loads(text, parse_int=_int, parse_constant=float)
    except RecursionError:
        raise BadInputError(f"--set {key}: nested too deeply") from None
    except ValueError:
        return text  # plain strings and paths need no quotes on the command line
    check_values(value, "--set", key)
    return value


def check_values(data: Any, source: str, prefix: str = "") -> None:
    """Refuse non-finite floats, out-of-range integers, deep nesting and too many
    values anywhere in `data`, naming `source` and the dotted key."""
    stack: list[tuple[str, Any, int]] = [(prefix, data, 0)]
    seen = 0
    while stack:
        key, value, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise BadInputError(f"{source}: more than {MAX_VALUES:,} values (YAML aliases?)")
        shown = key if len(key) <= 60 else key[:57] + "..."
        where = f"{source}: {shown}: " if key else f"{source}: "
        if depth > MAX_DEPTH:
            raise BadInputError(f"{where}nested more than {MAX_DEPTH} levels")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInputError(f"{where}{value} is not a finite number")
        if isinstance(value, _HugeInt):
            raise BadInputError(f"{where}an integer of {value.digits} digits is out of range")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= INT_LIMIT:
            raise BadInputError(f"{where}{_short(value)} is out of range (at most 2**63 - 1)")
        stack.extend((_join(key, k), v, depth + 1) for k, v in _children(value))


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        yield from ((str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        yield from ((f"[{i}]", v) for i, v in enumerate(value))


def _join(key: str, child: str) -> str:
    return f"{key}{child}" if child.startswith("[") or not key else f"{key}.{child}"


def _short(value: int) -> str:
    digits = len(str(value))
    return str(value) if digits <= 30 else f"an integer of {digits} digits"


def _int(text: str) -> int | _HugeInt:
    return _HugeInt(text) if len(text) > _LONG_DIGITS else int(text)


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:4096]:
        raise BadInputError(f"{path}: is UTF-16 (or binary), not UTF-8 text: save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BadInputError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}): save it as UTF-8"
        ) from None


def _parse(text: str, suffix: str, path: Path) -> Any:
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise BadInputError(f"{path}: {_one_line(exc)}") from None
        except ValueError as exc:  # tomllib has no hook for integers: find the long one
            raise BadInputError(f"{path}: {_long_toml_integer(text) or _one_line(exc)}") from None
    if suffix == ".json":
        try:
            return json.loads(text, parse_int=_int, parse_constant=float)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}: {exc.msg} (line {exc.lineno})") from None
    return _parse_yaml(text, path)


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        """The safe loader, keeping overlong integers unread (see `_HugeInt`)."""

        def construct_yaml_int(self, node: yaml.Node) -> Any:  # type: ignore[override]
            value = str(node.value)
            if sum(c.isdigit() for c in value) > _LONG_DIGITS:
                return _HugeInt(value)
            return super().construct_yaml_int(node)  # type: ignore[arg-type]

    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
    loader = Loader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "not YAML"
        raise BadInputError(f"{path}: {' '.join(str(problem).split())}{where}") from None
    except yaml.YAMLError as exc:
        raise BadInputError(f"{path}: {_one_line(exc)}") from None
    finally:
        loader.dispose()


_TOML_KEY = re.compile(r"\s*([\w.\"'-]+)\s*=")
_TOML_TABLE = re.compile(r"\s*\[+\s*([\w.\"' -]+?)\s*\]+")


def _long_toml_integer(text: str) -> str | None:
    """Where a TOML integer too long to read is: `key: an integer of N digits ...`."""
    table = ""
    for number, line in enumerate(text.splitlines(), 1):
        if header := _TOML_TABLE.match(line):
            table = header.group(1).replace(" ", "")
            continue
        run = re.search(r"\d[\d_]{%d,}" % _LONG_DIGITS, line)  # noqa: UP031
        if run:
            key = _TOML_KEY.match(line)
            name = ".".join(part for part in (table, key.group(1) if key else "") if part)
            digits = sum(c.isdigit() for c in run.group())
            prefix = f"{name}: " if name else ""
            return f"{prefix}an integer of {digits} digits is out of range (line {number})"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def invalid_config(exc: ValidationError, path: Path | None) -> BadInputError:
    """`path: section.key: what is wrong (and N more)`."""
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "config"
    source = f"{path}: " if path else ""
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return BadInputError(f"{source}{key}: {first['msg']}{more}")
