"""Fashion-MNIST for the benchmarks: class folders of PNGs, and the small CNNs they quantize.

    python benchmarks/fashion_mnist.py folders --out DIR [--train-per-class N] [--longtail-rho RHO]
        [--eval-count N] [--seed S] [--overwrite]
    python benchmarks/fashion_mnist.py train --framework torch|keras [--epochs E] [--seed S]

``folders`` writes ``DIR/train/<class>/<index>.png`` from the 60,000-image training split and
``DIR/eval/<class>/<index>.png`` from the 10,000-image test split (``<index>`` is the image's
position in its idx file, zero-padded, so file order is the idx order), plus ``DIR/fashion_mnist.json``
recording the parameters and per-class counts. Class folders are ``0-tshirt`` … ``9-boot``: sorted
order is the class index, which ``repcurate confirm`` relies on. Balanced by default (all 6,000 /
1,000 images per class); ``--train-per-class`` and ``--eval-count`` keep a seeded subset with an
equal number per class; ``--longtail-rho RHO`` keeps round(n_max · RHO^(−i/9)) images of class i
(the CIFAR-10-LT construction, n_max = ``--train-per-class`` or 6,000). Subsets are nested: with
the same seed, a smaller count keeps a subset of the images a larger one keeps. Same arguments ⇒
byte-identical files.

``train`` trains the CNN of ``benchmarks/models/fashion_cnn.py`` (PyTorch) or
``benchmarks/models/fashion_cnn_keras.py`` (Keras) on the 60,000 training arrays, seeded and
deterministic, normalised by the model file's own ``normalise``, and saves the weights beside the
model file (``fashion_cnn.pt`` / ``fashion_cnn.keras``). At the end it logs the float model's top-1
on the 10,000 test images, fed through the model file's ``preprocess`` exactly as repcurate feeds
a decoded PNG (PIL RGB image).

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);
nothing is downloaded. Other benchmark scripts import the functions: ``from benchmarks.fashion_mnist
import fashion_arrays, write_folders`` from the repository root, or after
``sys.path.insert(0, str(Path(__file__).resolve().parents[1]))`` in a script under ``benchmarks/``.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Class folder names; sorted order == class index.
CLASS_FOLDERS = ("0-tshirt", "1-trouser", "2-pullover", "3-dress", "4-coat",
                 "5-sandal", "6-shirt", "7-sneaker", "8-bag", "9-boot")
NUM_CLASSES = len(CLASS_FOLDERS)
#: Images per class in each split of Fashion-MNIST.
PER_CLASS = {"train": 6000, "test": 1000}
MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_FILES = {"torch": MODELS_DIR / "fashion_cnn.py", "keras": MODELS_DIR / "fashion_cnn_keras.py"}
_IDX_PREFIX = {"train": "train", "test": "t10k", "t10k": "t10k"}
# Independent random streams, so e.g. changing --eval-count never changes the training subset.
_STREAM = {"train": 0, "test": 1}


@lru_cache(maxsize=2)
def fashion_arrays(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST ``split`` ("train": 60,000 images; "test" or "t10k": 10,000) from the idx gz
    files: images (n, 28, 28) uint8 and labels (n,) uint8, read-only, in idx order."""
    if split not in _IDX_PREFIX:
        raise ValueError(f"split must be one of {sorted(_IDX_PREFIX)}, not {split!r}")
    prefix = _IDX_PREFIX[split]
    with gzip.open(FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz", "rb") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz", "rb") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    if len(images) != len(labels):
        raise ValueError(f"{FASHION_DIR}/{prefix}: {len(images)} images but {len(labels)} labels")
    return images, labels


def longtail_counts(n_max: int, rho: float, num_classes: int = NUM_CLASSES) -> list[int]:
    """Images kept per class in the CIFAR-10-LT construction: class i keeps
    round(n_max · rho^(−i / (num_classes − 1))) (half rounds up); class 0 keeps n_max, the last n_max / rho."""
    if rho < 1:
        raise ValueError(f"the imbalance ratio rho must be >= 1, not {rho}")
    return [max(1, math.floor(n_max * rho ** (-i / (num_classes - 1)) + 0.5)) for i in range(num_classes)]


def select_indices(labels: np.ndarray, counts: Sequence[int], *, seed: int, stream: int = 0) -> np.ndarray:
    """Indices (sorted) of ``counts[c]`` images of each class c, chosen at random (seeded per class
    and stream). Each class is a prefix of one fixed permutation, so smaller counts are subsets."""
    chosen = []
    for label, count in enumerate(counts):
        pool = np.flatnonzero(labels == label)
        if count > len(pool):
            raise ValueError(f"class {CLASS_FOLDERS[label]} has {len(pool)} images, {count} requested")
        rng = np.random.default_rng([seed, stream, label])
        chosen.append(rng.permutation(pool)[:count])
    return np.sort(np.concatenate(chosen))


def write_pngs(directory: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> None:
    """``images[i]`` as ``directory/<class folder>/<i:05d>.png`` for every i in ``indices``
    (PIL, default zlib level, no ``optimize``: deterministic bytes)."""
    for folder in CLASS_FOLDERS:
        (directory / folder).mkdir(parents=True, exist_ok=True)
    for index in indices.tolist():
        Image.fromarray(images[index]).save(directory / CLASS_FOLDERS[labels[index]] / f"{index:05d}.png",
                                            optimize=False)


def _replace_dir(final: Path, partial: Path, overwrite: bool) -> None:
    if final.exists():
        if not overwrite:
            raise FileExistsError(f"{final} exists; fix: pass --overwrite (overwrite=True) or another --out")
        shutil.rmtree(final)
    partial.rename(final)


def write_folders(out: Path, *, train_per_class: int | None = None, longtail_rho: float | None = None,
                  eval_count: int | None = None, seed: int = 0, overwrite: bool = False) -> dict[str, Any]:
    """Write ``out/train`` and ``out/eval`` class folders (see the module docstring) and
    ``out/fashion_mnist.json``; returns that record (parameters, per-class counts) plus ``seconds``.

    ``train_per_class``: images per class from the training split (default all 6,000), or n_max of
    the long tail when ``longtail_rho`` is given. ``eval_count``: total test images, an equal number
    per class (``eval_count // 10``; default all 10,000). Each split is written to a hidden sibling
    folder and renamed into place; an existing ``train`` / ``eval`` needs ``overwrite``.
    """
    started = time.perf_counter()
    out = Path(out)
    n_max = PER_CLASS["train"] if train_per_class is None else int(train_per_class)
    eval_per_class = PER_CLASS["test"] if eval_count is None else int(eval_count) // NUM_CLASSES
    if not 1 <= n_max <= PER_CLASS["train"]:
        raise ValueError(f"train per class must be in 1..{PER_CLASS['train']}, not {n_max}")
    if not 1 <= eval_per_class <= PER_CLASS["test"]:
        raise ValueError(f"eval count must be in {NUM_CLASSES}..{NUM_CLASSES * PER_CLASS['test']}, not {eval_count}")
    train_counts = longtail_counts(n_max, longtail_rho) if longtail_rho is not None else [n_max] * NUM_CLASSES
    record: dict[str, Any] = {
        "source": str(FASHION_DIR), "seed": seed,
        "parameters": {"train_per_class": train_per_class, "longtail_rho": longtail_rho, "eval_count": eval_count},
        "classes": list(CLASS_FOLDERS)}
    if not overwrite:
        for name in ("train", "eval"):
            if (out / name).exists():
                raise FileExistsError(f"{out / name} exists; fix: pass --overwrite (overwrite=True) or another --out")
    for name, split, counts in (("train", "train", train_counts), ("eval", "test", [eval_per_class] * NUM_CLASSES)):
        images, labels = fashion_arrays(split)
        indices = select_indices(labels, counts, seed=seed, stream=_STREAM[split])
        partial = out / f".{name}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        write_pngs(partial, images, labels, indices)
        _replace_dir(out / name, partial, overwrite)
        record[name] = {"split": split, "images": len(indices),
                        "per_class": dict(zip(CLASS_FOLDERS, (int(c) for c in counts)))}
    (out / "fashion_mnist.json").write_text(json.dumps(record, indent=2) + "\n")
    record["seconds"] = round(time.perf_counter() - started, 2)  # returned, not written: the files stay identical
    return record


# --------------------------------------------------------------------------------------------------
# Training


def load_model_file(framework: str) -> ModuleType:
    """The model file of ``framework`` ("torch" or "keras") imported by path (as repcurate does)."""
    path = MODEL_FILES[framework]
    spec = importlib.util.spec_from_file_location(f"benchmarks_models_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_path_inputs(module: ModuleType, images: np.ndarray) -> np.ndarray:
    """``module.preprocess`` of every image as repcurate sees a decoded PNG (PIL RGB), stacked."""
    return np.stack([module.preprocess(Image.fromarray(image).convert("RGB")) for image in images])


def train_torch(weights: Path, *, epochs: int, seed: int, batch_size: int, lr: float, threads: int) -> dict[str, Any]:
    """Train ``FashionCNN`` (Adam, one-cycle learning rate, seeded shuffles) and save its state_dict."""
    import torch

    from repcurate.runtime import tune_allocator

    module = load_model_file("torch")
    tune_allocator()  # glibc would unmap and page-fault every activation buffer (BENCHMARKS.md)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    images, labels = fashion_arrays("train")
    x = torch.from_numpy(module.normalise(images)[:, None]).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(labels.astype(np.int64))
    model = module.FashionCNN().to(memory_format=torch.channels_last).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    steps = math.ceil(len(x) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=epochs * steps)
    shuffle = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=shuffle)
        total = 0.0
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(batch)
        _log(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} ({time.perf_counter() - started:.0f} s)")
    seconds = time.perf_counter() - started
    model = model.to(memory_format=torch.contiguous_format).eval()
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), weights)

    # Evaluate the saved weights through make_model-equivalent loading and the PNG path.
    test_images, test_labels = fashion_arrays("test")
    reloaded = module.FashionCNN()
    reloaded.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    reloaded.eval()
    inputs = png_path_inputs(module, test_images)
    if not np.array_equal(inputs, module.normalise(test_images)[:, None]):
        raise AssertionError("preprocess of the PNG path differs from the training normalisation")
    with torch.inference_mode():
        logits = torch.cat([reloaded(torch.from_numpy(inputs[s:s + 1000])) for s in range(0, len(inputs), 1000)])
    top1 = float((logits.argmax(1).numpy() == test_labels).mean())
    return {"train_seconds": round(seconds, 1), "test_top1": top1}


def train_keras(weights: Path, *, epochs: int, seed: int, batch_size: int, lr: float, threads: int) -> dict[str, Any]:
    """Train the Keras twin (Adam, warm-up then cosine-decayed learning rate, seeded shuffles, op
    determinism) and save it as ``.keras`` without optimizer state.

    A plain ``tf.function`` training step on numpy batches rather than ``model.fit``: here fit
    sat idle for 18-36 s after its last epoch (cause not investigated); the loop is as fast otherwise.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    module = load_model_file("keras")
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    images, labels = fashion_arrays("train")
    x = module.normalise(images)[..., None]
    y = labels.astype(np.int64)
    model = module.build_model()
    steps = math.ceil(len(x) / batch_size)
    warmup = int(0.3 * epochs * steps)  # as torch's OneCycleLR: 30 % warm-up, then cosine to ~0
    schedule = tf.keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 25, decay_steps=epochs * steps - warmup, alpha=1e-4,
        warmup_target=lr, warmup_steps=warmup)
    optimiser = tf.keras.optimizers.Adam(learning_rate=schedule)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32), tf.TensorSpec((None,), tf.int64)])
    def train_step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        optimiser.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    shuffle = np.random.default_rng(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        order = shuffle.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            total += float(train_step(tf.constant(x[batch]), tf.constant(y[batch]))) * len(batch)
        _log(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} ({time.perf_counter() - started:.0f} s)")
    seconds = time.perf_counter() - started
    clean = module.build_model()  # same architecture, no optimizer: the file carries only the model
    clean.set_weights(model.get_weights())
    weights.parent.mkdir(parents=True, exist_ok=True)
    clean.save(weights)

    test_images, test_labels = fashion_arrays("test")
    reloaded = tf.keras.models.load_model(weights, compile=False)
    inputs = png_path_inputs(module, test_images)
    if not np.array_equal(inputs, module.normalise(test_images)[..., None]):
        raise AssertionError("preprocess of the PNG path differs from the training normalisation")
    logits = reloaded.predict(inputs, batch_size=1000, verbose=0)
    top1 = float((logits.argmax(1) == test_labels).mean())
    return {"train_seconds": round(seconds, 1), "test_top1": top1}


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    folders = commands.add_parser("folders", help="write train/eval class folders of PNGs")
    folders.add_argument("--out", type=Path, required=True)
    folders.add_argument("--train-per-class", type=int, default=None,
                         help="training images per class (default: all 6000); n_max with --longtail-rho")
    folders.add_argument("--longtail-rho", type=float, default=None,
                         help="imbalance ratio: class i keeps round(n_max * rho^(-i/9))")
    folders.add_argument("--eval-count", type=int, default=None,
                         help="test images in total, equal per class (default: all 10000)")
    folders.add_argument("--seed", type=int, default=0)
    folders.add_argument("--overwrite", action="store_true", help="replace existing train/eval folders")
    train = commands.add_parser("train", help="train the CNN of benchmarks/models and save its weights there")
    train.add_argument("--framework", choices=("torch", "keras"), required=True)
    train.add_argument("--epochs", type=int, default=8)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 0.005)")
    train.add_argument("--threads", type=int, default=1,
                       help="CPU threads (default 1: fastest for this small CNN on a busy 2-core machine)")
    train.add_argument("--weights", type=Path, default=None,
                       help="output file (default: fashion_cnn.pt / fashion_cnn.keras in benchmarks/models)")
    args = parser.parse_args(argv)

    if args.command == "folders":
        try:
            record = write_folders(args.out, train_per_class=args.train_per_class, longtail_rho=args.longtail_rho,
                                   eval_count=args.eval_count, seed=args.seed, overwrite=args.overwrite)
        except (ValueError, FileExistsError) as exc:
            parser.exit(2, f"error: {exc}\n")
        _log(f"wrote {record['train']['images']} train + {record['eval']['images']} eval PNGs to {args.out} "
             f"in {record['seconds']:.1f} s")
        sys.stdout.write(json.dumps(record, indent=2) + "\n")
        return

    default_weights = MODELS_DIR / ("fashion_cnn.pt" if args.framework == "torch" else "fashion_cnn.keras")
    weights = args.weights or default_weights
    trainer = train_torch if args.framework == "torch" else train_keras
    result = trainer(weights, epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
                     lr=0.005 if args.lr is None else args.lr, threads=args.threads)
    result.update(framework=args.framework, weights=str(weights), weights_bytes=weights.stat().st_size,
                  epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, threads=args.threads)
    _log(f"{args.framework}: trained in {result['train_seconds']:.0f} s; float top-1 on the 10,000 test images "
         f"{100 * result['test_top1']:.2f} %; {weights} ({result['weights_bytes']:,} bytes)")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
