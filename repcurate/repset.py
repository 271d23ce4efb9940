"""A representative set on disk (``manifest.json`` + ``calibration.npz`` [+ ``projection.npz``]) and its
MCT data generator."""
from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.errors import InputError
from repcurate.io.atomic import json_bytes, write_directory, write_npz
from repcurate.io.manifest_schema import manifest_problem
from repcurate.io.safe_read import UnsafeFile, parse_json, read_bytes

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
#: HMAC signature of ``manifest.json`` by the user who built the set (see :mod:`repcurate.trust`).
SIGNATURE_NAME = "manifest.sig"
CALIBRATION_NAME = "calibration.npz"
#: Optional 2-D picture of the training pool (see :mod:`repcurate.select.projection`), for reports.
PROJECTION_NAME = "projection.npz"
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
    """The selected samples' preprocessed tensors (row i ↔ ``manifest["samples"][i]``) and the manifest;
    ``projection``: optional arrays for ``projection.npz`` (written by :meth:`save`, not loaded by :func:`load`);
    ``directory``: where :func:`load` read it from (None for a set made in memory)."""

    tensors: np.ndarray
    manifest: dict[str, Any]
    projection: dict[str, np.ndarray] | None = None
    directory: Path | None = None

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

    # Other toolchains' calibration inputs (repcurate.feeds; each imports its toolchain lazily).
    def numpy(self, batch_size: int = 32) -> list[np.ndarray]:
        """The samples as float32 batches, in set order."""
        from repcurate.feeds import numpy_batches

        return numpy_batches(self.tensors, batch_size)

    def torch_dataset(self) -> Any:
        """A ``torch.utils.data.TensorDataset`` of the samples."""
        from repcurate.feeds import torch_dataset

        return torch_dataset(self.tensors)

    def torch_loader(self, batch_size: int = 32) -> Any:
        """A non-shuffling ``torch.utils.data.DataLoader`` over the samples."""
        from repcurate.feeds import torch_loader

        return torch_loader(self.tensors, batch_size)

    def ort_reader(self, input_name: str, batch_size: int = 1) -> Any:
        """An ONNX Runtime ``CalibrationDataReader`` for ``quantize_static`` (needs ``repcurate[export]``)."""
        from repcurate.feeds import ort_reader

        return ort_reader(self.tensors, input_name, batch_size)

    def nncf_dataset(self, transform: Callable[[np.ndarray], Any] | None = None) -> Any:
        """An OpenVINO NNCF ``nncf.Dataset`` for ``nncf.quantize``, one ``(1, ...)`` sample per item (needs
        ``repcurate[nncf]``; NNCF's telemetry is switched off, see :func:`repcurate.feeds.nncf_dataset`)."""
        from repcurate.feeds import nncf_dataset

        return nncf_dataset(self.tensors, transform)

    def tflite_representative_dataset(self, *, from_channels_first: bool = False) -> Callable[[], Iterator[list[np.ndarray]]]:
        """The generator function for ``tf.lite.TFLiteConverter.representative_dataset`` (channels-last samples)."""
        from repcurate.feeds import tflite_representative_dataset

        return tflite_representative_dataset(self.tensors, from_channels_first=from_channels_first)

    def save(self, out: Path, *, overwrite: bool = False, extra_files: dict[str, bytes] | None = None,
             sign: Callable[[bytes], bytes | None] | None = None) -> None:
        """Write ``calibration.npz``, ``projection.npz`` when there is one, and ``manifest.json``
        (recording their sha256) atomically; ``extra_files`` (name → bytes, e.g. ``build --emit yolo``'s
        ``data.yaml``) go into the same atomic write. ``sign``: manifest bytes → the content of
        ``manifest.sig`` (see :mod:`repcurate.trust`), or None to write none."""
        projection = self.projection
        self.manifest.setdefault("tool", {"name": "repcurate"})  # marks the directory as ours (--overwrite may replace it)

        def write_manifest(path: Path) -> None:
            self.manifest["calibration"] = {
                "file": CALIBRATION_NAME, "key": TENSOR_KEY, "shape": list(self.tensors.shape),
                "dtype": str(self.tensors.dtype), "sha256": sha256_file(path.parent / CALIBRATION_NAME),
            }
            if projection is None:
                self.manifest.pop("projection", None)
            else:
                self.manifest["projection"] = {**self.manifest.get("projection", {}), "file": PROJECTION_NAME,
                                               "sha256": sha256_file(path.parent / PROJECTION_NAME)}
            path.write_bytes(json_bytes(self.manifest))

        files: dict[str, bytes | Callable[[Path], None]] = {CALIBRATION_NAME: lambda p: write_npz(p, {TENSOR_KEY: self.tensors})}
        if projection is not None:
            files[PROJECTION_NAME] = lambda p: write_npz(p, projection)
        files.update(extra_files or {})
        files[MANIFEST_NAME] = write_manifest
        if sign is not None:
            def write_signature(path: Path) -> None:
                signature = sign((path.parent / MANIFEST_NAME).read_bytes())
                if signature is not None:  # no key to be had: no file
                    path.write_bytes(signature)

            files[SIGNATURE_NAME] = write_signature
        expected = self.tensors.nbytes + sum(a.nbytes for a in (projection or {}).values())
        write_directory(Path(out), files, overwrite=overwrite, expected_bytes=expected)


#: Deflate's largest expansion (bytes out per byte in), with margin.
_MAX_DEFLATE_RATIO = 1100


@dataclass(frozen=True)
class NpyEntry:
    """Where an ``.npy`` member of an ``.npz`` archive keeps its data, as its header declares it (checked against
    the bytes the archive stores, so a header cannot claim more than the file holds)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    #: Offset of the array data in the ``.npz`` file (only when the member is stored uncompressed), else None.
    data_offset: int | None


def npy_entry(path: Path, key: str) -> NpyEntry:
    """Read and check the header of member ``key`` of ``.npz`` ``path`` without reading its data: a header that
    declares more (or fewer) bytes than the member holds, or pickled objects, raise ``ValueError`` before
    anything is allocated."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{key}.npy")
        # The sizes the archive claims, bounded by the bytes on disk (deflate expands at most ~1032:1).
        stored = info.compress_type == zipfile.ZIP_STORED
        if info.compress_size > path.stat().st_size or info.file_size > info.compress_size * (1 if stored else _MAX_DEFLATE_RATIO):
            raise ValueError(f"{key}.npy claims {info.file_size} bytes, more than the archive can hold")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            reader = readers.get(version)
            if reader is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, fortran, dtype = reader(member)
            header_length = member.tell()
    if dtype.hasobject:
        raise ValueError("the array holds Python objects (pickled data is refused)")
    count = 1
    for dim in shape:
        count *= int(dim)
    declared = count * dtype.itemsize
    if header_length + declared != info.file_size:
        raise ValueError(f"the array header declares {tuple(shape)} {dtype} ({declared} bytes), which does not match "
                         f"the {max(0, info.file_size - header_length)} bytes stored")
    data_offset = None
    if info.compress_type == zipfile.ZIP_STORED:
        with path.open("rb") as handle:
            handle.seek(info.header_offset)
            local = handle.read(30)
        if local[:4] == b"PK\x03\x04":
            name_length, extra_length = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            data_offset = info.header_offset + 30 + name_length + extra_length + header_length
    return NpyEntry(tuple(int(d) for d in shape), dtype, bool(fortran), data_offset)


def open_npz_array(path: Path, key: str) -> np.ndarray:
    """Array ``key`` of an ``.npz`` archive, its header checked first (:func:`npy_entry`); memory-mapped when it
    is stored uncompressed (as :func:`write_npz` writes it: reading one row does not read the rest), else loaded."""
    entry = npy_entry(path, key)
    if entry.data_offset is not None and all(entry.shape):
        return np.memmap(path, dtype=entry.dtype, mode="r", offset=entry.data_offset, shape=entry.shape,
                         order="F" if entry.fortran else "C")
    with np.load(path, allow_pickle=False) as archive:
        return archive[key]


def load_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a ``repcurate build`` output directory, validated (tensors not read): its structure
    (:mod:`repcurate.io.manifest_schema`) and sample paths that stay below its root, else :class:`InputError`."""
    manifest_path = Path(directory) / MANIFEST_NAME
    try:
        manifest = parse_json(read_bytes(manifest_path, "manifest"))
    except UnsafeFile as exc:
        if exc.reason == "not_found":
            raise InputError(f"{manifest_path}: not found; fix: pass a directory written by `repcurate build`") from None
        raise InputError(f"{manifest_path}: unusable manifest ({exc.detail}); fix: rebuild the set") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InputError(f"{manifest_path}: unreadable manifest ({exc}); fix: rebuild the set") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{manifest_path}: not a repcurate manifest (expected a JSON object); fix: rebuild the set")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(f"{manifest_path}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION}); "
                         "fix: rebuild with this repcurate")
    problem = manifest_problem(manifest)
    if problem is not None:
        raise InputError(f"{manifest_path}: {problem} (damaged or tampered manifest); fix: rebuild the set with `repcurate build`")
    calibration = manifest.get("calibration")
    if not isinstance(calibration, dict) or not calibration.get("sha256"):
        raise InputError(f"{manifest_path}: records no calibration integrity record (calibration.sha256): the tensors "
                         "cannot be verified (damaged or tampered manifest); fix: rebuild the set with `repcurate build`")
    return manifest


def load_projection(directory: str | Path, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of ``projection.npz`` (see :mod:`repcurate.select.projection`), checked against the manifest."""
    info = manifest.get("projection")
    path = Path(directory) / PROJECTION_NAME
    if not isinstance(info, dict):
        raise InputError(f"{Path(directory) / MANIFEST_NAME}: records no projection (built before repcurate wrote one); "
                         "fix: rebuild the set")
    if not path.is_file():
        raise InputError(f"{path}: not found; fix: rebuild the set")
    if info.get("sha256") and sha256_file(path) != info["sha256"]:
        raise InputError(f"{path}: content does not match the manifest's sha256; fix: rebuild the set")
    names = ("xy", "xy_class", "label", "sample")
    try:
        for name in names:
            npy_entry(path, name)  # headers checked before any allocation
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: unreadable projection archive ({exc}); fix: rebuild the set") from None
    return arrays


def open_calibration(directory: str | Path, manifest: dict[str, Any], *, memory_map: bool = False) -> np.ndarray:
    """The tensors of ``calibration.npz``, verified: the file's sha256 against the manifest's record, no pickled
    objects, an array header that matches the stored bytes and the manifest's recorded shape and dtype, one
    row per sample; else :class:`InputError`. ``memory_map``: see :func:`open_npz_array` (for reports)."""
    calibration_path = Path(directory) / CALIBRATION_NAME
    if not calibration_path.is_file():
        raise InputError(f"{calibration_path}: not found; fix: rebuild the set")
    calibration = manifest.get("calibration")
    calibration = calibration if isinstance(calibration, dict) else {}
    expected = calibration.get("sha256")
    if expected and sha256_file(calibration_path) != expected:
        raise InputError(f"{calibration_path}: content does not match the manifest's sha256; fix: rebuild the set")
    recorded = (calibration.get("shape"), calibration.get("dtype"))
    try:
        entry = npy_entry(calibration_path, TENSOR_KEY)  # before any allocation: a header may claim terabytes
        if recorded != (None, None) and recorded != (list(entry.shape), str(entry.dtype)):
            raise InputError(f"{calibration_path}: holds {list(entry.shape)} {entry.dtype} but the manifest records "
                             f"{recorded[0]} {recorded[1]}; fix: rebuild the set")
        if memory_map:
            tensors = open_npz_array(calibration_path, TENSOR_KEY)
        else:
            with np.load(calibration_path, allow_pickle=False) as archive:
                tensors = archive[TENSOR_KEY]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{calibration_path}: unreadable calibration archive ({exc}); fix: rebuild the set") from None
    if recorded != (None, None) and recorded != (list(tensors.shape), str(tensors.dtype)):
        raise InputError(f"{calibration_path}: holds {list(tensors.shape)} {tensors.dtype} but the manifest records "
                         f"{recorded[0]} {recorded[1]}; fix: rebuild the set")
    samples = manifest.get("samples")
    count = len(samples) if isinstance(samples, list) else 0
    if tensors.ndim == 0 or tensors.shape[0] != count:
        raise InputError(f"{calibration_path}: {tensors.shape[0] if tensors.ndim else 0} tensors for {count} samples; fix: rebuild the set")
    return tensors


def load(directory: str | Path) -> RepresentativeSet:
    """Load a ``repcurate build`` output directory (manifest and tensors verified, see :func:`open_calibration`)."""
    directory = Path(directory)
    manifest = load_manifest(directory)
    return RepresentativeSet(tensors=open_calibration(directory, manifest), manifest=manifest, directory=directory)
