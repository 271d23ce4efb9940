"""A representative set on disk (``manifest.json`` + ``calibration.npz``) and its MCT data generator."""
from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.errors import InputError
from repcurate.io.atomic import json_bytes, write_directory, write_npz

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
CALIBRATION_NAME = "calibration.npz"
#: Key of the stacked sample tensor inside ``calibration.npz``.
TENSOR_KEY = "x"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def equal_batches(tensors: np.ndarray, batch_size: int = 32) -> list[np.ndarray]:
    """``tensors`` split into ``ceil(n / batch_size)`` batches whose sizes differ by at most one.

    Equal sizes matter: MCT averages statistics such as bias-correction means per batch,
    giving every batch the same weight whatever its size.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if len(tensors) == 0:
        return []
    count = -(-len(tensors) // batch_size)
    return [np.ascontiguousarray(b) for b in np.array_split(tensors, count)]


def mct_data_gen(tensors: np.ndarray, batch_size: int = 32) -> Callable[[], Iterator[list[np.ndarray]]]:
    """MCT's ``representative_data_gen``: a zero-argument callable returning a fresh iterator of
    ``[batch]`` lists (one array per model input, batch first), identical on every call."""
    batches = equal_batches(tensors, batch_size)

    def representative_data_gen() -> Iterator[list[np.ndarray]]:
        for batch in batches:
            yield [batch]

    return representative_data_gen


@dataclass
class RepresentativeSet:
    """The selected samples' preprocessed tensors (row i ↔ ``manifest["samples"][i]``) and the manifest."""

    tensors: np.ndarray
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return int(self.tensors.shape[0])

    @property
    def paths(self) -> list[str]:
        """Selected files, POSIX paths relative to the training root."""
        return [s["path"] for s in self.manifest["samples"]]

    @property
    def labels(self) -> list[str | None]:
        return [s["label"] for s in self.manifest["samples"]]

    def batches(self, batch_size: int = 32) -> list[np.ndarray]:
        """The tensors in equal-size batches (see :func:`equal_batches`)."""
        return equal_batches(self.tensors, batch_size)

    def mct_data_gen(self, batch_size: int = 32) -> Callable[[], Iterator[list[np.ndarray]]]:
        """MCT's ``representative_data_gen`` for this set (see :func:`mct_data_gen`)."""
        return mct_data_gen(self.tensors, batch_size)

    def save(self, out: Path, *, overwrite: bool = False) -> None:
        """Write ``calibration.npz`` and ``manifest.json`` (recording the tensors' sha256) atomically."""

        def write_manifest(path: Path) -> None:
            self.manifest["calibration"] = {
                "file": CALIBRATION_NAME, "key": TENSOR_KEY, "shape": list(self.tensors.shape),
                "dtype": str(self.tensors.dtype), "sha256": sha256_file(path.parent / CALIBRATION_NAME),
            }
            path.write_bytes(json_bytes(self.manifest))

        write_directory(Path(out), {
            CALIBRATION_NAME: lambda p: write_npz(p, {TENSOR_KEY: self.tensors}),
            MANIFEST_NAME: write_manifest,
        }, overwrite=overwrite)


def load(directory: str | Path) -> RepresentativeSet:
    """Load a ``repcurate build`` output directory."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_NAME
    calibration_path = directory / CALIBRATION_NAME
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path}: not found; fix: pass a directory written by `repcurate build`")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError and UnicodeDecodeError
        raise InputError(f"{manifest_path}: unreadable manifest ({exc}); fix: rebuild the set") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{manifest_path}: not a repcurate manifest (expected a JSON object); fix: rebuild the set")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(f"{manifest_path}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION}); fix: rebuild with this repcurate")
    if not calibration_path.is_file():
        raise InputError(f"{calibration_path}: not found; fix: rebuild the set")
    calibration = manifest.get("calibration")
    expected = calibration.get("sha256") if isinstance(calibration, dict) else None
    if expected and sha256_file(calibration_path) != expected:
        raise InputError(f"{calibration_path}: content does not match the manifest's sha256; fix: rebuild the set")
    try:
        with np.load(calibration_path, allow_pickle=False) as archive:
            tensors = archive[TENSOR_KEY]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"{calibration_path}: unreadable calibration archive ({exc}); fix: rebuild the set") from None
    samples = manifest.get("samples")
    count = len(samples) if isinstance(samples, list) else 0
    if tensors.ndim == 0 or tensors.shape[0] != count:
        raise InputError(f"{calibration_path}: {tensors.shape[0] if tensors.ndim else 0} tensors for {count} samples; fix: rebuild the set")
    return RepresentativeSet(tensors=tensors, manifest=manifest)
