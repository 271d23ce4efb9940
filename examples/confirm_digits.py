"""End-to-end example on real data: train a small digits CNN, build a set, confirm it with MCT.

    python examples/confirm_digits.py WORKDIR [--weights-bits 2] [--framework torch|keras]

Writes scikit-learn's digits as train (100 per class) and held-out eval (70 per class) folders, trains
a seeded CNN (PyTorch, or Keras with the ``[keras]`` extra), builds a 32-image set with that model, and
runs `repcurate confirm`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

MODEL_SOURCE = '''
import numpy as np
import torch
import torch.nn as nn
from PIL import Image

WEIGHTS = {weights!r}
MEAN, STD = 0.3, 0.4


class DigitsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.features(x))


def make_model():
    model = DigitsNet()
    model.load_state_dict(torch.load(WEIGHTS))
    return model.eval()


def preprocess(image):
    grey = image.convert("L").resize((8, 8), Image.BILINEAR)
    x = np.asarray(grey, dtype=np.float32) / 255.0
    return ((x - MEAN) / STD)[None]
'''


def train_digits_cnn(weights: Path, model_source: str = MODEL_SOURCE, epochs: int = 15) -> None:
    """Train the CNN of ``model_source`` on scikit-learn's digits (seeded) and save its weights."""
    import torch
    from sklearn.datasets import load_digits

    namespace: dict = {}
    exec(model_source.format(weights=str(weights)), namespace)  # noqa: S102 - our own source
    torch.manual_seed(0)
    model = namespace["DigitsNet"]()
    digits = load_digits()
    x = torch.tensor(((digits.images / 16.0 - 0.3) / 0.4)[:, None], dtype=torch.float32)
    y = torch.tensor(digits.target)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _epoch in range(epochs):
        for start in range(0, len(x), 64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[start:start + 64]), y[start:start + 64]).backward()
            optimiser.step()
    torch.save(model.state_dict(), weights)


KERAS_PREPROCESS_SOURCE = '''
import numpy as np
from PIL import Image

MEAN, STD = 0.3, 0.4


def preprocess(image):
    grey = image.convert("L").resize((8, 8), Image.BILINEAR)
    x = np.asarray(grey, dtype=np.float32) / 255.0
    return ((x - MEAN) / STD)[:, :, None]  # Keras: channels last
'''


def train_digits_keras(path: Path, epochs: int = 40) -> None:
    """The digits CNN as a Keras model (same layers, channels last), trained seeded and saved to ``path``."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        layers.Input((8, 8, 1)),
        layers.Conv2D(8, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2D(16, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.AveragePooling2D(4), layers.Flatten(), layers.Dense(10, name="logits"),
    ])
    digits = load_digits()
    x = ((digits.images / 16.0 - 0.3) / 0.4)[..., None].astype("float32")
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, digits.target, epochs=epochs, batch_size=64, verbose=0, shuffle=False)
    model.save(path)


def write_model(work: Path, framework: str) -> tuple[str, str]:
    """Train the digits CNN of ``framework`` into ``work``; returns the --model and --preprocess specs."""
    if framework == "keras":
        train_digits_keras(work / "digits.keras")
        (work / "digits_preprocess.py").write_text(KERAS_PREPROCESS_SOURCE)
        return str(work / "digits.keras"), f"{work / 'digits_preprocess.py'}:preprocess"
    train_digits_cnn(work / "digits.pt")
    model_file = work / "digits_model.py"
    model_file.write_text(MODEL_SOURCE.format(weights=str(work / "digits.pt")))
    return f"{model_file}:make_model", f"{model_file}:preprocess"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("work", type=Path)
    parser.add_argument("--weights-bits", default="2")
    parser.add_argument("--framework", choices=("torch", "keras"), default="torch")
    args = parser.parse_args()
    import repcurate
    from repcurate.example_data import write_digits_folder

    work = args.work
    write_digits_folder(work / "train", per_class={d: 100 for d in range(10)})
    write_digits_folder(work / "eval", per_class={d: 70 for d in range(10)}, offset=100)
    model, preprocess = write_model(work, args.framework)
    repcurate.build(work / "train", work / "repset", size=32, model=model, preprocess=preprocess,
                    use_cache=False, progress=False, overwrite=True)
    exe = Path(sys.executable).parent / "repcurate"
    subprocess.run([str(exe), "confirm", "--repset", str(work / "repset"), "--model", model, "--preprocess", preprocess,
                    "--eval-dir", str(work / "eval"), "--weights-bits", args.weights_bits, "-q"], check=True)


if __name__ == "__main__":
    main()
