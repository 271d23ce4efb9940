"""Where repcurate may write: outputs never overlap inputs, ``--overwrite`` replaces only repcurate's own output.

Every command that writes a directory (``build --out``, ``confirm --export``) or a file (``--output``,
``--report``, ``report --out``) goes through these guards *before* any work, so a mistaken path is refused
with exit 2 and nothing touched.

- An output directory may not equal, contain or lie inside an input folder (training folder, a list file's
  image root, ``--match-dir``, an eval folder, the set being read), nor contain the working directory;
  symlinks are resolved before comparing.
- An output file may not be an input file (a model or preprocessing ``.py``, a config, a set's files) nor lie
  inside an input folder.
- ``--overwrite`` replaces a directory only when it is empty or repcurate wrote it: it carries a repcurate
  ``manifest.json`` or ``export.json`` and holds nothing but files repcurate writes (the names below, and those a
  ``repcurate export`` lists in its ``export.json``). Anything else is refused with the name of the first foreign entry.
- The parent of an output must be writable; this is tried (a probe directory is made and removed) up front.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from repcurate.errors import UsageError
from repcurate.io.safe_read import UnsafeFile, open_regular
from repcurate.io.signals import deferred_signals

#: Files a repcurate output directory may hold (a set, a ``confirm --export``, HTML reports written beside them).
OWN_FILE_NAMES = frozenset({"manifest.json", "manifest.sig", "calibration.npz", "projection.npz", "export.json",
                            "model.onnx", "model.keras", "model.h5", "data.yaml", "images.txt"})
#: The ``<meta name="generator">`` every repcurate HTML report carries (see report/templates).
HTML_GENERATOR_MARK = b'<meta name="generator" content="repcurate '
_HTML_HEAD_BYTES = 4096
#: A marker file (manifest.json / export.json) larger than this is not read to decide what a folder is.
_MARKER_READ_LIMIT = 64 << 20


def absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with ``~`` expanded and every existing symlink resolved (the path need not exist)."""
    return Path(os.path.expanduser(os.fspath(path))).resolve(strict=False)


def _overlap(out: Path, other: Path) -> str | None:
    if out == other:
        return "is"
    if other in out.parents:
        return "lies inside"
    if out in other.parents:
        return "contains"
    return None


#: Inputs of a command: role → path, or ``(role, path)`` pairs (a role may name many paths); ``None`` paths are ignored.
Inputs = Mapping[str, "str | os.PathLike[str] | None"] | Iterable[tuple[str, "str | os.PathLike[str] | None"]]


def _pairs(inputs: Inputs | None) -> list[tuple[str, str | os.PathLike[str] | None]]:
    if inputs is None:
        return []
    return list(inputs.items()) if isinstance(inputs, Mapping) else list(inputs)


def refuse_overlap(out: str | os.PathLike[str], inputs: Inputs, *, option: str = "--out") -> None:
    """Refuse (exit 2) an output directory that is, contains or lies inside any input folder or file in ``inputs``
    (role → path or ``(role, path)`` pairs, ``None`` entries ignored)."""
    target = absolute(out)
    for role, path in _pairs(inputs):
        if path is None:
            continue
        relation = _overlap(target, absolute(path))
        if relation is not None:
            raise UsageError(f"{option} {out} {relation} the {role} {path}; repcurate never writes over its inputs; "
                             f"fix: choose an {option} outside {path}")


def refuse_output_file(output: str | os.PathLike[str] | None, *, input_files: Iterable[str | os.PathLike[str] | None] = (),
                       input_dirs: Inputs | None = None, option: str = "--output") -> None:
    """Refuse (exit 2) an output file that is one of ``input_files``, lies inside an input folder, or is a directory."""
    if output is None:
        return
    target = absolute(output)
    if target.is_dir():
        raise UsageError(f"{option} {output} is a directory; fix: name a file, e.g. {option} {Path(output) / 'report.html'}")
    for path in input_files:
        if path is not None and absolute(path) == target:
            raise UsageError(f"{option} {output} is an input of this command ({path}); fix: write the report elsewhere")
    for role, folder in _pairs(input_dirs):
        if folder is not None and absolute(folder) == target:
            raise UsageError(f"{option} {output} is an input of this command (the {role} {folder}); repcurate never "
                             "writes over its inputs; fix: write the report elsewhere")
        if folder is not None and absolute(folder) in target.parents:
            raise UsageError(f"{option} {output} lies inside the {role} {folder}; repcurate never writes into its inputs; "
                             f"fix: write the report outside {folder}")
    probe_writable(target, option=option)


def code_file(spec: object) -> Path | None:
    """The file behind a model/preprocessing spec given on the command line (``file.py:name`` or a model file)."""
    if not isinstance(spec, str):
        return None
    target, sep, _ = spec.rpartition(":")
    if sep and (target.endswith(".py") or "/" in target):
        return Path(target)
    if spec.lower().endswith((".keras", ".h5", ".hdf5", ".onnx", ".pt", ".pth")):
        return Path(spec)
    return None


def _head(path: Path, limit: int) -> bytes | None:
    """The first ``limit`` bytes of regular file ``path`` (a FIFO or device is never read), else None."""
    try:
        with open_regular(path) as handle:
            return handle.read(limit)
    except (UnsafeFile, OSError):
        return None


def _is_own_html(path: Path) -> bool:
    head = _head(path, _HTML_HEAD_BYTES)
    return head is not None and HTML_GENERATOR_MARK in head


def _carries_own_marker(directory: Path) -> bool:
    for name, key in (("manifest.json", "tool"), ("export.json", "repcurate_version")):
        try:
            data = json.loads(_head(directory / name, _MARKER_READ_LIMIT) or b"")
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict) and (data.get(key, {}).get("name") == "repcurate" if key == "tool"
                                       else isinstance(data.get(key), str)):
            return True
    return False


def _listed_export_files(directory: Path) -> frozenset[str]:
    """The plain file names a ``repcurate export`` lists in its ``export.json`` (``files``)."""
    try:
        listed = json.loads(_head(directory / "export.json", _MARKER_READ_LIMIT) or b"").get("files", [])
    except (ValueError, AttributeError, RecursionError):
        return frozenset()
    if not isinstance(listed, list):
        return frozenset()
    return frozenset(name for name in listed if isinstance(name, str) and name and "/" not in name and "\\" not in name)


def foreign_entry(directory: Path) -> str | None:
    """Why ``directory`` is not repcurate's own output (``None`` when it is, or is empty)."""
    entries = sorted(directory.iterdir())
    if not entries:
        return None
    if not _carries_own_marker(directory):
        return "it holds no repcurate manifest.json or export.json"
    own = OWN_FILE_NAMES | _listed_export_files(directory)
    for entry in entries:
        if entry.is_symlink() or not entry.is_file():
            return f"{entry.name} is not a file repcurate writes"
        if entry.name not in own and not (entry.suffix.lower() == ".html" and _is_own_html(entry)):
            return f"{entry.name} is not a file repcurate writes"
    return None


def probe_writable(target: Path, *, option: str = "--out") -> None:
    """Refuse (exit 2) when the nearest existing folder above ``target`` cannot take a new entry (tried, not guessed)."""
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {target}: {parent} is not a directory; fix: choose an {option} in a folder")
    try:
        with deferred_signals():  # a signal between mkdtemp and the rmdir would leave the probe behind
            os.rmdir(tempfile.mkdtemp(prefix=".repcurate-probe-", dir=parent))
    except OSError as exc:
        raise UsageError(f"{option} {target}: cannot write in {parent} ({exc.strerror or exc}); "
                         f"fix: choose an {option} in a writable folder") from None


def is_set_directory(directory: Path) -> bool:
    """Whether ``directory`` holds a ``repcurate build`` set (a repcurate ``manifest.json``)."""
    try:
        data = json.loads(_head(directory / "manifest.json", _MARKER_READ_LIMIT) or b"")
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and isinstance(data.get("tool"), dict) and data["tool"].get("name") == "repcurate"


def ensure_writable_target(out: str | os.PathLike[str], *, overwrite: bool, option: str = "--out",
                           keep_sets: bool = False) -> None:
    """Refuse early (exit 2, before any work) an output directory that exists and may not be replaced, or
    whose parent cannot be written, or that is or contains the current directory (a replacement would delete
    it from under the user). ``keep_sets``: never replace a ``repcurate build`` set either (an export's output)."""
    path = Path(out)
    target, cwd = absolute(path), absolute(Path.cwd())
    if target == cwd or target in cwd.parents:
        raise UsageError(f"{option} {out} is or contains the current directory; fix: name a new sub-folder, "
                         f"e.g. {option} repset")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{out}: exists and is not a directory; fix: choose another {option}")
    if path.is_dir() and any(path.iterdir()):
        reason = foreign_entry(path)
        if reason is not None:
            raise UsageError(f"{out}: not empty and not written by repcurate ({reason}); --overwrite replaces only "
                             f"repcurate's own output; fix: choose another {option}")
        if keep_sets and is_set_directory(path):
            raise UsageError(f"{out}: holds a repcurate set (manifest.json); {option} never replaces a set, even with "
                             f"--overwrite; fix: choose another {option}")
        if not overwrite:
            raise UsageError(f"{out}: already holds repcurate output; fix: pass --overwrite to replace it, "
                             f"or choose another {option}")
    probe_writable(target, option=option)
