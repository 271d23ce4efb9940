"""Train the bundled example detector (repcurate/models/tiny_yolo.py) on the generated composites.

    nice -n 10 python benchmarks/train_detector.py [--data DIR] [--epochs E] [--seed S] [--threads T] [--init W]

Writes the composites to ``--data`` first when it holds no ``data.yaml`` (``repcurate.example_detection``,
``--train-images`` / ``--val-images``, seed 0), trains :class:`TinyYolo` on ``images/train`` (seeded
shuffles, horizontal flips, AdamW with a one-cycle learning rate), saves the state_dict to
``repcurate/models/tiny_yolo.pt`` (or ``--weights``), reloads it and scores it on the balanced
``images/val`` with pycocotools (mAP@0.5:0.95, mAP@0.5), then quantizes it once with MCT (8-bit, IMX500 TPC,
``--calibration`` val images) and scores that too. Prints one JSON record.

The committed weights came from six stages (defaults, then ``--init`` the previous stage's weights with
``--epochs 10 --lr 0.003``, ``--epochs 10 --lr 0.002`` twice, ``--epochs 20 --lr 0.002``, all on the default 1,200
train composites, then ``--train-images 4000 --epochs 12 --lr 0.002`` on a fresh ``--data`` folder; the val split
is the same 300 images whatever ``--train-images`` is): the commands and numbers are in BENCHMARKS.md.

Training targets (all here, not in the model file): each ground-truth box goes to one scale by its longer
side (≤ ``SCALE_SPLIT`` px: stride 8, else 16); its positive cells are the cells of that scale whose centre
lies inside the box and within ``CENTRE_RADIUS`` strides of the box centre, plus the cell holding the box
centre (a cell claimed twice goes to the smaller box). Loss: quality focal loss on the class logits (target:
the IoU of the cell's predicted box with its ground truth, 0 elsewhere) + ``BOX_WEIGHT`` × GIoU loss of the
positive cells, both summed and divided by the positives.
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

from benchmarks.composites import batches, detector_map, load_split, mct_quantize, model_inputs, seconds  # noqa: E402
from repcurate.models import tiny_yolo  # noqa: E402

SCALE_SPLIT = 48.0
CENTRE_RADIUS = 2.5
BOX_WEIGHT = 2.0


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def cell_layout(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cell centres (A, 2), strides (A,) and scale index (A,) of both scales, in ``decode``'s order."""
    centres, strides, scales = [], [], []
    for scale, stride in enumerate(tiny_yolo.STRIDES):
        cells = size // stride
        centres.append(tiny_yolo.cell_centres(cells, cells, stride))
        strides.append(torch.full((cells * cells,), float(stride)))
        scales.append(torch.full((cells * cells,), scale))
    return torch.cat(centres), torch.cat(strides), torch.cat(scales)


def assign(truth: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Per cell the index of its ground-truth box in ``truth`` ((k, 5): class, x0, y0, x1, y1), −1 if none."""
    owner = torch.full((len(centres),), -1, dtype=torch.long)
    if len(truth) == 0:
        return owner
    boxes = truth[:, 1:]
    wh = boxes[:, 2:] - boxes[:, :2]
    box_centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    scale = (wh.max(dim=1).values > SCALE_SPLIT).long()                                      # (k,)
    same_scale = scales[None, :] == scale[:, None]                                            # (k, A)
    inside = ((centres[None] > boxes[:, None, :2]) & (centres[None] < boxes[:, None, 2:])).all(-1)
    near = ((centres[None] - box_centre[:, None]).abs() < CENTRE_RADIUS * strides[None, :, None]).all(-1)
    holds_centre = ((box_centre[:, None] >= centres[None] - strides[None, :, None] / 2)
                    & (box_centre[:, None] < centres[None] + strides[None, :, None] / 2)).all(-1)
    candidate = same_scale & ((inside & near) | holds_centre)
    area = (wh[:, 0] * wh[:, 1])[:, None].expand_as(candidate)
    cost = torch.where(candidate, area, torch.full_like(area, math.inf))
    best_cost, best = cost.min(dim=0)
    owner[torch.isfinite(best_cost)] = best[torch.isfinite(best_cost)]
    return owner


def detection_loss(outputs: tuple[torch.Tensor, ...], targets: list[torch.Tensor], layout: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Quality focal loss + BOX_WEIGHT × GIoU loss over the batch, divided by the number of positive cells."""
    from torchvision.ops import box_iou, generalized_box_iou_loss

    boxes, logits = tiny_yolo.decode(outputs)
    target_scores = torch.zeros_like(logits)
    box_losses, positives = [], 0
    for index, truth in enumerate(targets):
        owner = assign(truth, *layout)
        cells = torch.nonzero(owner >= 0).squeeze(1)
        if len(cells) == 0:
            continue
        gt = truth[owner[cells]]
        predicted = boxes[index, cells]
        iou = box_iou(predicted, gt[:, 1:]).diagonal().detach().clamp(min=0.0)
        target_scores[index, cells, gt[:, 0].long()] = iou
        box_losses.append(generalized_box_iou_loss(predicted, gt[:, 1:], reduction="sum"))
        positives += len(cells)
    probability = logits.sigmoid()
    focal = F.binary_cross_entropy_with_logits(logits, target_scores, reduction="none") * (target_scores - probability).abs().pow(2)
    box_loss = torch.stack(box_losses).sum() if box_losses else logits.sum() * 0.0
    return (focal.sum() + BOX_WEIGHT * box_loss) / max(positives, 1)


def flip(images: torch.Tensor, targets: list[torch.Tensor], chosen: torch.Tensor, size: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Mirror the images where ``chosen`` is true, and their boxes."""
    images = torch.where(chosen[:, None, None, None], images.flip(-1), images)
    flipped = []
    for truth, mirror in zip(targets, chosen.tolist()):
        if mirror and len(truth):
            truth = truth.clone()
            truth[:, [1, 3]] = size - truth[:, [3, 1]]
        flipped.append(truth)
    return images, flipped


def train(data: Path, weights: Path, *, epochs: int, seed: int, batch_size: int, lr: float, threads: int,
          init: Path | None = None) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    split = load_split(data, "train")
    size = split.images.shape[-1]
    layout = cell_layout(size)
    model = tiny_yolo.TinyYolo()
    if init is not None:  # continue from earlier weights (a second training stage with its own one-cycle schedule)
        model.load_state_dict(torch.load(init, map_location="cpu", weights_only=True))
    model = model.to(memory_format=torch.channels_last).train()
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps = math.ceil(len(split.images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=epochs * steps, pct_start=0.15)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        total = 0.0
        for batch in batches(len(split.images), batch_size, generator):
            images = split.images[batch].float().div(255.0)
            targets = [split.boxes[i] for i in batch.tolist()]
            images, targets = flip(images, targets, torch.rand(len(batch), generator=generator) < 0.5, size)
            optimiser.zero_grad()
            loss = detection_loss(model(images.contiguous(memory_format=torch.channels_last)), targets, layout)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(batch)
        _log(f"epoch {epoch + 1}/{epochs}: loss {total / len(split.images):.4f} ({seconds(started):.0f} s)")
    train_seconds = seconds(started)
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.to(memory_format=torch.contiguous_format).eval().state_dict(), weights)
    return {"train_seconds": train_seconds, "train_images": len(split.images)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/repcurate-composites"))
    parser.add_argument("--train-images", type=int, default=1200)
    parser.add_argument("--val-images", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.004)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: on a busy shared machine 2 threads ran 10-20x slower per batch)")
    parser.add_argument("--calibration", type=int, default=32, help="val images MCT calibrates on (the sanity run)")
    parser.add_argument("--weights", type=Path, default=tiny_yolo.WEIGHTS)
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
    model = tiny_yolo.TinyYolo()
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    record["float"] = detector_map(model, args.data, "val")
    calibration, _ = model_inputs(args.data, "val", tiny_yolo.preprocess, limit=args.calibration)
    started = time.perf_counter()
    quantized = mct_quantize(model, calibration)
    record["mct_seconds"] = seconds(started)
    record["mct_8bit"] = detector_map(quantized, args.data, "val")
    record.update(init=None if args.init is None else str(args.init), weights=str(args.weights),
                  weights_bytes=args.weights.stat().st_size, epochs=args.epochs, seed=args.seed,
                  batch_size=args.batch_size, lr=args.lr, threads=args.threads, calibration_images=args.calibration,
                  parameters=sum(p.numel() for p in model.parameters()))
    _log(f"float mAP@0.5 {record['float']['map50']:.3f} (0.5:0.95 {record['float']['map50_95']:.3f}); "
         f"MCT 8-bit mAP@0.5 {record['mct_8bit']['map50']:.3f} (0.5:0.95 {record['mct_8bit']['map50_95']:.3f})")
    sys.stdout.write(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
