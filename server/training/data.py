"""Training data in memory: MNIST plus extra (adversarial) examples, and the augmentation.

Everything is one float tensor of [0,1] pixels; a batch is an index into it (no DataLoader and
no worker processes: the whole set is 200 MB and indexing is faster than collating on 2 cores).
Each epoch sees every MNIST digit once, plus extra examples drawn with replacement in proportion
to their weights — `oversample` draws per unit of weight — so a few hundred drawings count next
to 60k digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import v2


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N,28,28] (0..255) or float [N,28,28] in [0,1] → float32 [N,1,28,28] in [0,1]."""
    array = np.asarray(images)
    if array.ndim != 3 or array.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape [N,28,28], got {list(array.shape)}")
    tensor = torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(1)
    if array.dtype == np.uint8:
        return tensor.float() / 255.0
    return tensor.float()


@dataclass(frozen=True)
class TrainingSet:
    """MNIST training digits followed by the extra examples, with the extras' weights."""

    images: torch.Tensor  # [N,1,28,28] float32 in [0,1]
    labels: torch.Tensor  # [N] int64
    mnist_count: int
    extra_weights: torch.Tensor  # [N - mnist_count] float64, >= 0

    @classmethod
    def build(
        cls,
        mnist_images: np.ndarray,
        mnist_labels: np.ndarray,
        extra_images: Sequence[np.ndarray] = (),
        extra_labels: Sequence[int] = (),
        extra_weights: Sequence[float] = (),
    ) -> TrainingSet:
        parts = [images_to_tensor(mnist_images)]
        if len(extra_images):
            parts.append(images_to_tensor(np.stack(extra_images).astype(np.float32)))
        labels = np.concatenate([np.asarray(mnist_labels), np.asarray(extra_labels, dtype=int)])
        return cls(
            images=torch.cat(parts),
            labels=torch.from_numpy(labels.astype(np.int64)),
            mnist_count=len(mnist_labels),
            extra_weights=torch.tensor(list(extra_weights), dtype=torch.float64),
        )

    def extra_draws(self, oversample: float) -> int:
        """How many extra examples one epoch draws."""
        return round(oversample * float(self.extra_weights.sum()))

    def epoch_order(self, oversample: float, generator: torch.Generator) -> torch.Tensor:
        """Indices for one epoch: every MNIST digit once, weighted draws of extras, shuffled."""
        order = [torch.arange(self.mnist_count)]
        draws = self.extra_draws(oversample)
        if draws > 0:
            picked = torch.multinomial(
                self.extra_weights, draws, replacement=True, generator=generator
            )
            order.append(self.mnist_count + picked)
        indices = torch.cat(order)
        return indices[torch.randperm(len(indices), generator=generator)]


class Jitter:
    """Small random affine jitter (rotation, shift, scale) with torchvision.transforms.v2.

    Small on purpose: the seed network has 21.8k parameters and two dropout layers, and stronger
    jitter (with shear) cost it accuracy (98.8% instead of 99%+ after 12 epochs).

    `v2.RandomAffine` draws one set of parameters per call. Calling it once per image costs about
    0.5 ms — half a minute per epoch on 2 cores — so it is called per group of `group` images:
    every image still gets a random transform each epoch, and shuffling changes the groups.
    """

    def __init__(self, group: int = 16) -> None:
        self.group = group
        self.affine = v2.RandomAffine(degrees=6, translate=(0.06, 0.06), scale=(0.94, 1.06))

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.affine(chunk) for chunk in batch.split(self.group)])
