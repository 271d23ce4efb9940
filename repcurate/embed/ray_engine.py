"""The Ray engine (``build --engine ray``): Ray Data decodes, preprocesses and embeds on a cluster.

The driver sends Ray the *paths* (relative to the absolute training root) and content fingerprints of the files the
cache lacks — never the bytes: every node reads the files from the shared filesystem, and each worker checks the
content against the fingerprint the driver hashed (a changed file is skipped as ``content_changed``, as locally).
``map_batches`` tasks decode and run the embedder's preprocessing (rows of the preprocessed samples' bytes, or a
skip reason); an actor pool embeds them (one model per actor, one GPU each with ``--device cuda``); the vectors
come back to the driver, which owns the cache and everything after embedding. The workers build the embedder from
the same arguments the driver built it from (:class:`~repcurate.embed.loading.EmbedderRecipe`) and check that they
got the same model and preprocessing (fingerprints), so a node with other files or packages fails loudly.
"""
from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from repcurate.data.images import DEFAULT_MAX_PIXELS
from repcurate.data.preprocess import Preprocessor
from repcurate.data.scan import ImageRecord, SkippedFile
from repcurate.embed.engine import EmbeddedChunk, EngineJob, EngineSettings
from repcurate.embed.loading import EmbedderRecipe
from repcurate.embed.samples import LoadedSample, embed_samples, load_sample
from repcurate.errors import InputError, MissingDependencyError, RepcurateError, UsageError
from repcurate.frameworks.device import concrete_device, is_cuda

log = logging.getLogger("repcurate")

#: Preprocessors built in this worker process, by recipe (Ray reuses worker processes across tasks).
_PREPROCESSORS: dict[EmbedderRecipe, Preprocessor] = {}


def import_ray() -> Any:
    """``ray`` with Ray Data, or :class:`MissingDependencyError` naming the ``ray`` extra (exit 4)."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingDependencyError(f"ray[data] ({exc})", extra="ray", purpose="--engine ray") from None
    return ray


def cluster_endpoint(address: str) -> tuple[str, int] | None:
    """The ``(host, port)`` a Ray address (``host:port`` or ``ray://host:port``) connects to; None for the forms
    Ray resolves itself (``auto``, ``local``)."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


#: A gRPC (HTTP/2) client's connection preface and an empty SETTINGS frame: a Ray GCS or Ray Client server answers
#: it at once with its own SETTINGS; a port where something else listens usually stays silent or closes.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers(endpoint: tuple[str, int], timeout: float) -> str | None:
    """None when the server at ``endpoint`` accepts a connection and answers the HTTP/2 preface within
    ``timeout`` seconds (with TLS, ``RAY_USE_TLS``: accepting is enough), else why not."""
    try:
        with socket.create_connection(endpoint, timeout=timeout) as connection:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return None
            connection.settimeout(timeout)
            connection.sendall(_HTTP2_PREFACE)
            return None if connection.recv(9) else "it closed the connection without answering"
    except TimeoutError:
        return "no answer"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def probe_cluster(address: str, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for a gRPC server (a Ray GCS or Ray Client server) to answer at ``address``
    (a cluster being started is retried), else :class:`UsageError` naming the address and the fix — instead of
    Ray's own minutes-long retries where no cluster listens."""
    endpoint = cluster_endpoint(address)
    if endpoint is None:
        return
    deadline = time.monotonic() + timeout
    while True:
        problem = _answers(endpoint, max(0.1, min(deadline - time.monotonic(), 5.0)))
        if problem is None:
            return
        if time.monotonic() + 0.5 >= deadline:
            raise UsageError(
                f"--ray-address {address}: no Ray cluster answered within {timeout:g} s ({problem}); fix: start one "
                "with `ray start --head` and pass the address it prints, check the host and port, or wait longer "
                "with --ray-timeout SECONDS")
        time.sleep(0.5)


def bound_ray_connect(timeout: float) -> None:
    """Make ``ray.init`` give up joining a cluster after about ``timeout`` seconds (Ray's own defaults retry
    for minutes): one connection attempt, its GCS client waiting ``timeout`` s. Variables already set win; Ray
    reads them once, so this runs before Ray is imported."""
    seconds = str(max(1, math.ceil(timeout)))
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "1")
    os.environ.setdefault("RAY_py_gcs_connect_timeout_s", seconds)
    os.environ.setdefault("RAY_gcs_rpc_server_connect_timeout_s", str(min(5, int(seconds))))


def _preprocessor(recipe: EmbedderRecipe, fingerprint: str) -> Preprocessor:
    try:
        pre = _PREPROCESSORS.get(recipe)
    except TypeError:  # a caller's unhashable preprocessing object: built per task
        pre = recipe.preprocessor()
    if pre is None:
        pre = _PREPROCESSORS[recipe] = recipe.preprocessor()
    if pre.fingerprint != fingerprint:
        raise InputError(f"preprocessing {pre.spec} behaves differently on this Ray worker than on the driver "
                         f"({pre.fingerprint[:12]} vs {fingerprint[:12]}); fix: install the same packages and files on every node")
    return pre


def _no_sample() -> dict[str, Any]:
    return {"sample": b"", "shape": "", "reason": "", "detail": ""}


def _error_columns(n: int, error: RepcurateError | None) -> dict[str, np.ndarray]:
    """A worker's repcurate error travels back as data (Ray keeps only the text of a worker's exception chain):
    its message and exit code on every row, empty when there is none."""
    message = str(error) if error is not None else ""
    code = error.exit_code if error is not None else 0
    return {"error": np.array([message] * n, dtype=object), "error_code": np.full(n, code, dtype=np.int64)}


def _raise_worker_error(message: str, code: int) -> None:
    """Raise on the driver the repcurate error a worker reported (same message and exit code)."""
    kinds: dict[int, type[RepcurateError]] = {UsageError.exit_code: UsageError, InputError.exit_code: InputError}
    error = kinds.get(code, RepcurateError)(message)
    error.exit_code = code
    raise error


def decode_batch(batch: dict[str, np.ndarray], *, root: str, recipe: EmbedderRecipe, preprocess_fingerprint: str,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, np.ndarray]:
    """A Ray Data ``map_batches`` task: decode and preprocess each ``path`` below ``root`` (verified against its
    ``fingerprint``); one output row per input row, with the float32 sample's bytes and shape, or a skip reason."""
    try:
        pre = _preprocessor(recipe, preprocess_fingerprint)
    except RepcurateError as exc:
        n = len(batch["path"])
        empty = {key: np.array([""] * n, dtype=object) for key in ("shape", "reason", "detail")}
        return {"path": batch["path"], "fingerprint": batch["fingerprint"],
                "sample": np.array([b""] * n, dtype=object), **empty, **_error_columns(n, exc)}
    rows = []
    for path, fingerprint in zip(batch["path"], batch["fingerprint"]):
        loaded = load_sample(ImageRecord(str(path), None, 0, str(fingerprint)), Path(root), pre, max_pixels)
        row = _no_sample()
        if loaded.failure is not None:
            row.update(reason=loaded.failure.reason, detail=loaded.failure.detail)
        else:
            assert loaded.sample is not None
            sample = np.ascontiguousarray(loaded.sample, dtype=np.float32)
            row.update(sample=sample.tobytes(), shape=",".join(map(str, sample.shape)))
        rows.append(row)
    out = {key: np.array([r[key] for r in rows], dtype=object) for key in ("sample", "shape", "reason", "detail")}
    return {"path": batch["path"], "fingerprint": batch["fingerprint"], **out, **_error_columns(len(rows), None)}


class EmbedActor:
    """A Ray Data actor: one embedder (model) per actor, built from the recipe on the actor's device."""

    def __init__(self, recipe: EmbedderRecipe, model_fingerprint: str, batch_size: int) -> None:
        self.batch_size = batch_size
        self.error: RepcurateError | None = None
        try:
            self.embedder = recipe.build()
            if self.embedder.fingerprint != model_fingerprint:
                raise InputError(f"{self.embedder.model_spec} loads as a different model on this Ray worker than on "
                                 "the driver (fingerprints differ); fix: install the same packages and files on every node")
        except RepcurateError as exc:
            self.error = exc

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["path"])
        error = self.error
        if error is None and n and batch["error_code"][0]:
            error = InputError(str(batch["error"][0]))
            error.exit_code = int(batch["error_code"][0])
        try:
            vectors = self._vectors(batch) if error is None else None
        except RepcurateError as exc:
            error, vectors = exc, None
        return {"path": batch["path"], "fingerprint": batch["fingerprint"], "reason": batch["reason"],
                "detail": batch["detail"], "vector": vectors if vectors is not None else np.array([b""] * n, dtype=object),
                **_error_columns(n, error)}

    def _vectors(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        ok = [i for i, reason in enumerate(batch["reason"]) if not reason]
        samples = [LoadedSample(ImageRecord(str(batch["path"][i]), None, 0, str(batch["fingerprint"][i])),
                                np.frombuffer(batch["sample"][i], dtype=np.float32).reshape(
                                    tuple(int(n) for n in str(batch["shape"][i]).split(","))))
                   for i in ok]
        vectors = embed_samples(self.embedder, samples, self.batch_size) if samples else None
        out = np.array([b""] * len(batch["path"]), dtype=object)
        for row, i in enumerate(ok):
            assert vectors is not None
            out[i] = np.ascontiguousarray(vectors[row], dtype=np.float32).tobytes()
        return out


def _cause(exc: BaseException) -> BaseException:
    """The repcurate error a Ray task raised (Ray wraps it, in its own exceptions' ``cause`` and in exception
    chains), else ``exc``."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, RepcurateError):
            return current
        seen.add(id(current))
        todo += [getattr(current, "cause", None), current.__cause__, current.__context__]
    return exc


class RayEngine:
    """Ray Data: paths in, a ``map_batches`` decode stage, an actor-pool embed stage, vectors back to the driver."""

    name = "ray"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()

    def _actors(self, ray: Any, cuda: bool) -> int:
        if self.settings.actors is not None:
            return self.settings.actors
        if cuda:
            return max(1, int(ray.cluster_resources().get("GPU", 1)))
        return 1

    def _address(self) -> str | None:
        return self.settings.address or os.environ.get("RAY_ADDRESS") or None

    def require(self) -> None:
        """Ray is installed and, when an address is given, something answers there (checked up front, within
        ``settings.timeout`` seconds)."""
        address = self._address()
        if address:
            bound_ray_connect(self.settings.timeout)  # before Ray is imported: it reads its settings once
        ray = import_ray()
        if address and not ray.is_initialized():
            probe_cluster(address, self.settings.timeout)

    def run(self, todo: list[ImageRecord], job: EngineJob) -> Iterator[EmbeddedChunk]:
        recipe: EmbedderRecipe | None = getattr(job.embedder, "recipe", None)
        if recipe is None:
            raise UsageError("--engine ray needs an embedder made by build_embedder (its recipe rebuilds it on the "
                             "workers); fix: use --engine local")
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            address = self._address()
            log.info("ray engine: %s", f"joining the Ray cluster at {address}" if address else "starting a local Ray cluster")
            if address:
                probe_cluster(address, self.settings.timeout)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UsageError(f"--ray-address {address}: cannot join the Ray cluster ({first}); fix: start it with "
                                 "`ray start --head` and pass the address it prints, or wait longer with "
                                 "--ray-timeout SECONDS") from None
        try:
            yield from self._run(ray, todo, job, recipe)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray: Any, todo: list[ImageRecord], job: EngineJob, recipe: EmbedderRecipe) -> Iterator[EmbeddedChunk]:
        by_fingerprint = {r.fingerprint: r for r in todo}
        cuda = is_cuda(concrete_device(recipe.device))  # the driver's view; a GPU-less driver passes --device cuda
        actors = self._actors(ray, cuda)
        ray.data.DataContext.get_current().enable_progress_bars = False
        items = [{"path": r.path, "fingerprint": r.fingerprint} for r in todo]
        dataset = ray.data.from_items(items, override_num_blocks=max(1, min(len(items) // job.batch_size, 4 * actors * 4)))
        dataset = dataset.map_batches(
            decode_batch, batch_size=job.batch_size, batch_format="numpy",
            fn_kwargs={"root": Path(job.root).resolve().as_posix(), "recipe": recipe,
                       "preprocess_fingerprint": job.embedder.preprocessor.fingerprint, "max_pixels": job.max_pixels})
        dataset = dataset.map_batches(
            EmbedActor, batch_size=job.batch_size, batch_format="numpy", concurrency=actors,
            num_gpus=1 if cuda else 0,
            fn_constructor_kwargs={"recipe": recipe, "model_fingerprint": job.embedder.fingerprint,
                                   "batch_size": job.batch_size})
        try:
            for batch in dataset.iter_batches(batch_format="numpy", batch_size=job.batch_size):
                yield self._chunk(batch, by_fingerprint)
        except Exception as exc:  # Ray wraps a worker's error in its own exception types
            cause = _cause(exc)
            if cause is not exc:
                raise cause from None
            raise

    @staticmethod
    def _chunk(batch: dict[str, np.ndarray], by_fingerprint: dict[str, ImageRecord]) -> EmbeddedChunk:
        records: list[ImageRecord] = []
        rows: list[np.ndarray] = []
        failures: list[tuple[ImageRecord, SkippedFile]] = []
        if len(batch["error_code"]) and batch["error_code"][0]:
            _raise_worker_error(str(batch["error"][0]), int(batch["error_code"][0]))
        for fingerprint, reason, detail, vector in zip(batch["fingerprint"], batch["reason"], batch["detail"],
                                                      batch["vector"]):
            record = by_fingerprint[str(fingerprint)]
            if reason:
                failures.append((record, SkippedFile(record.path, str(reason), str(detail))))
            else:
                records.append(record)
                rows.append(np.frombuffer(vector, dtype=np.float32))
        vectors = np.vstack(rows) if rows else np.zeros((0, 0), np.float32)
        return EmbeddedChunk(records, vectors, failures)
