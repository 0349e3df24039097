"""The seed article's CNN, and the wrapper that makes it take raw [0,1] pixels.

`MNIST_Model` is the classic PyTorch MNIST example network, layer for layer: two 5×5 convolutions
(1→10, 10→20, the second followed by Dropout2d), each max-pooled and rectified, then 320→50→10
fully connected with dropout between, and log-softmax. About 21.8k parameters.

`Classifier` puts MNIST normalisation inside the module, so the exported ONNX graph takes pixels
in [0,1] (white ink on black) and nobody on the serving side has to remember the constants.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "MNIST_Model"
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


class MNIST_Model(nn.Module):  # the seed article's name, kept
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class Classifier(nn.Module):
    """[N,1,28,28] pixels in [0,1] → [N,10] log-probabilities. Normalisation is part of it."""

    def __init__(self) -> None:
        super().__init__()
        self.net = MNIST_Model()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net((image - MNIST_MEAN) / MNIST_STD)
