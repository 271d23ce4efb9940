"""Read files named by a dataset or a set: regular files only, never more than a per-kind size cap, parsed
without unbounded recursion.

Every file repcurate opens from a dataset (YOLO labels, ``data.yaml`` and its image lists, COCO JSON, CSV/JSONL
lists, mask PNGs, images), a set (``manifest.json``) or a report input (check/confirm/doctor JSON, ``--class-map``)
goes through :func:`open_regular`: it is opened with ``O_NONBLOCK`` (a FIFO then does not block the open) and
checked with ``fstat`` to be a regular file, so a FIFO, a device (``/dev/zero``) or a socket — directly or
through a symlink — is refused with reason ``not_a_regular_file`` instead of hanging or exhausting memory.
:func:`read_bytes` then reads at most the kind's cap (:data:`CAPS`) and refuses a larger file with reason
``too_large``. The caps of annotation JSON and list files, which a real dataset can outgrow, are overridable with
an environment variable (:data:`CAP_ENV`, a number of bytes, optionally with a ``K``/``M``/``G`` suffix).

:func:`parse_json` / :func:`parse_yaml` turn a document nested deeper than :data:`MAX_DEPTH` levels (a parser's
``RecursionError`` included) into :class:`UnsafeFile` with reason ``too_deep``; YAML aliases (``*name``) are
refused (reason ``yaml_alias``): they are how a "billion laughs" document grows without bound, and dataset YAML
files do not use them.

Callers turn :class:`UnsafeFile` into a skipped entry (one bad file among many) or an :class:`InputError`
(exit 3) for a top-level file, with the file named.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import IO, Any

#: Kind → largest file read, in bytes (see the module docstring and README's Safety section).
CAPS: dict[str, int] = {
    "label": 1 << 20,             # a YOLO label .txt: 1 MiB (~20,000 objects)
    "yaml": 1 << 20,              # a data.yaml: 1 MiB
    "list": 256 << 20,            # a CSV / JSONL / .txt image list: 256 MiB (~2 million paths)
    "annotation": 256 << 20,      # a COCO JSON: 256 MiB (read peaks at about 2.3x the file)
    "manifest": 256 << 20,        # a set's manifest.json
    "report": 64 << 20,           # a check / confirm / doctor JSON given to `report`
    "class_map": 16 << 20,        # a --class-map JSON
    "config": 16 << 20,           # a check --config TOML / JSON, a pyproject.toml
    "names": 16 << 20,            # a segmentation folder's class-name list
    "mask": 256 << 20,            # a mask PNG (its pixels are bounded separately by Pillow's limit)
    "image": 1 << 30,             # an image file: 1 GiB
}
#: Kind → environment variable that overrides its cap (the kinds a real dataset could outgrow).
CAP_ENV: dict[str, str] = {
    "annotation": "REPCURATE_MAX_ANNOTATION_BYTES",
    "list": "REPCURATE_MAX_LIST_BYTES",
    "label": "REPCURATE_MAX_LABEL_BYTES",
    "image": "REPCURATE_MAX_IMAGE_BYTES",
}
#: Deepest nesting of JSON arrays/objects or YAML collections accepted (real files need fewer than 10).
MAX_DEPTH = 100
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class UnsafeFile(Exception):
    """A file that is not read (or not parsed): ``reason`` is ``not_found``, ``not_a_regular_file``, ``too_large``,
    ``unreadable``, ``too_deep`` or ``yaml_alias``; ``detail`` says why, without any of the file's content."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def cap(kind: str) -> int:
    """The size cap of ``kind`` in bytes: :data:`CAPS`, or its :data:`CAP_ENV` variable when set."""
    variable = CAP_ENV.get(kind)
    raw = os.environ.get(variable, "").strip().upper().removesuffix("B") if variable else ""
    if raw:
        unit = raw[-1] if raw[-1] in _UNITS else ""
        try:
            value = int(float(raw[:-1] if unit else raw) * _UNITS[unit])
        except ValueError:
            value = 0
        if value > 0:
            return value
    return CAPS[kind]


def cap_hint(kind: str) -> str:
    """How to raise ``kind``'s cap, for an error message ('' when it is fixed)."""
    variable = CAP_ENV.get(kind)
    return f" (raise it with {variable}=BYTES)" if variable else ""


def open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """``path`` opened for reading when it is a regular file (symlinks followed); else :class:`UnsafeFile`.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor: a FIFO does not block the open,
    and the file checked is the file read (no swap between a ``stat`` and the ``open``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnsafeFile("not_found", "file not found (missing or a broken link)") from None
    except OSError as exc:
        raise UnsafeFile("unreadable", exc.strerror or str(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFile("not_a_regular_file", f"a {_kind_of(mode)}, not a regular file: it is never read")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder")):
        if test(mode):
            return name
    return "special file"


def regular_size(path: str | os.PathLike[str]) -> int:
    """The size of ``path`` when it is a regular file (symlinks followed, nothing opened); else :class:`UnsafeFile`."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UnsafeFile("not_found", "file not found (missing or a broken link)") from None
    except OSError as exc:
        raise UnsafeFile("unreadable", exc.strerror or str(exc)) from None
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile("not_a_regular_file", f"a {_kind_of(info.st_mode)}, not a regular file: it is never read")
    return info.st_size


def read_bytes(path: str | os.PathLike[str], kind: str, *, limit: int | None = None) -> bytes:
    """The bytes of regular file ``path``, at most ``limit`` (default: ``kind``'s :func:`cap`); a larger file is
    :class:`UnsafeFile` ``too_large`` (found from ``fstat`` before reading, and again if it grows while read)."""
    most = cap(kind) if limit is None else limit
    with open_regular(path) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            if size > most:
                raise UnsafeFile("too_large", f"{size} bytes, over the {most}-byte limit for a {kind} file{cap_hint(kind)}")
            data = handle.read(most + 1)
        except OSError as exc:
            raise UnsafeFile("unreadable", exc.strerror or str(exc)) from None
    if len(data) > most:
        raise UnsafeFile("too_large", f"over the {most}-byte limit for a {kind} file{cap_hint(kind)}")
    return data


def read_text(path: str | os.PathLike[str], kind: str) -> str:
    """:func:`read_bytes` decoded as UTF-8 (a leading BOM dropped); ``UnicodeDecodeError`` when it is not UTF-8."""
    return read_bytes(path, kind).decode("utf-8-sig")


def check_depth(value: Any, *, limit: int = MAX_DEPTH) -> None:
    """:class:`UnsafeFile` ``too_deep`` when lists / dicts in ``value`` nest deeper than ``limit`` (walked
    iteratively: the check itself cannot overflow the stack)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise UnsafeFile("too_deep", f"nested more than {limit} levels deep")
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def parse_json(text: str | bytes, *, depth_limit: int | None = MAX_DEPTH, drop_keys: frozenset[str] = frozenset()) -> Any:
    """``json.loads`` of ``text``; ``ValueError`` for invalid JSON, :class:`UnsafeFile` ``too_deep`` for nesting
    beyond ``depth_limit`` (None: only what the parser itself refuses). ``drop_keys``: object members left out as
    the document is parsed (their values are freed at once: a COCO JSON's ``segmentation`` polygons, most of its
    memory, are never held together)."""
    hook = (lambda pairs: {k: v for k, v in pairs if k not in drop_keys}) if drop_keys else None
    try:
        data = json.loads(text, object_pairs_hook=hook)
    except RecursionError:
        raise UnsafeFile("too_deep", "nested too deeply to parse") from None
    if depth_limit is not None:
        check_depth(data, limit=depth_limit)
    return data


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` of ``text`` with aliases refused (:class:`UnsafeFile` ``yaml_alias``) and nesting bounded
    (``too_deep``); ``yaml.YAMLError`` for invalid YAML."""
    import yaml

    loader_class: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader_class):  # events first: nothing is built before the checks
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                raise UnsafeFile("yaml_alias", f"a YAML alias (*name) at line {mark.line + 1 if mark else '?'}: "
                                               "aliases are not accepted in dataset files")
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise UnsafeFile("too_deep", f"nested more than {MAX_DEPTH} levels deep")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except RecursionError:
        raise UnsafeFile("too_deep", "nested too deeply to parse") from None
    try:
        return yaml.load(text, Loader=loader_class)  # a SafeLoader (C or Python): no Python objects
    except RecursionError:
        raise UnsafeFile("too_deep", "nested too deeply to parse") from None


def describe(path: str | os.PathLike[str], error: UnsafeFile) -> str:
    """``PATH: detail`` for an error message about a top-level file."""
    return f"{Path(path)}: {error.detail}"
