"""Real data for the ``repcurate check`` tests (no mocks).

- a small trained digits CNN written as a user model file (``file.py:make_model`` / ``file.py:preprocess``);
- scikit-learn digits split *by interleaving* (every 4th image is eval): both sides come from the
  same writers. (``write_digits_folder(..., offset=k)`` splits by writer instead, since the dataset
  is ordered by writer; ``distribution_shift`` rightly sees that as a mild shift);
- Fashion-MNIST from the Debian ``dataset-fashion-mnist`` idx files;
- crops of scikit-image's colour photos (digits and Fashion are grey, where BGR swaps are invisible);
- planted-defect sets: a built set copied under a new root, with extra samples appended.
"""
from __future__ import annotations

import gzip
import shutil
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from repcurate.example_data import digit_to_image
from tests.e2e.model_files import TORCH_MODEL_SOURCE

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
#: Colour photos of scikit-image (RGB uint8), one class per photo.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel")
#: Every EVAL_EVERY-th digit is an eval image, the others training images.
EVAL_EVERY = 4


@contextmanager
def torch_threads(count: int):
    """Small CNNs train several times faster on one thread (no OpenMP hand-offs on a busy 2-core box)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_digits_model(work: Path, *, epochs: int = 12) -> Path:
    """Train the digits CNN of ``tests/e2e/model_files.py`` on the training part (seeded) and write
    the user model file ``work/digits_model.py``; returns its path."""
    import torch
    from sklearn.datasets import load_digits

    weights = work / "digits.pt"
    namespace: dict[str, Any] = {}
    exec(TORCH_MODEL_SOURCE.format(weights=str(weights)), namespace)
    digits = load_digits()
    keep = np.arange(len(digits.target)) % EVAL_EVERY != 0
    x = torch.tensor(((digits.images[keep] / 16.0 - 0.3) / 0.4)[:, None], dtype=torch.float32)
    y = torch.tensor(digits.target[keep])
    with torch_threads(1):
        torch.manual_seed(0)
        model = namespace["DigitsNet"]()
        optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
        for _epoch in range(epochs):
            for start in range(0, len(x), 64):
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x[start:start + 64]), y[start:start + 64])
                loss.backward()
                optimiser.step()
    torch.save(model.state_dict(), weights)
    model_file = work / "digits_model.py"
    model_file.write_text(TORCH_MODEL_SOURCE.format(weights=str(weights)))
    return model_file


def write_untrained_digits_model(work: Path) -> Path:
    """The digits CNN of ``tests/e2e/model_files.py`` left at its seeded random initialisation (no
    training), as a user model file ``work/untrained_digits_model.py``; returns its path. Its feature
    space is crowded: distinct digits lie much closer together than with the trained weights."""
    loading = "    model = DigitsNet()\n    model.load_state_dict(torch.load(WEIGHTS))\n"
    source = TORCH_MODEL_SOURCE.format(weights="")
    assert loading in source, "the example model source changed: update write_untrained_digits_model"
    model_file = work / "untrained_digits_model.py"
    model_file.write_text(source.replace(loading, "    torch.manual_seed(0)\n    model = DigitsNet()\n"))
    return model_file


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target


def write_digits(directory: Path, *, part: str | None = None, classes: set[int] | None = None,
                 per_class: int | None = None, flat: bool = False) -> int:
    """Digits as PNGs (``<label>/<index>.png``, or flat): ``part`` "train" / "eval" picks one side of
    the interleaved split; ``classes`` and ``per_class`` restrict it. Returns the number written."""
    images, targets = _digits()
    written: dict[int, int] = {}
    for index, (pixels, target) in enumerate(zip(images, targets)):
        label = int(target)
        is_eval = index % EVAL_EVERY == 0
        if (part == "eval" and not is_eval) or (part == "train" and is_eval):
            continue
        if classes is not None and label not in classes:
            continue
        if per_class is not None and written.get(label, 0) >= per_class:
            continue
        folder = directory if flat else directory / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        digit_to_image(pixels).save(folder / f"{index:04d}.png")
        written[label] = written.get(label, 0) + 1
    return sum(written.values())


class DigitsProject:
    """A trained digits CNN (``model`` / ``preprocess`` specs) and the interleaved train / eval
    digits folders under ``work``, with an embedding cache beside them."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.cache = work / "cache"
        self.model_file = train_digits_model(work)
        self.model = f"{self.model_file}:make_model"
        self.preprocess = f"{self.model_file}:preprocess"
        self.train, self.eval = work / "train", work / "eval"
        write_digits(self.train, part="train")
        write_digits(self.eval, part="eval")

    def build_set(self, out: Path, *, size: int, train: Path | None = None, **kwargs: Any) -> Path:
        """``repcurate.build`` from ``train`` (default the training folder) with the digits CNN (or
        ``model=``) into ``out``."""
        import repcurate

        kwargs.setdefault("model", self.model)
        kwargs.setdefault("preprocess", self.preprocess)
        repcurate.build(train or self.train, out, size=size, cache_dir=self.cache, progress=False, **kwargs)
        return out


def fashion_arrays(split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images (n, 28, 28) uint8 and labels from the idx files (16- / 8-byte headers)."""
    with gzip.open(FASHION_DIR / f"{split}-images-idx3-ubyte.gz", "rb") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / f"{split}-labels-idx1-ubyte.gz", "rb") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    return images, labels


def write_fashion(directory: Path, count: int, *, labelled: bool = False) -> int:
    """The first ``count`` Fashion-MNIST test images as PNGs (flat, or one folder per class)."""
    images, labels = fashion_arrays("t10k")
    for index in range(count):
        folder = directory / FASHION_CLASSES[int(labels[index])] if labelled else directory
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index], mode="L").save(folder / f"{index:05d}.png")
    return count


def write_photo_crops(directory: Path, *, per_photo: int, size: int = 96, seed: int = 0) -> int:
    """Random ``size``×``size`` RGB crops of scikit-image's colour photos, one folder per photo."""
    from skimage import data

    rng = np.random.default_rng(seed)
    count = 0
    for name in PHOTOS:
        photo = np.asarray(getattr(data, name)())[..., :3]
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_photo):
            top = int(rng.integers(0, photo.shape[0] - size))
            left = int(rng.integers(0, photo.shape[1] - size))
            Image.fromarray(np.ascontiguousarray(photo[top:top + size, left:left + size]), "RGB").save(folder / f"{i:03d}.png")
            count += 1
    return count


def photo(name: str) -> Image.Image:
    """One scikit-image photo as a PIL RGB image."""
    from skimage import data

    return Image.fromarray(np.ascontiguousarray(np.asarray(getattr(data, name)())[..., :3]), "RGB")


def plant_samples(repset: Any, out: Path, root: Path, extra: list[tuple[str, bytes, str | None]]) -> Any:
    """Copy ``repset``'s files under ``root`` and append ``extra`` samples (relative path, file bytes,
    label) whose tensors come from the set's own preprocessing; save the new set to ``out``.

    This is how a set with planted duplicates is made: ``repcurate build`` itself never selects
    exact or near duplicates.
    """
    import copy

    from repcurate.data.images import decode_image
    from repcurate.data.preprocess import make_preprocessor
    from repcurate.data.scan import fingerprint_file
    from repcurate.repset import RepresentativeSet

    manifest = copy.deepcopy(repset.manifest)
    old_root = Path(manifest["root"])
    for sample in manifest["samples"]:
        target = root / sample["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(old_root / sample["path"], target)
    preprocess = make_preprocessor(manifest["preprocessing"]["spec"])
    tensors = [repset.tensors]
    for rel, payload, label in extra:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
        tensors.append(preprocess(decode_image(target).image)[None].astype(repset.tensors.dtype))
        manifest["samples"].append({"index": len(manifest["samples"]), "path": rel, "label": label,
                                    "content_fingerprint": fingerprint_file(target)})
    manifest["root"] = root.as_posix()
    planted = RepresentativeSet(np.concatenate(tensors), manifest)
    planted.save(out)
    return planted


def drop_label(repset: Any, out: Path, label: str) -> Any:
    """A copy of ``repset`` without the samples of one class (rows and manifest entries), saved to ``out``."""
    import copy

    from repcurate.repset import RepresentativeSet

    manifest = copy.deepcopy(repset.manifest)
    keep = [i for i, s in enumerate(manifest["samples"]) if s["label"] != label]
    manifest["samples"] = [dict(manifest["samples"][i], index=j) for j, i in enumerate(keep)]
    trimmed = RepresentativeSet(np.ascontiguousarray(repset.tensors[keep]), manifest)
    trimmed.save(out)
    return trimmed
