"""Walk a training (or evaluation) collection: a class-per-folder tree, a flat folder or a list file.

Scanning has two steps. :func:`list_source` walks the folder (``os.scandir``, one folder open at a time)
or reads the list file and ``stat``s every image file: it knows every file, skips non-images, empty and
missing files and links that loop, and reads no file's bytes. :func:`fingerprint_files` then reads the
files that will be used (all of them, or ``build``'s candidate pool) to fingerprint their content.
Nothing is decoded here; decoding failures are found later, when images are loaded, and join the same
``skipped`` list. :func:`scan_directory` / :func:`scan_list` are both steps over every file; :func:`repcurate.data.sources.scan` also
takes annotated datasets.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import stat as stat_module
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repcurate.data.images import IMAGE_EXTENSIONS, is_image_path
from repcurate.data.layouts import AUTO, CLASSES, FLAT, FOLDER_LAYOUTS, LIST
from repcurate.errors import InputError, UsageError
from repcurate.io.safe_read import UnsafeFile, cap, open_regular, parse_json, read_text

LAYOUTS = (AUTO, *FOLDER_LAYOUTS)
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageRecord:
    """One image file: its path relative to the collection root (POSIX), label and content hash."""

    path: str
    label: str | None
    size_bytes: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One image file a listing found (path relative to the collection root, POSIX), not yet read."""

    path: str
    label: str | None
    size_bytes: int


@dataclass(frozen=True)
class SkippedFile:
    """A file left out, with a stable reason code and a human-readable detail."""

    path: str
    reason: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "detail": self.detail}


@dataclass
class ScanResult:
    """What a scan found: usable candidates, skipped files, and the class folders seen."""

    root: Path
    layout: str
    records: list[ImageRecord]
    skipped: list[SkippedFile] = field(default_factory=list)
    class_folders: list[str] = field(default_factory=list)
    #: Class names of an annotated dataset (YOLO ``names``, COCO categories; index = class id); empty otherwise.
    class_names: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return self.layout != FLAT and any(r.label is not None for r in self.records)


@dataclass
class Listing:
    """Every image file of a collection (read by nobody yet), the files skipped while listing, the class folders."""

    root: Path
    layout: str
    files: list[FileEntry]
    skipped: list[SkippedFile] = field(default_factory=list)
    class_folders: list[str] = field(default_factory=list)


def _content_hash() -> hashlib.blake2b:
    """The hash behind every content fingerprint: BLAKE2b-128."""
    return hashlib.blake2b(digest_size=16)


def content_fingerprint(data: bytes) -> str:
    """The content fingerprint of ``data``: the same value as :func:`fingerprint_file` of a file holding it."""
    digest = _content_hash()
    digest.update(data)
    return digest.hexdigest()


def fingerprint_file(path: Path) -> str:
    """BLAKE2b-128 hex digest of a file's bytes; :class:`~repcurate.io.safe_read.UnsafeFile` for a file that is not
    a regular file (a FIFO or device is never read) or larger than the image cap."""
    digest = _content_hash()
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > cap("image"):
            raise UnsafeFile("too_large", f"{size} bytes, over the {cap('image')}-byte limit for an image file "
                                          "(raise it with REPCURATE_MAX_IMAGE_BYTES=BYTES)")
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _undecodable(name: str) -> bool:
    """True for a file name whose bytes are not UTF-8 (Python holds them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def display_path(path: str) -> str:
    """``path`` with bytes that are not UTF-8 written as ``\\xNN`` escapes (always valid in JSON)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _contains(outer: str, inner: str) -> bool:
    """True when real path ``inner`` is ``outer`` or lies below it."""
    return os.path.commonpath([outer, inner]) == outer


def _loop_detail(real: str, chain: frozenset[str], top: str, root_real: str) -> str | None:
    """Why following a folder (real path ``real``) would rescan images, or None when it is safe."""
    if real in chain:
        return f"a link back to {real}, a folder that contains it: it would be scanned without end"
    if _contains(real, root_real):
        return f"a link to {real}, which contains the whole collection: every image would be scanned again"
    if _contains(root_real, real) and not _contains(top, real):
        return f"a link to {real}, another folder of this collection: its images would be counted twice"
    return None


def _walk_files(directory: str, root: str, skipped: list[SkippedFile]) -> Iterator[os.DirEntry[str]]:
    """Every non-hidden file below ``directory`` (hidden folders pruned), symlinks followed, streamed folder by
    folder with ``os.scandir`` (no list of the whole tree is held); the order is not sorted.

    Appended to ``skipped``, with a reason: folders and files whose names are not UTF-8
    (``undecodable_name``), and folders that lead back into an ancestor, to a folder containing ``root``, or
    from ``directory`` into another folder below ``root`` (``symlink_loop``): following them would scan
    forever (ELOOP) or count the same images again under another class. A folder that cannot be listed is
    passed over, as ``os.walk`` does.
    """
    top = os.path.realpath(directory)
    root_real = os.path.realpath(root)
    # Each pending folder with the real paths of the folders from ``directory`` down to it.
    pending: list[tuple[str, frozenset[str]]] = [(directory, frozenset({top}))]
    while pending:
        current, chain = pending.pop()
        try:
            entries = os.scandir(current)
        except OSError:
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if _is_hidden(name):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if _undecodable(name):
                    what = ("a folder whose name is not valid UTF-8; its files were not scanned; fix: rename it"
                            if is_dir else "a file name that is not valid UTF-8; fix: rename the file")
                    skipped.append(SkippedFile(display_path(_relative_str(entry.path, root)), "undecodable_name", what))
                    continue
                if not is_dir:
                    yield entry
                    continue
                real = os.path.realpath(entry.path)
                detail = _loop_detail(real, chain, top, root_real)
                if detail is not None:
                    skipped.append(SkippedFile(_relative_str(entry.path, root), "symlink_loop", detail))
                    continue
                pending.append((entry.path, chain | {real}))


def require_text_path(path: Path) -> None:
    """A collection whose own path is not UTF-8 cannot be recorded in a manifest: refuse it up front."""
    if _undecodable(os.fspath(path)):
        raise InputError(f"{display_path(os.fspath(path))}: the folder's path is not valid UTF-8; "
                         "fix: rename it (or move the data to a folder whose path is UTF-8)")


def relative_path(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _relative_str(path: str, root: str) -> str:
    """:func:`relative_path` for plain strings (a million ``Path`` objects cost seconds and hundreds of MiB)."""
    prefix = root.rstrip(os.sep) + os.sep
    rel = path[len(prefix):] if path.startswith(prefix) else path
    return rel if os.sep == "/" else Path(rel).as_posix()


def _progress(enabled: bool | None, desc: str, total: int | None = None, unit: str = "file") -> Any:
    """A tqdm counter on stderr, shown when ``enabled`` (None: when stderr is a terminal)."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=desc, unit=unit, disable=not show, file=sys.stderr, leave=False,
                mininterval=0.5, unit_scale=total is None)


def _suffix(name: str) -> str:
    """``PurePath(name).suffix`` without building a path object (a million of them cost seconds)."""
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def _stat_entry(rel: str, label: str | None, stat: Any) -> FileEntry | SkippedFile:
    """A listed file's entry, or why it is skipped (missing, a broken link, unreadable metadata, not a regular file,
    0 bytes, over the image cap)."""
    try:
        info = stat()
    except FileNotFoundError:
        return SkippedFile(rel, "unreadable", "file not found (missing or a broken link)")
    except OSError as exc:
        return SkippedFile(rel, "unreadable", exc.strerror or str(exc))
    if not stat_module.S_ISREG(info.st_mode):
        return SkippedFile(rel, "not_a_regular_file", "not a regular file (a FIFO, device or socket): it is never read")
    size = info.st_size
    if size > cap("image"):
        return SkippedFile(rel, "too_large", f"{size} bytes, over the {cap('image')}-byte limit for an image file "
                                             "(raise it with REPCURATE_MAX_IMAGE_BYTES=BYTES)")
    if size == 0:
        return SkippedFile(rel, "empty_file", "the file has 0 bytes")
    return FileEntry(rel, label, size)


def fingerprint_files(listing: Listing, files: list[FileEntry], *, workers: int = 4,
                      progress: bool | None = False) -> ScanResult:
    """Read ``files`` (entries of ``listing``) to fingerprint their content, in parallel threads.

    The result holds their records (sorted by path) and every skipped file: the listing's, and those
    that could not be read now (sorted by path). Files of the listing not in ``files`` are not read.
    """
    root = listing.root

    def one(entry: FileEntry) -> ImageRecord | SkippedFile:
        try:
            return ImageRecord(entry.path, entry.label, entry.size_bytes, fingerprint_file(root / entry.path))
        except UnsafeFile as exc:
            return SkippedFile(entry.path, "unreadable" if exc.reason == "not_found" else exc.reason, exc.detail)
        except FileNotFoundError:
            return SkippedFile(entry.path, "unreadable", "file not found (missing or a broken link)")
        except OSError as exc:
            return SkippedFile(entry.path, "unreadable", exc.strerror or str(exc))

    records: list[ImageRecord] = []
    skipped = list(listing.skipped)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            _progress(progress, "fingerprinting", total=len(files)) as bar:
        for result in pool.map(one, files):
            (records if isinstance(result, ImageRecord) else skipped).append(result)  # type: ignore[arg-type]
            bar.update(1)
    records.sort(key=lambda r: r.path)  # plain string order, as for list files
    skipped.sort(key=lambda s: s.path)
    return ScanResult(root=root, layout=listing.layout, records=records, skipped=skipped,
                      class_folders=list(listing.class_folders))


def _detect_layout(root: Path) -> str:
    entries = [e for e in os.scandir(root) if not _is_hidden(e.name)]
    return CLASSES if any(e.is_dir() for e in entries) else FLAT


def list_directory(root: Path, *, layout: str = AUTO, progress: bool | None = False) -> Listing:
    """List an image folder: every image file with its size (``stat``), nothing read.

    ``layout="classes"``: each top-level folder is a class, searched recursively; files at the
    top level are skipped. ``"flat"``: every image below ``root`` is unlabelled. ``"auto"``
    picks ``classes`` when ``root`` has any (non-hidden) sub-folder. Memory grows with the number of
    image files (one small entry each, about 150 bytes), not with the depth or shape of the tree.
    """
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: directory not found; fix: pass an existing image folder")
    if not root.is_dir():
        if not root.is_file():
            raise InputError(f"{root}: not a folder nor a regular file (a FIFO, device or socket is never read); "
                             "fix: pass an image folder, a list file or an annotated dataset")
        raise InputError(f"{root}: not a directory; fix: pass a folder (or use a list file for CSV/JSONL)")
    root = root.resolve()
    require_text_path(root)
    if layout == AUTO:
        layout = _detect_layout(root)
    root_text = os.fspath(root)

    files: list[FileEntry] = []
    skipped: list[SkippedFile] = []
    class_folders: list[str] = []

    with _progress(progress, "listing") as bar:
        def add_all(directory: str, label: str | None) -> None:
            for entry in _walk_files(directory, root_text, skipped):
                rel = _relative_str(entry.path, root_text)
                suffix = _suffix(entry.name)
                if suffix.lower() in IMAGE_EXTENSIONS:
                    found = _stat_entry(rel, label, entry.stat)
                    (files if isinstance(found, FileEntry) else skipped).append(found)  # type: ignore[arg-type]
                else:
                    skipped.append(SkippedFile(rel, "unsupported_extension",
                                               f"{suffix or 'no extension'} is not an image extension"))
                bar.update(1)

        if layout == FLAT:
            add_all(root_text, None)
        else:
            for entry in sorted(os.scandir(root), key=lambda e: e.name):
                if _is_hidden(entry.name):
                    continue
                if _undecodable(entry.name):
                    skipped.append(SkippedFile(display_path(entry.name), "undecodable_name",
                                               "a name that is not valid UTF-8 (a class name must be text); fix: rename it"))
                elif entry.is_dir():
                    class_folders.append(entry.name)
                    real = os.path.realpath(entry.path)
                    if _contains(real, root_text):
                        skipped.append(SkippedFile(entry.name, "symlink_loop", f"a link to {real}, which contains the "
                                                   "whole collection: every image would be scanned again"))
                        continue
                    add_all(entry.path, entry.name)
                else:
                    skipped.append(SkippedFile(entry.name, "outside_class_folder",
                                               "a file at the top level of a class-per-folder layout"))
    files.sort(key=lambda f: f.path)
    skipped.sort(key=lambda s: s.path)
    return Listing(root=root, layout=layout, files=files, skipped=skipped, class_folders=class_folders)


def scan_directory(root: Path, *, layout: str = AUTO, workers: int = 4) -> ScanResult:
    """Scan an image folder: :func:`list_directory`, then fingerprint every image file."""
    listing = list_directory(root, layout=layout)
    return fingerprint_files(listing, listing.files, workers=workers)


def read_list_rows(list_file: Path) -> list[tuple[int, str, str | None]]:
    """Rows ``(line_number, path, label)`` of a CSV (header with ``path``[, ``label``]) or JSONL file."""
    rows: list[tuple[int, str, str | None]] = []
    try:
        text = read_text(list_file, "list")
    except UnsafeFile as exc:
        raise InputError(f"{list_file}: cannot use the list file ({exc.detail}); fix: pass a UTF-8 CSV or JSONL "
                         "file") from None
    except UnicodeDecodeError:
        raise InputError(f"{list_file}: cannot read the list file (not UTF-8 text); fix: pass a UTF-8 CSV or JSONL "
                         "file") from None
    if list_file.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = parse_json(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{list_file}:{number}: invalid JSON ({exc.msg}); fix: one JSON object per line") from None
            except UnsafeFile as exc:
                raise InputError(f"{list_file}:{number}: {exc.detail}; fix: one flat JSON object per line") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("path"), str):
                raise InputError(f'{list_file}:{number}: each line needs a "path" string; fix: {{"path": "a.jpg", "label": "cat"}}')
            label = obj.get("label")
            rows.append((number, obj["path"], None if label in (None, "") else str(label)))
        return rows
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or "path" not in reader.fieldnames:
        raise InputError(f"{list_file}: the CSV needs a header row with a 'path' column (and optionally 'label')")
    for number, row in enumerate(reader, start=2):
        path = (row.get("path") or "").strip()
        if not path:
            raise InputError(f"{list_file}:{number}: empty path; fix: fill the 'path' column")
        label = (row.get("label") or "").strip()
        rows.append((number, path, label or None))
    return rows


def list_list_file(list_file: Path) -> Listing:
    """List the rows of a ``path,label`` list file: every image file with its size (``stat``), nothing read.

    Relative paths are relative to the list's folder, and the listing's root is the deepest folder holding
    the list and every listed file."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise InputError(f"{list_file}: list file not found; fix: pass a CSV or JSONL file with path,label")
    base = list_file.resolve().parent
    rows = [(Path(os.path.normpath(Path(raw) if Path(raw).is_absolute() else base / raw)), label)
            for _number, raw, label in read_list_rows(list_file)]
    # The root is the deepest folder holding the list and every listed file, so every recorded path is
    # relative to it without ``..`` (a set's manifest refuses any other sample path).
    root = Path(os.path.commonpath([base, *(path for path, _label in rows)])) if rows else base
    require_text_path(root)
    files: list[FileEntry] = []
    skipped: list[SkippedFile] = []
    seen: set[Path] = set()
    for path, label in rows:
        if path in seen:
            skipped.append(SkippedFile(relative_path(path, root), "listed_twice", "the same path appears twice in the list"))
            continue
        seen.add(path)
        if not is_image_path(path):
            skipped.append(SkippedFile(relative_path(path, root), "unsupported_extension",
                                       f"{path.suffix or 'no extension'} is not an image extension"))
            continue
        found = _stat_entry(relative_path(path, root), label, path.stat)
        (files if isinstance(found, FileEntry) else skipped).append(found)  # type: ignore[arg-type]
    files.sort(key=lambda f: f.path)
    skipped.sort(key=lambda s: s.path)
    layout = LIST if any(f.label is not None for f in files) else FLAT
    return Listing(root=root, layout=layout, files=files, skipped=skipped)


def scan_list(list_file: Path, *, workers: int = 4) -> ScanResult:
    """Scan an explicit list of ``path,label`` rows (:func:`list_list_file`, then fingerprint every file)."""
    listing = list_list_file(list_file)
    result = fingerprint_files(listing, listing.files, workers=workers)
    # As before: a list whose every labelled file was unreadable is a flat collection.
    result.layout = LIST if any(r.label is not None for r in result.records) else FLAT
    return result


def is_list_file(source: Path) -> bool:
    """Whether ``source`` is a CSV / JSONL list file rather than an image folder."""
    return source.is_file() and source.suffix.lower() in (".csv", ".jsonl", ".ndjson")


def list_source(source: Path, *, layout: str = AUTO, progress: bool | None = False) -> Listing:
    """List a folder, or a ``.csv`` / ``.jsonl`` list file (no file is read)."""
    source = Path(source)
    if is_list_file(source):
        return list_list_file(source)
    return list_directory(source, layout=layout, progress=progress)
