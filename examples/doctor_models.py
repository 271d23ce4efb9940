"""Digits CNNs with planted quantization problems, for `repcurate doctor` (example and tests).

    python examples/doctor_models.py WORKDIR VARIANT    # writes WORKDIR/<VARIANT>_model.py

Every variant shares one architecture (conv → two conv branches → concat → conv → pool → linear,
trained seeded on the first 100 images of each class of scikit-learn's digits) and then gets one
defect planted by an exact, output-preserving edit of the trained weights:

- ``healthy``: nothing planted (its concat is balanced).
- ``concat``: the second branch is scaled ×64 before the concatenation and the next convolution's
  weights for those channels are divided by 64 (an unbalanced concatenation).
- ``spikes``: one extra first-layer channel that fires only on the rarest 0.1 % of positions, with
  values ≈ 1000× the layer's usual range, and zero weights downstream (rare huge activations).
- ``culprit``: one extra first-layer channel that is a constant ≈ 1000× the usual range, with zero
  weights downstream (a layer whose 8-bit activation quantization destroys accuracy).
- ``negative``: trained with SiLU and leaky-ReLU activations (negative activation values).
- ``untraceable``: ``healthy`` behind a data-dependent ``if`` that torch.fx cannot trace.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

VARIANTS = ("healthy", "concat", "spikes", "culprit", "negative", "untraceable")
MEAN, STD = 0.3, 0.4
TRAIN_PER_CLASS = 100
WIDTH = 8


def preprocess(image: Image.Image) -> np.ndarray:
    """Greyscale 8×8, standardised, channels first."""
    grey = image.convert("L").resize((8, 8), Image.BILINEAR)
    x = np.asarray(grey, dtype=np.float32) / 255.0
    return ((x - MEAN) / STD)[None]


def _activation(kind: str) -> nn.Module:
    return {"relu": nn.ReLU(), "silu": nn.SiLU(), "leaky": nn.LeakyReLU(0.1)}[kind]


class PlantedNet(nn.Module):
    """The shared architecture; ``branch_scale`` multiplies the second branch before the concat."""

    def __init__(self, acts: tuple[str, str, str] = ("relu", "relu", "relu"), conv1_out: int = WIDTH):
        super().__init__()
        self.conv1 = nn.Conv2d(1, conv1_out, 3, padding=1)
        self.act1 = _activation(acts[0])
        self.conv2a = nn.Conv2d(conv1_out, 8, 3, padding=1)
        self.act2a = _activation(acts[1])
        self.conv2b = nn.Conv2d(conv1_out, 8, 3, padding=1)
        self.act2b = _activation(acts[1])
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        self.act3 = _activation(acts[2])
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(64, 10)
        self.branch_scale = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.conv1(x))
        a = self.act2a(self.conv2a(h))
        b = self.act2b(self.conv2b(h))
        if self.branch_scale != 1.0:  # a Python attribute: fx traces straight through it
            b = b * self.branch_scale
        h = self.act3(self.conv3(torch.cat([a, b], dim=1)))
        return self.head(torch.flatten(self.pool(h), 1))


class Untraceable(nn.Module):
    """A model whose forward branches on a tensor value: torch.fx cannot trace it."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 10:  # data-dependent control flow
            x = x.clamp(max=10)
        return self.inner(x)


def digits_train() -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``TRAIN_PER_CLASS`` digits of each class, preprocessed as the image files are."""
    from sklearn.datasets import load_digits

    from repcurate.example_data import digit_to_image

    digits = load_digits()
    seen: dict[int, int] = {}
    xs, ys = [], []
    for pixels, target in zip(digits.images, digits.target):
        seen[int(target)] = seen.get(int(target), 0) + 1
        if seen[int(target)] <= TRAIN_PER_CLASS:
            xs.append(preprocess(digit_to_image(pixels)))
            ys.append(int(target))
    return torch.tensor(np.stack(xs)), torch.tensor(ys)


def train(acts: tuple[str, str, str], epochs: int = 40) -> PlantedNet:
    """Seeded training of the shared architecture on the digits train split."""
    torch.manual_seed(0)
    model = PlantedNet(acts)
    x, y = digits_train()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    for _epoch in range(epochs):
        for start in range(0, len(x), 64):
            idx = order[start:start + 64]
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimiser.step()
    return model.eval()


def _add_first_layer_channel(model: PlantedNet, weight: torch.Tensor, bias: float) -> PlantedNet:
    """A copy of ``model`` with one more conv1 output channel; the next layers ignore it (zero weights)."""
    planted = PlantedNet(conv1_out=WIDTH + 1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["conv1.weight"] = torch.cat([state["conv1.weight"], weight[None]])
    state["conv1.bias"] = torch.cat([state["conv1.bias"], torch.tensor([bias])])
    for branch in ("conv2a", "conv2b"):
        w = state[f"{branch}.weight"]
        state[f"{branch}.weight"] = torch.cat([w, torch.zeros_like(w[:, :1])], dim=1)
    planted.load_state_dict(state)
    return planted.eval()


def plant(model: PlantedNet, variant: str) -> nn.Module:
    """Apply ``variant``'s output-preserving defect to a trained ``model``."""
    with torch.no_grad():
        if variant in ("healthy", "negative"):
            return model
        if variant == "untraceable":
            return Untraceable(model).eval()
        if variant == "concat":
            model.branch_scale = 64.0
            model.conv3.weight[:, 8:] /= 64.0
            return model
        x, _ = digits_train()
        pre = model.conv1(x)
        usual_max = float(torch.relu(pre).max())
        if variant == "culprit":
            return _add_first_layer_channel(model, torch.zeros_like(model.conv1.weight[0]), 1000.0 * usual_max)
        if variant == "spikes":
            channel = pre[:, 0].flatten()
            cut = float(torch.quantile(channel, 0.999))
            gain = 1000.0 * usual_max / max(float(channel.max()) - cut, 1e-6)
            return _add_first_layer_channel(model, gain * model.conv1.weight[0], gain * (float(model.conv1.bias[0]) - cut))
    raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")


def make_variant(variant: str, weights: str | Path) -> nn.Module:
    """Load the trained weights of ``variant``'s activations and plant its defect."""
    acts = ("silu", "leaky", "silu") if variant == "negative" else ("relu", "relu", "relu")
    model = PlantedNet(acts)
    model.load_state_dict(torch.load(weights))
    return plant(model.eval(), variant)


MODEL_FILE = '''"""The {variant!r} digits CNN of examples/doctor_models.py."""
import importlib.util

_spec = importlib.util.spec_from_file_location("repcurate_doctor_models", {source!r})
_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_models)
preprocess = _models.preprocess


def make_model():
    return _models.make_variant({variant!r}, {weights!r})
'''


def write_variant(work: str | Path, variant: str) -> tuple[str, str]:
    """Train (once per activation kind) and write ``work/<variant>_model.py``; returns the --model and
    --preprocess specs."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    kind = "negative" if variant == "negative" else "relu"
    weights = work / f"digits_{kind}.pt"
    if not weights.exists():
        acts = ("silu", "leaky", "silu") if kind == "negative" else ("relu", "relu", "relu")
        torch.save(train(acts).state_dict(), weights)
    model_file = work / f"{variant}_model.py"
    model_file.write_text(MODEL_FILE.format(variant=variant, source=str(Path(__file__).resolve()), weights=str(weights)))
    return f"{model_file}:make_model", f"{model_file}:preprocess"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("variant", choices=VARIANTS)
    args = parser.parse_args()
    model, pre = write_variant(args.work, args.variant)
    print(f"--model {model} --preprocess {pre}")


if __name__ == "__main__":
    main()
