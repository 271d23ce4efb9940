"""Train the bundled example segmenter (repcurate/models/unet_lite.py) on the generated composites' masks.

    nice -n 10 python benchmarks/train_segmenter.py [--data DIR] [--epochs E] [--seed S] [--threads T] [--init W]

Writes the composites to ``--data`` first when it holds no ``data.yaml`` (as ``train_detector.py`` does;
both scripts can share one folder), trains :class:`UNetLite` on ``images/train`` + ``masks/train`` (pixel
cross-entropy weighted by 1/√(class pixel frequency) — background covers most pixels —, seeded shuffles,
horizontal flips, AdamW with a one-cycle learning rate), saves the
state_dict to ``repcurate/models/unet_lite.pt`` (or ``--weights``), reloads it and scores it on the balanced
``images/val`` (mIoU over background + 6 classes, from a confusion matrix of the argmax), then quantizes it
once with MCT (8-bit, IMX500 TPC, ``--calibration`` val images) and scores that too. Prints one JSON record.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.composites import batches, load_split, mct_quantize, model_inputs, seconds, segmenter_miou  # noqa: E402
from repcurate.models import unet_lite  # noqa: E402


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def train(data: Path, weights: Path, *, epochs: int, seed: int, batch_size: int, lr: float, threads: int,
          init: Path | None = None) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    split = load_split(data, "train")
    frequency = torch.bincount(split.masks.reshape(-1).long(), minlength=unet_lite.NUM_CLASSES).double()
    frequency /= frequency.sum()
    class_weights = frequency.clamp(min=1e-6).rsqrt()
    class_weights = (class_weights / (frequency * class_weights).sum()).float()  # mean pixel weight 1
    model = unet_lite.UNetLite()
    if init is not None:  # continue from earlier weights (a second training stage with its own one-cycle schedule)
        model.load_state_dict(torch.load(init, map_location="cpu", weights_only=True))
    model = model.to(memory_format=torch.channels_last).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = math.ceil(len(split.images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=epochs * steps, pct_start=0.15)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        total = 0.0
        for batch in batches(len(split.images), batch_size, generator):
            images = split.images[batch].float().div(255.0)
            masks = split.masks[batch].long()
            mirror = torch.rand(len(batch), generator=generator) < 0.5
            images = torch.where(mirror[:, None, None, None], images.flip(-1), images)
            masks = torch.where(mirror[:, None, None], masks.flip(-1), masks)
            optimiser.zero_grad()
            loss = F.cross_entropy(model(images.contiguous(memory_format=torch.channels_last)), masks, weight=class_weights)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(batch)
        _log(f"epoch {epoch + 1}/{epochs}: loss {total / len(split.images):.4f} ({seconds(started):.0f} s)")
    train_seconds = seconds(started)
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.to(memory_format=torch.contiguous_format).eval().state_dict(), weights)
    return {"train_seconds": train_seconds, "train_images": len(split.images),
            "class_weights": [round(float(w), 4) for w in class_weights]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/repcurate-composites"))
    parser.add_argument("--train-images", type=int, default=1200)
    parser.add_argument("--val-images", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: on a busy shared machine 2 threads ran 10-20x slower per batch)")
    parser.add_argument("--calibration", type=int, default=32, help="val images MCT calibrates on (the sanity run)")
    parser.add_argument("--weights", type=Path, default=unet_lite.WEIGHTS)
    parser.add_argument("--init", type=Path, default=None, help="start from these weights instead of a random init")
    args = parser.parse_args()

    from repcurate.example_detection import write_detection_dataset

    record: dict = {"data": str(args.data)}
    if not (args.data / "data.yaml").is_file():
        started = time.perf_counter()
        write_detection_dataset(args.data, train_images=args.train_images, val_images=args.val_images, seed=0)
        record["generate_seconds"] = seconds(started)
    record.update(train(args.data, args.weights, epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
                        lr=args.lr, threads=args.threads, init=args.init))
    model = unet_lite.UNetLite()
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    record["float"] = segmenter_miou(model, args.data, "val")
    calibration, _ = model_inputs(args.data, "val", unet_lite.preprocess, limit=args.calibration)
    started = time.perf_counter()
    quantized = mct_quantize(model, calibration)
    record["mct_seconds"] = seconds(started)
    record["mct_8bit"] = segmenter_miou(quantized, args.data, "val")
    record.update(init=None if args.init is None else str(args.init), weights=str(args.weights),
                  weights_bytes=args.weights.stat().st_size, epochs=args.epochs, seed=args.seed,
                  batch_size=args.batch_size, lr=args.lr, threads=args.threads, calibration_images=args.calibration,
                  parameters=sum(p.numel() for p in model.parameters()))
    _log(f"float mIoU {record['float']['miou']:.3f}; MCT 8-bit mIoU {record['mct_8bit']['miou']:.3f}")
    sys.stdout.write(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
