"""Source of a user model file (written into tmp_path by tests): a small digits CNN and its preprocessing."""

TORCH_MODEL_SOURCE = '''
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
