"""Peak memory of reading a COCO instances JSON (``repcurate.data.coco.read_coco``) against the file's size.

    nice -n 10 python benchmarks/annotation_memory.py --megabytes 50 200 --out benchmarks/results/annotation_memory.json

The JSON is generated with COCO train2017's shape: 118 k images per 860 k annotations (about 7 a image), each
annotation with a 4-number ``bbox``, ``area``, ``iscrowd`` and a 24-point ``segmentation`` polygon (about 520 bytes
an annotation, as in the real file), 80 categories. The images are not written (each is skipped as
``missing_image`` after its entry is read: the cost measured is the annotation file's). Each size is read in a fresh
child process; its time and peak RSS (``ru_maxrss``) are reported beside the peak of a child that only imports the reader.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from repcurate.data.coco import read_coco
started = time.perf_counter()
if {read}:
    dataset = read_coco({path!r})
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_coco(path: Path, megabytes: float, seed: int = 0) -> int:
    """A COCO-shaped JSON of about ``megabytes`` MB; returns its annotation count."""
    rng = random.Random(seed)
    annotations_wanted = int(megabytes * 1e6 / 540)
    images = max(1, annotations_wanted // 7)
    with path.open("w") as out:
        out.write('{"info": {"description": "synthetic"}, "categories": [')
        out.write(", ".join(json.dumps({"id": i + 1, "name": f"class{i}", "supercategory": "x"}) for i in range(80)))
        out.write('], "images": [')
        out.write(", ".join(json.dumps({"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "width": 640, "height": 480,
                                        "license": 1, "date_captured": "2013-11-14 11:18:45"}) for i in range(images)))
        out.write('], "annotations": [')
        for a in range(annotations_wanted):
            x, y = rng.uniform(0, 500), rng.uniform(0, 380)
            w, h = rng.uniform(5, 140), rng.uniform(5, 100)
            polygon = [round(rng.uniform(x, x + w), 2) if k % 2 == 0 else round(rng.uniform(y, y + h), 2)
                       for k in range(48)]
            record = {"segmentation": [polygon], "area": round(w * h, 4), "iscrowd": 0, "image_id": rng.randint(1, images),
                      "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)], "category_id": rng.randint(1, 80),
                      "id": a + 1}
            out.write(("" if a == 0 else ", ") + json.dumps(record))
        out.write("]}")
    return annotations_wanted


def peak_kib(path: Path, read: bool) -> tuple[float, int]:
    """Seconds ``read_coco`` took in a fresh child, and the child's peak RSS in KiB."""
    code = _CHILD.format(root=str(ROOT), path=str(path), read=read)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, peak = done.stdout.split()[-2:]
    return float(seconds), int(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, nargs="+", default=[50.0, 200.0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        _, baseline = peak_kib(Path(work) / "none.json", read=False)
        for megabytes in args.megabytes:
            path = Path(work) / "instances.json"
            count = write_coco(path, megabytes)
            size = path.stat().st_size
            seconds, peak = peak_kib(path, read=True)
            row = {"file_mb": round(size / 1e6, 1), "annotations": count, "read_s": round(seconds, 2),
                   "peak_rss_mb": round(peak / 1024, 1),
                   "baseline_rss_mb": round(baseline / 1024, 1),
                   "added_per_file_byte": round((peak - baseline) * 1024 / size, 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            path.unlink()
    if args.out is not None:
        args.out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                        "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
