"""Parameter objects the commands share, instead of the same keyword arguments threaded through every step:
where the work runs (:class:`Runtime`) and which model and preprocessing it uses (:class:`ModelSpec`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from repcurate.embed.cache import default_cache_dir
from repcurate.frameworks.device import resolve_device
from repcurate.frameworks.loading import ModelArg, PreprocessArg
from repcurate.options import MAX_BATCH_SIZE, MAX_WORKERS, require_int


@dataclass(frozen=True)
class Runtime:
    """Where and how the work runs: the device models run on, the cache folder, batch size, decode workers and
    progress bars. Not part of any output (the same inputs give the same set on any runtime)."""

    device: str = "auto"
    cache_dir: str | Path | None = None
    use_cache: bool = True
    batch_size: int = 32
    workers: int = 2
    progress: bool | None = None

    def checked(self) -> Runtime:
        """This runtime with ``auto`` devices resolved; out-of-range sizes refused (exit 2 naming the option)."""
        require_int(self.batch_size, "--batch-size", 1, MAX_BATCH_SIZE, keyword="batch_size")
        require_int(self.workers, "--workers", 1, MAX_WORKERS)
        return Runtime(device=resolve_device(self.device), cache_dir=self.cache_dir, use_cache=self.use_cache,
                       batch_size=self.batch_size, workers=self.workers, progress=self.progress)

    @property
    def cache(self) -> Path | None:
        """The cache folder in use (default: the embedding cache's folder), or None without ``use_cache``."""
        if not self.use_cache:
            return None
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()


@dataclass(frozen=True)
class ModelSpec:
    """The model to be quantized (spec string or model object), the feature layer(s) it is embedded at, and the
    evaluation preprocessing (spec or callable; None: the model's or the set's own)."""

    model: ModelArg = None
    layer: str | Sequence[str] | None = None
    preprocess: PreprocessArg = None
