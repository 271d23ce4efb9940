"""Size and speed of the HTML report of a 1,000-image set (Fashion-MNIST, bundled EfficientNet-Lite0).

    python benchmarks/report_speed.py --work /tmp/repcurate-report-bench --out benchmarks/results/report_speed.json

Prepares once (kept in --work): the first --train-count Fashion-MNIST training images and the first
--eval-count test images as class folders, a --size image set built with the bundled model, and its
`repcurate check --format json`. Then times `repcurate report` (child processes, every section: the
set, coverage, the real check, and the test fixtures' confirm and doctor JSON), and opens the page
in headless Chromium (selenium + Debian's chromium-driver) --runs times in a fresh tab, reading the
navigation timing (load event end) and counting console errors.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from build_speed import FASHION_CLASSES, FASHION_DIR

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "unit" / "report" / "data"
DOCTOR_EXAMPLE = {"gain_unit": "top-1 points",
                  "findings": [{"title": "larger set", "gain": 1.2, "message": "example finding"}],
                  "recommended_config": {"size": 1000}}


def write_images(directory: Path, split: str, count: int, prefix: str) -> None:
    import gzip

    with gzip.open(FASHION_DIR / f"{split}-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / f"{split}-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    for index in range(count):
        folder = directory / FASHION_CLASSES[labels[index]]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index], mode="L").save(folder / f"{prefix}{index:05d}.png")


def render_times(page: Path, runs: int) -> dict[str, object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    loads, dom_ready, errors = [], [], 0
    try:
        for _ in range(runs):
            driver.get("about:blank")
            driver.get_log("browser")
            driver.get(page.resolve().as_uri())
            timing = driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return [n.domContentLoadedEventEnd, n.loadEventEnd];")
            dom_ready.append(round(timing[0]))
            loads.append(round(timing[1]))
            errors += sum(1 for entry in driver.get_log("browser") if entry["level"] == "SEVERE")
        images = driver.execute_script("return Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length;")
    finally:
        driver.quit()
    return {"load_event_ms": loads, "dom_content_loaded_ms": dom_ready, "console_errors": errors, "images_decoded": images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-count", type=int, default=2000)
    parser.add_argument("--eval-count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    exe = shutil.which("repcurate") or str(Path(sys.executable).parent / "repcurate")
    work, cache = args.work, args.work / "cache"
    train, evaluation, repset = work / "train", work / "eval", work / "repset"
    if not train.is_dir():
        write_images(train, "train", args.train_count, "")
    if not evaluation.is_dir():
        write_images(evaluation, "t10k", args.eval_count, "t")
    if not repset.is_dir():
        subprocess.run([exe, "build", "--train-dir", str(train), "--out", str(repset), "--size", str(args.size),
                        "--cache-dir", str(cache), "-q"], check=True, stdout=subprocess.DEVNULL)
    check_json = work / "check.json"
    if not check_json.is_file():
        subprocess.run([exe, "check", "--repset", str(repset), "--eval-dir", str(evaluation), "--cache-dir", str(cache),
                        "--format", "json", "--output", str(check_json), "-q"], check=False)
    doctor_json = work / "doctor.json"
    doctor_json.write_text(json.dumps(DOCTOR_EXAMPLE))
    page = work / "report.html"
    command = [exe, "report", "--repset", str(repset), "--check", str(check_json),
               "--confirm", str(FIXTURES / "confirm_digits.json"), "--doctor", str(doctor_json), "--out", str(page), "-q"]
    seconds = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds.append(round(time.perf_counter() - started, 2))
    html = page.read_text(encoding="utf-8")
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
        "command": " ".join(command), "set_images": args.size, "train_images": args.train_count,
        "eval_images": args.eval_count, "report_bytes": len(html.encode("utf-8")),
        "thumbnails": len(re.findall(r'<img class="thumb', html)),
        "thumbnail_bytes": sum(len(uri) for uri in re.findall(r'<img class="thumb[^"]*" src="([^"]+)"', html)),
        "report_seconds": seconds, "browser": render_times(page, args.runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
