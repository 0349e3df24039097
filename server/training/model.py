"""The seed article's CNN at two widths, and the wrapper that makes it take raw [0,1] pixels.

`MNIST_Model` is the classic PyTorch MNIST example network, layer for layer: two 5×5
convolutions, the second followed by Dropout2d, each max-pooled and rectified, then two fully
connected layers with dropout between, and log-softmax. The seed article's widths (10 and 20
channels, 50 hidden units: 21.8k parameters) are the architecture "MNIST_Model"; new models are
"MNIST_Model-16-32-256" (147k parameters). Why wider: the seed widths could not learn the
players' foolings without forgetting digits they read right, whatever the recipe (issue #18);
the wider network learns them and keeps the rest (README, "Benchmarks"). And it costs almost
nothing to serve: ONNX Runtime computes these convolutions in blocks of 8 or 16 channels, so 10
and 20 channels were already paid as 16 and 32 (1.11× the time per image, bench/inference.py).

Weights load only into the shapes they were trained in, so a fine-tune keeps its parent's
architecture (server/training/pipeline.py); a model trained from scratch is the default one.

`Classifier` puts MNIST normalisation inside the module, so the exported ONNX graph takes pixels
in [0,1] (white ink on black) and nobody on the serving side has to remember the constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


@dataclass(frozen=True)
class Widths:
    conv1: int  # channels of the first convolution
    conv2: int  # channels of the second
    hidden: int  # units of the first fully connected layer


ARCHITECTURES = {
    "MNIST_Model": Widths(10, 20, 50),  # the seed article's
    "MNIST_Model-16-32-256": Widths(16, 32, 256),
}
DEFAULT_ARCHITECTURE = "MNIST_Model-16-32-256"


def widths_of(architecture: str) -> Widths:
    try:
        return ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"unknown architecture {architecture!r}: this trainer builds {', '.join(ARCHITECTURES)}"
        ) from None


class MNIST_Model(nn.Module):  # the seed article's name, kept
    def __init__(self, widths: Widths) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths.conv1, kernel_size=5)
        self.conv2 = nn.Conv2d(widths.conv1, widths.conv2, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(16 * widths.conv2, widths.hidden)  # 16: the 4×4 map left
        self.fc2 = nn.Linear(widths.hidden, 10)

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

    def __init__(self, architecture: str = DEFAULT_ARCHITECTURE) -> None:
        super().__init__()
        self.net = MNIST_Model(widths_of(architecture))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net((image - MNIST_MEAN) / MNIST_STD)
