"""A class map: eval class name → the model's class index (``--class-map FILE``, a JSON object), read safely."""
from __future__ import annotations

from pathlib import Path

from repcurate.errors import InputError, UsageError
from repcurate.io.safe_read import UnsafeFile, parse_json, read_bytes

#: A class map as the caller gives it: the mapping itself, or the JSON file holding it.
ClassMapArg = dict[str, int] | str | Path | None


def read_class_map(path: str | Path) -> dict[str, int]:
    """The JSON object of class name → integer index in ``path`` (bounded, non-blocking read; exit 3 for a file
    that cannot be used, 2 for one that is not such an object)."""
    try:
        data = parse_json(read_bytes(Path(path), "class_map"))
    except UnsafeFile as exc:
        raise InputError(f"{path}: cannot use the --class-map file ({exc.detail}); fix: pass a JSON object of "
                         "class name → index") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not a JSON object of class name → index ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        raise UsageError(f"{path}: not a JSON object of class name → integer index; fix: write {{\"cat\": 3, ...}}")
    return {str(k): int(v) for k, v in data.items()}


def class_map_of(given: ClassMapArg) -> tuple[dict[str, int] | None, str | dict[str, int] | None]:
    """The class map to use and how to record it: a file is read and recorded by its path (so a report can repeat
    ``--class-map FILE``), a mapping is used and recorded as given."""
    if given is None or isinstance(given, dict):
        return given, given
    return read_class_map(given), Path(given).as_posix()
