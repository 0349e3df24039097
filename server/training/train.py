"""The training loop: the seed article's network, AdamW with a one-cycle schedule, affine jitter.

The seed article trained `MNIST_Model` with plain SGD to 89%. The same network reaches 99%+ in a
few minutes on 2 CPU cores with: AdamW and OneCycleLR, batches of 128, channels-last memory
layout (about twice as fast for these small convolutions on CPU), tensors held in memory, and
small affine jitter so the model sees digits slightly off-centre, rotated and resized, as
drawings on a canvas are. The last fifth of the epochs (`clean_fraction`) see the digits without
jitter, so training ends on clean, centred digits like the test set's (about +0.07% MNIST test
accuracy on average over four seeded runs).

Fine-tuning can also hold on to the parent (issue #18's forgetting remedies, compared in
bench/learning.py): `distill` learns MNIST and replayed drawings partly from the parent's outputs
(Learning without Forgetting), `parent_share` blends the parent's weights back in (WiSE-FT).
Three more aim at churn (drawings the parent read right and the child gets wrong):
`focal_distill` adds a divergence from the parent's outputs to the loss, weighted up where the
parent was right (focal distillation, Yan et al. 2021, "Positive-Congruent Training");
`average_last` ends on the average of the weights over the last steps instead of the last
weights (stochastic weight averaging; the network has no batch norm to recompute);
`feature_lr` scales the learning rate of the convolutions, so the features move less than the
classifier on top of them.

Training is reproducible: the same seed, data and thread count give the same weights (torch's
deterministic algorithms are on while it trains; tests/learning/test_reproducible_round.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from server.mnist import Mnist
from server.training.data import Jitter, Mix, TrainingSet, images_to_tensor
from server.training.model import DEFAULT_ARCHITECTURE, Classifier, widths_of


@dataclass(frozen=True)
class ExtraExample:
    """A drawing to train on besides MNIST: [28,28] float32 in [0,1], white ink on black.
    `fooled`: it fooled the model (learnt); False: the model read it right (replayed)."""

    image: np.ndarray
    label: int
    weight: float = 1.0
    fooled: bool = True

    def __post_init__(self) -> None:
        shape = np.shape(self.image)
        if shape != (28, 28):
            raise ValueError(f"extra example image must be [28,28], got {list(shape)}")
        if not 0 <= int(self.label) <= 9:
            raise ValueError(f"extra example label must be a digit 0..9, got {self.label}")
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"extra example weight must be finite and >= 0, got {self.weight}")
        pixels = np.asarray(self.image, dtype=np.float32)
        if not (np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1):
            raise ValueError("extra example pixels must be in [0, 1]")


@dataclass(frozen=True)
class TrainConfig:
    architecture: str = DEFAULT_ARCHITECTURE  # server/training/model.py ARCHITECTURES
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.01  # the peak of the one-cycle schedule
    weight_decay: float = 1e-4
    seed: int = 0
    train_limit: int | None = None  # use only the first N MNIST training images
    test_limit: int | None = None  # evaluate on the first N MNIST test images
    threads: int | None = 2  # torch intra-op threads; None leaves torch's default
    augment: bool = True
    clean_fraction: float = 0.2  # of the epochs: the last ones are trained without jitter
    # How an epoch mixes MNIST and the players' drawings (training/data.py `Mix`).
    extra_oversample: float = 20.0  # draws per epoch of each fooling, per unit of weight
    balance_classes: bool = False  # foolings' draws spread evenly over their digits
    replay: float = 0.0  # draws of correctly-read drawings per fooling draw
    mnist_ratio: float | None = None  # MNIST digits per player draw; None: all, once per epoch
    # Keeping what the parent knew (fine-tuning only): `distill` of the loss on MNIST and
    # correctly-read drawings is the divergence from the parent's outputs on them, the rest the
    # label; `parent_share` of the final weights is the parent's (interpolation after training).
    distill: float = 0.0
    parent_share: float = 0.0
    # Against churn (fine-tuning only but `average_last` and `feature_lr`): `focal_distill` (α)
    # adds α·(1 + `focal_boost`·[the parent reads it right])·KL(parent‖child) on MNIST and
    # correctly-read drawings to the label's loss; `average_last` of the steps are averaged into
    # the final weights; `feature_lr` multiplies the learning rate of the convolutions.
    focal_distill: float = 0.0
    focal_boost: float = 5.0
    average_last: float = 0.0
    feature_lr: float = 1.0
    # Replayed drawings the parent reads with less confidence are drawn more: each one's weight
    # times 1 + `replay_focus`·(1 − the parent's probability of its label). Fine-tuning only.
    replay_focus: float = 0.0
    # A model soup: `soup` trainings with seeds seed, seed+1, …, their weights averaged.
    soup: int = 1
    show_progress: bool = True  # the tqdm bar on stderr, when it is a terminal
    device: str = "cpu"  # "cuda" on a trainer with a GPU; batches are prepared on the CPU

    def __post_init__(self) -> None:
        positive = [self.epochs, self.batch_size, self.lr, self.soup]
        positive += [v for v in (self.train_limit, self.test_limit, self.threads) if v is not None]
        shares = (self.clean_fraction, self.distill, self.parent_share, self.average_last)
        weights = (self.focal_distill, self.focal_boost, self.feature_lr, self.replay_focus)
        if (
            min(positive) <= 0
            or not all(0 <= share <= 1 for share in shares)
            or not all(math.isfinite(w) and w >= 0 for w in weights)
        ):
            raise ValueError(f"invalid training configuration: {self}")
        try:
            widths_of(self.architecture)
            self.mix()
        except ValueError as error:
            raise ValueError(f"invalid training configuration: {error}") from None

    def mix(self) -> Mix:
        return Mix(self.extra_oversample, self.balance_classes, self.replay, self.mnist_ratio)


@dataclass(frozen=True)
class Progress:
    """One progress report. `step` and `steps` count batches over the whole run."""

    epoch: int  # 1-based
    epochs: int
    step: int
    steps: int
    loss: float  # mean training loss over the epoch so far
    accuracy: float  # training accuracy (on jittered batches) over the epoch so far
    eta_seconds: float


@dataclass
class TrainResult:
    model: Classifier  # in eval mode
    test_accuracy: float
    counts: dict[str, int]  # mnist_train, extra, mnist_test


ProgressCallback = Callable[[Progress], None]
DISTILL_TEMPERATURE = 2.0  # as in Learning without Forgetting (Li & Hoiem, 2016)
PROGRESS_INTERVAL_SECONDS = 0.5


def train(
    mnist: Mnist,
    config: TrainConfig,
    *,
    extra: Iterable[ExtraExample] = (),
    init_weights: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train `Classifier` on MNIST (+ extras), from scratch or from `init_weights`."""
    extra = list(extra)
    if config.soup > 1:
        return _soup(mnist, config, extra, init_weights, on_progress)
    train_n = len(mnist.train_labels) if config.train_limit is None else config.train_limit
    data = TrainingSet.build(
        mnist.train_images[:train_n],
        mnist.train_labels[:train_n],
        [e.image for e in extra],
        [e.label for e in extra],
        [e.weight for e in extra],
        [e.fooled for e in extra],
    )
    mix = config.mix()
    with _cpu_settings(config.threads):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        model = Classifier(config.architecture)
        if init_weights is not None:
            model.load_state_dict(torch.load(init_weights, weights_only=True))
        elif config.distill or config.parent_share or config.focal_distill or config.replay_focus:
            raise ValueError(
                "distill, parent_share, focal_distill and replay_focus need a parent to fine-tune "
                "from"
            )
        parent_weights = {name: value.clone() for name, value in model.state_dict().items()}
        distilling = config.distill or config.focal_distill
        parent_outputs = _predict(model, data.images) if distilling else None
        if config.replay_focus:
            data = _focus_replay(data, model, config.replay_focus)
        model = model.to(config.device).to(memory_format=torch.channels_last)

        steps_per_epoch = math.ceil(data.epoch_size(mix) / config.batch_size)
        total_steps = config.epochs * steps_per_epoch
        optimizer, max_lr = _optimizer(model, config)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps
        )
        averaged_steps = math.ceil(total_steps * config.average_last)
        average = _WeightAverage(model) if averaged_steps else None
        jitter = Jitter() if config.augment else None
        jittered_epochs = config.epochs - math.floor(config.epochs * config.clean_fraction)
        reporter = _Reporter(config, steps_per_epoch, on_progress)
        model.train()
        step = 0
        for epoch in range(1, config.epochs + 1):
            order = data.epoch_order(mix, generator)
            for batch in order.split(config.batch_size):
                images = data.images[batch]
                if jitter is not None and epoch <= jittered_epochs:
                    images = jitter(images)
                images = images.contiguous(memory_format=torch.channels_last).to(config.device)
                labels = data.labels[batch].to(config.device)
                log_probs = model(images)
                if parent_outputs is None:
                    loss = F.nll_loss(log_probs, labels)
                else:
                    loss = _distilled_loss(
                        log_probs, labels, parent_outputs[batch], data.is_fooling(batch), config
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                step += 1
                if average is not None and step > total_steps - averaged_steps:
                    average.add(model)
                correct = int((log_probs.argmax(1) == labels).sum())
                reporter.step(epoch, loss.item() * len(batch), correct, len(batch))
        reporter.close()
        if average is not None:
            average.apply(model)
        model = model.to("cpu").to(memory_format=torch.contiguous_format).eval()
        if config.parent_share:
            share = config.parent_share
            tuned = model.state_dict()
            model.load_state_dict(
                {name: share * parent_weights[name] + (1 - share) * tuned[name] for name in tuned}
            )
        test_n = len(mnist.test_labels) if config.test_limit is None else config.test_limit
        accuracy = evaluate(model, mnist.test_images[:test_n], mnist.test_labels[:test_n])
    fooled = sum(e.fooled for e in extra)
    counts = {
        "mnist_train": data.mnist_count,
        "extra": fooled,
        "replay": len(extra) - fooled,
        "mnist_test": test_n,
    }
    return TrainResult(model=model, test_accuracy=accuracy, counts=counts)


def _focus_replay(data: TrainingSet, parent: Classifier, focus: float) -> TrainingSet:
    """`data` with each replayed drawing's weight times 1 + focus·(1 − p), p the parent's
    probability of its label: the drawings near the parent's boundary, the ones a fine-tune
    flips first, are drawn more often. Foolings and the number of draws are unchanged."""
    extra = data.images[data.mnist_count :]
    labels = data.labels[data.mnist_count :]
    confidence = _predict(parent, extra).exp().gather(1, labels[:, None])[:, 0].double()
    boost = torch.where(data.extra_fooled, 1.0, 1 + focus * (1 - confidence))
    return replace(data, extra_weights=data.extra_weights * boost)


def _soup(
    mnist: Mnist,
    config: TrainConfig,
    extra: list[ExtraExample],
    init_weights: Path | None,
    on_progress: ProgressCallback | None,
) -> TrainResult:
    """`config.soup` trainings from the same start with seeds seed, seed+1, …, and the mean of
    their weights (a uniform model soup: fine-tunes of one parent stay in one basin, so the mean
    is a model, and the noise of each run's data order and dropout averages out). Progress
    counts the trainings one after another, as epochs of one run."""
    members = config.soup
    average: _WeightAverage | None = None
    result: TrainResult | None = None
    for member in range(members):
        report = None
        if on_progress is not None:
            report = _member_progress(on_progress, member, members)
        single = replace(config, soup=1, seed=config.seed + member)
        result = train(mnist, single, extra=extra, init_weights=init_weights, on_progress=report)
        average = average or _WeightAverage(result.model)
        average.add(result.model)
    assert result is not None and average is not None
    model = result.model
    average.apply(model)
    test_n = len(mnist.test_labels) if config.test_limit is None else config.test_limit
    with _cpu_settings(config.threads):
        accuracy = evaluate(model, mnist.test_images[:test_n], mnist.test_labels[:test_n])
    return TrainResult(model=model, test_accuracy=accuracy, counts=result.counts)


def _member_progress(on_progress: ProgressCallback, member: int, members: int) -> ProgressCallback:
    started = time.monotonic()

    def report(p: Progress) -> None:
        left = (members - member - 1) * p.steps
        seconds_per_step = (time.monotonic() - started) / p.step
        on_progress(
            replace(
                p,
                epoch=member * p.epochs + p.epoch,
                epochs=members * p.epochs,
                step=member * p.steps + p.step,
                steps=members * p.steps,
                eta_seconds=p.eta_seconds + left * seconds_per_step,
            )
        )

    return report


FEATURES = ("net.conv1.", "net.conv2.")  # the parameters `feature_lr` scales


def _optimizer(model: Classifier, config: TrainConfig) -> tuple[torch.optim.AdamW, list[float]]:
    """AdamW, and the peak learning rate of each of its parameter groups: one group, or with a
    `feature_lr` other than 1 the convolutions in a group of their own at that multiple."""
    if config.feature_lr == 1.0:
        groups = [{"params": list(model.parameters())}]
        peaks = [config.lr]
    else:
        named = list(model.named_parameters())
        features = [p for name, p in named if name.startswith(FEATURES)]
        head = [p for name, p in named if not name.startswith(FEATURES)]
        groups = [{"params": features}, {"params": head}]
        peaks = [config.lr * config.feature_lr, config.lr]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    return optimizer, peaks


class _WeightAverage:
    """The running mean of a model's weights, one sample per `add` (stochastic weight
    averaging; the network has no batch norm whose statistics would need recomputing)."""

    def __init__(self, model: Classifier) -> None:
        self.sums = {n: torch.zeros_like(v, dtype=torch.float64) for n, v in _weights(model)}
        self.count = 0

    def add(self, model: Classifier) -> None:
        with torch.no_grad():
            for name, value in _weights(model):
                self.sums[name] += value.double()
        self.count += 1

    def apply(self, model: Classifier) -> None:
        with torch.no_grad():
            for name, value in _weights(model):
                value.copy_((self.sums[name] / self.count).to(value.dtype))


def _weights(model: Classifier) -> list[tuple[str, torch.Tensor]]:
    return [(name, value) for name, value in model.state_dict().items()]


@torch.no_grad()
def _predict(model: Classifier, images: torch.Tensor) -> torch.Tensor:
    """The model's log-probabilities for [N,1,28,28] images, computed once (no dropout)."""
    model.eval()
    outputs = torch.cat([model(chunk) for chunk in images.split(1000)])
    model.train()
    return outputs


def _distilled_loss(
    log_probs: torch.Tensor,
    labels: torch.Tensor,
    parent_log_probs: torch.Tensor,
    fooling: torch.Tensor,
    config: TrainConfig,
) -> torch.Tensor:
    """Foolings are learnt from their labels alone (the parent got them wrong); every other
    drawing is learnt `distill` from the parent's outputs (KL divergence, at temperature
    `DISTILL_TEMPERATURE`, which shows the parent's second guesses) and the rest from its label,
    plus `focal_distill` times the same divergence, `1 + focal_boost` times that where the
    parent reads the drawing right (focal distillation: keep above all what the parent got
    right). The parent's outputs are those on the drawing without jitter."""
    t = DISTILL_TEMPERATURE
    parent_log_probs = parent_log_probs.to(log_probs.device)
    parent = F.log_softmax(parent_log_probs / t, dim=1)
    mine = F.log_softmax(log_probs / t, dim=1)
    divergence = (parent.exp() * (parent - mine)).sum(1) * t * t
    hard = F.nll_loss(log_probs, labels, reduction="none")
    fooling = fooling.to(log_probs.device)
    soft = config.distill * divergence + (1 - config.distill) * hard
    if config.focal_distill:
        parent_right = (parent_log_probs.argmax(1) == labels).to(divergence.dtype)
        focus = 1 + config.focal_boost * parent_right
        soft = soft + config.focal_distill * focus * divergence
    return torch.where(fooling, hard, soft).mean()


@torch.no_grad()
def evaluate(model: Classifier, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of `model` on uint8 [N,28,28] images (or float in [0,1])."""
    model.eval()
    predicted = torch.cat(
        [model(chunk).argmax(1) for chunk in images_to_tensor(images).split(1000)]
    )
    return float((predicted == torch.from_numpy(np.asarray(labels)).long()).float().mean())


class _Reporter:
    """Running loss/accuracy per epoch → tqdm bar and (at most twice a second) the callback."""

    def __init__(
        self, config: TrainConfig, steps_per_epoch: int, on_progress: ProgressCallback | None
    ) -> None:
        self.epochs = config.epochs
        self.steps = config.epochs * steps_per_epoch
        self.steps_per_epoch = steps_per_epoch
        self.on_progress = on_progress
        # disable=None: tqdm draws the bar only when stderr is a terminal, never into a log.
        disable = None if config.show_progress else True
        self.bar = tqdm(total=self.steps, disable=disable, unit="step")
        self.started = time.monotonic()
        self.last_report = -math.inf
        self.done = 0
        self.loss_sum = self.correct = self.seen = 0.0

    def step(self, epoch: int, loss_sum: float, correct: int, seen: int) -> None:
        if self.done % self.steps_per_epoch == 0:
            self.loss_sum = self.correct = self.seen = 0.0
        self.done += 1
        self.loss_sum += loss_sum
        self.correct += correct
        self.seen += seen
        end_of_epoch = self.done % self.steps_per_epoch == 0
        now = time.monotonic()
        if not end_of_epoch and now - self.last_report < PROGRESS_INTERVAL_SECONDS:
            return
        self.last_report = now
        elapsed = now - self.started
        progress = Progress(
            epoch=epoch,
            epochs=self.epochs,
            step=self.done,
            steps=self.steps,
            loss=self.loss_sum / self.seen,
            accuracy=self.correct / self.seen,
            eta_seconds=elapsed / self.done * (self.steps - self.done),
        )
        self.bar.set_description(f"epoch {epoch}/{self.epochs}", refresh=False)
        self.bar.set_postfix(
            loss=f"{progress.loss:.4f}", acc=f"{progress.accuracy:.4f}", refresh=False
        )
        self.bar.update(self.done - self.bar.n)
        if self.on_progress is not None:
            self.on_progress(progress)

    def close(self) -> None:
        self.bar.close()


@contextmanager
def _cpu_settings(threads: int | None) -> Iterator[None]:
    """Thread count, deterministic algorithms, and denormal floats flushed to zero (tiny
    gradients made of denormals are very slow on x86); all are process-wide, so they are
    restored afterwards."""
    previous = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(previous)
