"""Per-check settings ``{check_id: {param: value}}`` from a file or ``[tool.repcurate.check]``."""
from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path
from typing import Any

from repcurate.checks.registry import CHECKS
from repcurate.errors import UsageError

#: Top-level keys that are not check ids.
SUITE_KEYS = frozenset({"skip"})


def _closest(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.0)
    return f"; did you mean {match[0]!r}?" if match else ""


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML or JSON file; in a ``pyproject.toml`` the ``[tool.repcurate.check]`` table."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the config ({exc.strerror}); fix: pass an existing --config file") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: invalid {'JSON' if path.suffix.lower() == '.json' else 'TOML'} ({exc})") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("repcurate", {}).get("check", {})
    return data


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

    An unknown check id or parameter is an error naming the closest valid one; a value of the wrong
    type is an error too.
    """
    by_id = {c.id: c for c in CHECKS}
    resolved = {c.id: dict(c.defaults) for c in CHECKS}
    for check_id, settings in config.items():
        if check_id in SUITE_KEYS:
            continue
        if check_id not in by_id:
            raise UsageError(f"{source}: unknown check {check_id!r}{_closest(check_id, list(by_id))}")
        if not isinstance(settings, dict):
            raise UsageError(f"{source}: [{check_id}] must be a table of parameters")
        defaults = by_id[check_id].defaults
        for key, value in settings.items():
            if key not in defaults:
                raise UsageError(f"{source}: unknown parameter {check_id}.{key}{_closest(key, list(defaults))}")
            expected = type(defaults[key])
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or isinstance(value, bool) != isinstance(defaults[key], bool):
                raise UsageError(f"{source}: {check_id}.{key} must be {expected.__name__}, got {value!r}")
            resolved[check_id][key] = value
    return resolved


def skipped_ids(config: dict[str, Any], *, source: str = "config") -> list[str]:
    """Check ids listed under ``skip`` (validated)."""
    skip = config.get("skip", [])
    ids = [c.id for c in CHECKS]
    if not isinstance(skip, list):
        raise UsageError(f"{source}: skip must be a list of check ids")
    for item in skip:
        if item not in ids:
            raise UsageError(f"{source}: unknown check {item!r} in skip{_closest(str(item), ids)}")
    return list(skip)
