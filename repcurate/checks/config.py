"""Per-check settings ``{check_id: {param: value}}`` from a file or ``[tool.repcurate.check]``."""
from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path
from typing import Any

from repcurate.checks.registry import registered
from repcurate.errors import UsageError
from repcurate.io.safe_read import UnsafeFile, read_bytes

#: Top-level keys that are not check ids.
SUITE_KEYS = frozenset({"skip"})


def _closest(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.0)
    return f"; did you mean {match[0]!r}?" if match else ""


def _kind(value: Any) -> str:
    """What a parsed TOML/JSON value is, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names: dict[type, str] = {str: "a string", list: "a list", dict: "a table"}
    return names.get(type(value), f"a {type(value).__name__}")


def _not_a_table(where: str, value: Any) -> UsageError:
    return UsageError(f"{where} must be a table {{check_id: {{param: value}}}}, got {_kind(value)}; "
                      "fix: see docs/checks.md for the format")


def _table(data: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _not_a_table(f"{path}: {where}", data)
    return data


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML or JSON file; in a ``pyproject.toml`` the ``[tool.repcurate.check]`` table."""
    try:
        text = read_bytes(path, "config").decode("utf-8")
    except (UnsafeFile, UnicodeDecodeError) as exc:
        reason = exc.detail if isinstance(exc, UnsafeFile) else "not UTF-8 text"
        raise UsageError(f"{path}: cannot read the config ({reason}); fix: pass an existing --config file") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, RecursionError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: invalid {'JSON' if path.suffix.lower() == '.json' else 'TOML'} ({exc})") from None
    if path.name == "pyproject.toml":
        for key in ("tool", "repcurate", "check"):
            if not isinstance(data, dict):
                break
            data = data.get(key, {})
        return _table(data, path, "[tool.repcurate.check]")
    return _table(data, path, "the config")


def discover_config(start: Path) -> tuple[dict[str, Any], Path | None]:
    """``[tool.repcurate.check]`` of the nearest ``pyproject.toml`` at or above ``start``."""
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            data = read_config_file(candidate)
            return data, (candidate if data else None)
    return {}, None


def resolve_params(config: dict[str, Any], *, source: str = "config") -> dict[str, dict[str, Any]]:
    """Validated parameters for every check: defaults overlaid with ``config``.

    An unknown check id or parameter is an error naming the closest valid one; a value outside the
    parameter's declared :class:`~repcurate.checks.base.Param` range (or of the wrong type) is an
    error naming the parameter and the values it may take.
    """
    if not isinstance(config, dict):
        raise _not_a_table(f"{source}: the config", config)
    by_id = {c.id: c for c in registered()}
    resolved = {c.id: dict(c.defaults) for c in registered()}
    for check_id, settings in config.items():
        if check_id in SUITE_KEYS:
            continue
        if check_id not in by_id:
            raise UsageError(f"{source}: unknown check {check_id!r}{_closest(str(check_id), list(by_id))}")
        if not isinstance(settings, dict):
            raise UsageError(f"{source}: [{check_id}] must be a table of parameters")
        declared = by_id[check_id].parameters
        for key, value in settings.items():
            if key not in declared:
                raise UsageError(f"{source}: unknown parameter {check_id}.{key}{_closest(str(key), list(declared))}")
            try:
                resolved[check_id][key] = declared[key].validate(value)
            except ValueError as exc:
                raise UsageError(f"{source}: {check_id}.{key} must be {exc}, got {value!r}") from None
    return resolved


def skipped_ids(config: dict[str, Any], *, source: str = "config") -> list[str]:
    """Check ids listed under ``skip`` (validated; a required check cannot be skipped)."""
    if not isinstance(config, dict):
        raise _not_a_table(f"{source}: the config", config)
    skip = config.get("skip", [])
    by_id = {c.id: c for c in registered()}
    if not isinstance(skip, list):
        raise UsageError(f"{source}: skip must be a list of check ids")
    for item in skip:
        if not isinstance(item, str) or item not in by_id:
            raise UsageError(f"{source}: unknown check {item!r} in skip{_closest(str(item), list(by_id))}")
        if by_id[item].required:
            raise UsageError(f"{source}: {item} cannot be skipped (without it the gate would pass on nothing); "
                             f"fix: remove it from skip")
    return list(skip)
