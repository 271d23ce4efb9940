"""Wall time of ``repcurate build`` on a YOLO dataset of real-image composites (issue 15's "build time for a
5,000-image YOLO folder").

Images: crops of scikit-image's sample photos (320×240) with scikit-learn digits 0–4 pasted at 16–96 px
(1–4 objects, a long-tailed class mix, 5 % background images), seeded; written as ``images/train/*.jpg`` +
``labels/train/*.txt`` + ``data.yaml``. Then ``repcurate build`` with the bundled EfficientNet-Lite0 runs on
it once, cache off, and its wall time is printed with the manifest's counts, the candidate pool per object class
(``--pool``: passed to ``build``; default its own default, ``auto``) and the set's instances per class.

    nice -n 10 python benchmarks/build_yolo_folder.py --images 5000 --work /tmp/yolo5000 [--pool 64|auto|all]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image
from sklearn.datasets import load_digits

WIDTH, HEIGHT = 320, 240
CLASSES = 5
CLASS_SHARES = np.array([0.5, 0.25, 0.13, 0.08, 0.04])


def write_dataset(root: Path, images: int, seed: int = 0) -> Path:
    """``root/data.yaml`` over ``images`` composites (skipped when the YAML is already there)."""
    yaml_path = root / "data.yaml"
    if yaml_path.is_file():
        return yaml_path
    rng = np.random.default_rng(seed)
    digits = load_digits()
    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket()]
    image_dir, label_dir = root / "images" / "train", root / "labels" / "train"
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    for index in range(images):
        photo = photos[index % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - HEIGHT), rng.integers(0, photo.shape[1] - WIDTH)
        canvas = photo[y:y + HEIGHT, x:x + WIDTH, :3].copy()
        lines = []
        objects = 0 if rng.random() < 0.05 else int(rng.integers(1, 5))
        for _ in range(objects):
            cls, side = int(rng.choice(CLASSES, p=CLASS_SHARES)), int(rng.integers(16, 97))
            x0, y0 = int(rng.integers(0, WIDTH - side + 1)), int(rng.integers(0, HEIGHT - side + 1))
            pixels = digits.images[rng.choice(np.flatnonzero(digits.target == cls))]
            glyph = np.asarray(Image.fromarray((pixels * 15).astype(np.uint8)).resize((side, side)))
            canvas[y0:y0 + side, x0:x0 + side] = glyph[..., None]
            lines.append(f"{cls} {(x0 + side / 2) / WIDTH:.6f} {(y0 + side / 2) / HEIGHT:.6f} "
                         f"{side / WIDTH:.6f} {side / HEIGHT:.6f}")
        name = f"img{index:05d}"
        Image.fromarray(canvas).save(image_dir / f"{name}.jpg", quality=90)
        if lines:
            (label_dir / f"{name}.txt").write_text("\n".join(lines) + "\n")
    names = ", ".join(f"d{c}" for c in range(CLASSES))
    yaml_path.write_text(f"path: .\ntrain: images/train\nval: images/train\nnames: [{names}]\n")
    return yaml_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--pool", default=None, help="build's --pool (default: build's own default, auto)")
    args = parser.parse_args()
    started = time.perf_counter()
    yaml_path = write_dataset(args.work / "dataset", args.images)
    print(f"dataset: {args.images} images in {time.perf_counter() - started:.1f} s", flush=True)
    out = args.work / "repset"
    command = ["repcurate", "build", "--train-dir", str(yaml_path), "--out", str(out), "--size", str(args.size),
               "--no-cache", "--overwrite", "-q", *([] if args.pool is None else ["--pool", args.pool])]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    manifest = json.loads((out / "manifest.json").read_text())
    print(json.dumps({"command": " ".join(command), "wall_seconds": round(seconds, 1), "counts": manifest["counts"],
                      "timings": manifest.get("timings"), "background": manifest["objects"]["background"],
                      "pool": {k: manifest["pool"][k] for k in ("value", "files", "pooled", "classes")},
                      "instances_selected": [c["instances_selected"] for c in manifest["objects"]["classes"]]},
                     indent=1))


if __name__ == "__main__":
    main()
