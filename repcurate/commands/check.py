"""``repcurate check`` as a library call."""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repcurate import trust
from repcurate.checks.config import discover_config, read_config_file, resolve_params, skipped_ids
from repcurate.checks.context import CheckContext, require_trusted_code
from repcurate.checks.registry import registered
from repcurate.checks.suite import SuiteResult, run_suite
from repcurate.data.annotated import DEFAULT_EVAL_SPLIT
from repcurate.data.sources import eval_source as scan_eval
from repcurate.embed.cache import default_cache_dir
from repcurate.frameworks.loading import ModelArg, PreprocessArg
from repcurate.repset import RepresentativeSet, load
from repcurate.spec import spec_text


def check(
    repset: str | Path | RepresentativeSet,
    eval_dir: str | Path,
    *,
    eval_preprocess: PreprocessArg = None,
    model: ModelArg = None,
    config: str | Path | dict[str, Any] | None = None,
    allow_errors: bool = False,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    seed: int = 0,
    batch_size: int = 32,
    workers: int = 2,
    trust_set: bool = False,
    layer: str | Sequence[str] | None = None,
    device: str = "auto",
    split: str = DEFAULT_EVAL_SPLIT,
    images_dir: str | Path | None = None,
) -> SuiteResult:
    """Validate a representative set against the evaluation data and pipeline.

    ``config``: a dict ``{check_id: {param: value}}``, a TOML/JSON file, or ``None`` to use
    ``[tool.repcurate.check]`` of the nearest ``pyproject.toml``. ``model`` enables
    ``activation_ranges`` and overrides the model recorded in the manifest for embeddings.
    ``trust_set``: run the model / preprocessing code the set's manifest names when nothing given here
    replaces it (without it such a check is refused up front, :class:`UsageError`; see :mod:`repcurate.trust`).
    ``layer``: the feature layer(s) of the embedding checks (default: the ``--layer`` recorded in the set's
    manifest, else the same default rule as ``build``).
    ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) runs the embeddings and the model passes there.
    ``eval_dir`` may be a YOLO ``data.yaml`` (its ``split``, default val), a COCO ``instances_*.json``
    (``images_dir``: its images' folder) or a segmentation folder; bad annotations are skipped with reasons.
    """
    from repcurate.frameworks.device import resolve_device

    device = resolve_device(device)
    started = time.perf_counter()
    loaded = repset if isinstance(repset, RepresentativeSet) else load(repset)
    if isinstance(config, dict):
        settings, source = config, "config"
    elif config is not None:
        settings, source = read_config_file(Path(config)), str(config)
    else:
        settings, found = discover_config(Path.cwd())
        source = str(found) if found else "config"
    params = resolve_params(settings, source=source)
    skip = skipped_ids(settings, source=source)
    trust_set = trust.effective_trust(trust_set, loaded.directory)  # sets this user built and signed: trusted
    require_trusted_code(loaded.manifest, trust.manifest_label(loaded.directory), eval_preprocess=eval_preprocess,
                         model=model, trust_set=trust_set,
                         uses={use for c in registered() if c.id not in skip for use in c.uses})
    eval_source = scan_eval(eval_dir, split=split, images_dir=images_dir, workers=max(2, workers))
    cache = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) if use_cache else None
    ctx = CheckContext(loaded, eval_source, eval_preprocess=eval_preprocess, model=model, cache_dir=cache,
                       seed=seed, batch_size=batch_size, workers=workers, trust_set=trust_set, layer=layer,
                       device=device)
    result = run_suite(ctx, params, skip=skip, allow_errors=allow_errors)
    result.seconds["total"] = time.perf_counter() - started
    result.inputs = {"repset": str(repset) if not isinstance(repset, RepresentativeSet) else None,
                     "eval_dir": eval_source.root.as_posix(), "eval_images": len(eval_source.records),
                     "eval_skipped": len(eval_source.skipped), "eval_layout": eval_source.layout, "config": source if settings else None,
                     "eval_preprocess": spec_text(eval_preprocess), "model": spec_text(model), "seed": seed,
                     "layer": ctx.layer_used, "eval_source": Path(eval_dir).as_posix(), "split": split,
                     "images_dir": None if images_dir is None else Path(images_dir).as_posix()}
    return result
