"""Pure batched forward of EfficientNet-Lite0 (batch 32, 224 px): NCHW vs channels-last, with and
without repcurate's glibc allocator tuning. Each configuration runs in its own process.

    python benchmarks/forward_allocator.py
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

REPS = 4
BATCH = 32


def child(layout: str, tuned: bool) -> dict[str, str | float]:
    import torch

    from repcurate.frameworks.bundled import load_efficientnet_lite0
    from repcurate.runtime import tune_allocator

    if tuned:
        tune_allocator()
    model = load_efficientnet_lite0()
    x = torch.rand(BATCH, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        for _ in range(REPS):
            model(x)
        seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"layout": layout, "allocator_tuned": tuned, "images_per_second": round(BATCH * REPS / seconds, 1),
            "user_seconds": round(after.ru_utime - before.ru_utime, 1),
            "system_seconds": round(after.ru_stime - before.ru_stime, 1),
            "minor_page_faults": after.ru_minflt - before.ru_minflt}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.stdout.write(json.dumps(child(sys.argv[2], sys.argv[3] == "1")) + "\n")
        return
    rows = []
    for tuned in (False, True):
        for layout in ("nchw", "channels_last"):
            out = subprocess.run([sys.executable, __file__, "--child", layout, "1" if tuned else "0"],
                                 capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    sys.stdout.write(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
