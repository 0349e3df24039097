"""The training loop on small slices: it learns, it is reproducible, extra examples count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from server.mnist import Mnist
from server.serving.model_files import weights_path_for
from server.training import train as train_module
from server.training.data import Jitter, Mix, TrainingSet
from server.training.model import Classifier
from server.training.train import ExtraExample, Progress, TrainConfig, evaluate, train

TINY = {"train_limit": 500, "test_limit": 200, "epochs": 1, "batch_size": 64}


def _config(**options: object) -> TrainConfig:
    # one thread: these trainings are tiny, and two threads crawl when other work shares the cores
    return TrainConfig(**{"show_progress": False, "threads": 1, **options})  # type: ignore[arg-type]


def _predict(model: Classifier, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(images).float().unsqueeze(1) / 255).argmax(1).numpy()


def test_a_short_training_clearly_beats_chance(trained_model: Path, mnist: Mnist) -> None:
    # the session's quick model: 4k images, 3 epochs of 32 steps, scored on 2k test images
    import json

    card = json.loads(trained_model.with_suffix(".json").read_text())
    assert card["mnist_test_accuracy"] > 0.85
    model = Classifier()
    model.load_state_dict(torch.load(weights_path_for(trained_model), weights_only=True))
    held_out = slice(5000, 7000)  # test images the card's score did not use
    assert evaluate(model, mnist.test_images[held_out], mnist.test_labels[held_out]) > 0.85


def test_same_seed_same_weights(mnist: Mnist) -> None:
    first = train(mnist, _config(seed=3, **TINY)).model.state_dict()
    second = train(mnist, _config(seed=3, **TINY)).model.state_dict()
    other = train(mnist, _config(seed=4, **TINY)).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_weights_fine_tune_only_in_the_architecture_they_were_trained_in(
    mnist: Mnist, tmp_path: Path
) -> None:
    seed_widths = tmp_path / "seed.pt"
    torch.save(Classifier("MNIST_Model").state_dict(), seed_widths)

    tuned = train(mnist, _config(architecture="MNIST_Model", **TINY), init_weights=seed_widths)
    assert tuned.model.net.conv1.out_channels == 10

    with pytest.raises(RuntimeError, match="size mismatch"):
        train(mnist, _config(**TINY), init_weights=seed_widths)


def test_an_unknown_architecture_is_refused_before_training() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'LeNet-5'"):
        _config(architecture="LeNet-5")


def test_progress_is_reported_to_the_callback(mnist: Mnist) -> None:
    reports: list[Progress] = []
    result = train(mnist, _config(**(TINY | {"epochs": 2})), on_progress=reports.append)

    steps = 2 * 8  # 500 images in batches of 64, twice
    assert reports[-1].step == reports[-1].steps == steps
    assert [r.step for r in reports] == sorted(r.step for r in reports)
    assert {r.epoch for r in reports} == {1, 2} and reports[-1].epochs == 2
    assert any(r.step == 8 for r in reports)  # every epoch end is reported
    assert all(0 <= r.accuracy <= 1 and r.loss > 0 and r.eta_seconds >= 0 for r in reports)
    assert reports[-1].eta_seconds == 0
    assert result.counts == {"mnist_train": 500, "extra": 0, "replay": 0, "mnist_test": 200}


def test_fine_tuning_on_extra_examples_learns_them(trained_model: Path, mnist: Mnist) -> None:
    base_weights = weights_path_for(trained_model)
    base = Classifier()
    base.load_state_dict(torch.load(base_weights, weights_only=True))
    # eight test digits the base model reads correctly, taught with a wrong ("flipped") label
    pool = mnist.test_images[:200]
    correct = np.flatnonzero(_predict(base, pool) == mnist.test_labels[:200])[:8]
    images, labels = pool[correct], mnist.test_labels[correct].astype(int)
    flipped = (labels + 1) % 10
    extra = [
        ExtraExample(image / np.float32(255), int(label))
        for image, label in zip(images, flipped, strict=True)
    ]
    config = _config(
        train_limit=500, test_limit=200, epochs=4, lr=0.005, augment=False, extra_oversample=100
    )

    tuned = train(mnist, config, extra=extra, init_weights=base_weights)

    assert tuned.counts["extra"] == 8
    assert (_predict(tuned.model, images) == flipped).sum() >= 7  # the base model had 0 of 8


def test_a_parent_share_blends_the_parents_weights_back_in(
    trained_model: Path, mnist: Mnist
) -> None:
    parent_weights = weights_path_for(trained_model)
    parent = torch.load(parent_weights, weights_only=True)
    tuned = train(mnist, _config(**TINY), init_weights=parent_weights).model.state_dict()
    blended = train(
        mnist, _config(**TINY, parent_share=0.25), init_weights=parent_weights
    ).model.state_dict()
    for name, value in blended.items():
        torch.testing.assert_close(value, 0.25 * parent[name] + 0.75 * tuned[name])


def _agreement_with_the_parent(
    trained_model: Path, mnist: Mnist, option: str, values: tuple[float, ...]
) -> dict[float, float]:
    """Fine-tune the trained model on eight test digits it reads right, taught with a wrong
    ("flipped") label, once per value of `option`: each must learn at least 7 of them; returns
    how often each then agrees with the parent on 2,000 other digits."""
    base_weights = weights_path_for(trained_model)
    base = Classifier()
    base.load_state_dict(torch.load(base_weights, weights_only=True))
    pool = mnist.test_images[:200]
    correct = np.flatnonzero(_predict(base, pool) == mnist.test_labels[:200])[:8]
    images, flipped = pool[correct], (mnist.test_labels[correct].astype(int) + 1) % 10
    extra = [
        ExtraExample(image / np.float32(255), int(label))
        for image, label in zip(images, flipped, strict=True)
    ]
    others = mnist.test_images[1000:3000]
    agreement = {}
    for value in values:
        config = _config(
            train_limit=500,
            test_limit=200,
            epochs=4,
            lr=0.005,
            augment=False,
            extra_oversample=100,
            **{option: value},
        )
        tuned = train(mnist, config, extra=extra, init_weights=base_weights).model
        assert (_predict(tuned, images) == flipped).sum() >= 7
        agreement[value] = (_predict(tuned, others) == _predict(base, others)).mean()
    return agreement


def test_distilling_learns_the_foolings_and_keeps_the_parents_other_answers(
    trained_model: Path, mnist: Mnist
) -> None:
    agreement = _agreement_with_the_parent(trained_model, mnist, "distill", (0.0, 1.0))
    assert agreement[1.0] > agreement[0.0]


def test_distill_and_parent_share_need_a_parent(mnist: Mnist) -> None:
    for option in (
        {"distill": 0.5},
        {"parent_share": 0.1},
        {"focal_distill": 1.0},
        {"replay_focus": 5.0},
    ):
        with pytest.raises(ValueError, match="need a parent"):
            train(mnist, _config(**TINY, **option))


@pytest.mark.parametrize(
    "neutral",
    [
        {"focal_distill": 0.0, "focal_boost": 9.0},
        {"average_last": 0.0},
        {"feature_lr": 1.0},
        {"replay_focus": 0.0},
    ],
)
def test_the_churn_remedies_switched_off_train_bit_for_bit_as_before(
    trained_model: Path, mnist: Mnist, neutral: dict[str, float]
) -> None:
    parent = weights_path_for(trained_model)
    extra = [ExtraExample(mnist.test_images[i] / np.float32(255), 1) for i in range(4)]
    plain = train(mnist, _config(**TINY), extra=extra, init_weights=parent).model.state_dict()
    same = train(
        mnist, _config(**TINY, **neutral), extra=extra, init_weights=parent
    ).model.state_dict()
    assert all(torch.equal(plain[k], same[k]) for k in plain)


def test_focal_distillation_weighs_up_what_the_parent_read_right() -> None:
    # the parent says 0 to all three: right on the first, wrong on the second, the third fooled it
    parent = torch.log_softmax(torch.tensor([[4.0] + [0.0] * 9] * 3), 1)
    child = torch.log_softmax(torch.randn(3, 10, generator=torch.Generator().manual_seed(1)), 1)
    labels = torch.tensor([0, 2, 1])
    fooling = torch.tensor([False, False, True])
    hard = torch.nn.functional.nll_loss(child, labels, reduction="none")
    t = train_module.DISTILL_TEMPERATURE
    p, q = torch.log_softmax(parent / t, 1), torch.log_softmax(child / t, 1)
    divergence = (p.exp() * (p - q)).sum(1) * t * t
    config = _config(focal_distill=0.5, focal_boost=4.0)

    loss = train_module._distilled_loss(child, labels, parent, fooling, config)

    expected = hard + 0.5 * torch.tensor([5.0, 1.0, 0.0]) * divergence
    torch.testing.assert_close(loss, expected.mean())


def test_focal_distillation_keeps_more_of_the_parents_answers(
    trained_model: Path, mnist: Mnist
) -> None:
    agreement = _agreement_with_the_parent(trained_model, mnist, "focal_distill", (0.0, 0.3))
    assert agreement[0.3] > agreement[0.0]


def test_the_weight_average_is_the_mean_of_the_weights_it_was_given() -> None:
    torch.manual_seed(0)
    first, second, target = Classifier(), Classifier(), Classifier()
    average = train_module._WeightAverage(target)
    average.add(first)
    average.add(second)
    average.apply(target)
    a, b = first.state_dict(), second.state_dict()
    for name, value in target.state_dict().items():
        torch.testing.assert_close(value, (a[name] + b[name]) / 2)


def test_averaging_only_the_last_step_is_the_last_weights(
    trained_model: Path, mnist: Mnist
) -> None:
    parent = weights_path_for(trained_model)
    plain = train(mnist, _config(**TINY), init_weights=parent).model.state_dict()
    last = train(mnist, _config(**TINY, average_last=0.01), init_weights=parent)  # 1 of 8 steps
    spread = train(mnist, _config(**TINY, average_last=0.5), init_weights=parent)
    assert all(torch.equal(plain[k], last.model.state_dict()[k]) for k in plain)
    assert not all(torch.equal(plain[k], spread.model.state_dict()[k]) for k in plain)


def test_a_soup_is_the_mean_of_its_members_and_reports_them_as_one_run(
    trained_model: Path, mnist: Mnist
) -> None:
    parent = weights_path_for(trained_model)
    members = [
        train(mnist, _config(**TINY, seed=seed), init_weights=parent).model.state_dict()
        for seed in (5, 6)
    ]
    reports: list[Progress] = []
    soup = train(
        mnist, _config(**TINY, seed=5, soup=2), init_weights=parent, on_progress=reports.append
    )
    for name, value in soup.model.state_dict().items():
        torch.testing.assert_close(value, (members[0][name] + members[1][name]) / 2)
    assert [r.step for r in reports] == sorted(r.step for r in reports)
    assert reports[-1].step == reports[-1].steps == 2 * 8 and reports[-1].epochs == 2
    single = train(mnist, _config(**TINY, seed=5, soup=1), init_weights=parent).model
    assert all(torch.equal(single.state_dict()[k], members[0][k]) for k in members[0])


def test_replay_focus_draws_the_drawings_the_parent_is_unsure_of_more_often(
    trained_model: Path, mnist: Mnist
) -> None:
    parent = Classifier()
    parent.load_state_dict(torch.load(weights_path_for(trained_model), weights_only=True))
    images = mnist.test_images[:40] / np.float32(255)
    labels = mnist.test_labels[:40].astype(int)
    data = TrainingSet.build(
        mnist.train_images[:10],
        mnist.train_labels[:10],
        list(images),
        list(labels),
        [1.0] * 40,
        [True] * 20 + [False] * 20,
    )
    focused = train_module._focus_replay(data, parent, 10.0)
    with torch.no_grad():
        sure = parent.eval()(data.images[10:]).exp()[torch.arange(40), data.labels[10:]].double()
    assert torch.equal(focused.extra_weights[:20], data.extra_weights[:20])  # foolings as they were
    torch.testing.assert_close(focused.extra_weights[20:], 1 + 10 * (1 - sure[20:]))


def test_a_feature_lr_of_zero_keeps_the_convolutions_and_tunes_the_rest(
    trained_model: Path, mnist: Mnist
) -> None:
    parent_weights = weights_path_for(trained_model)
    parent = torch.load(parent_weights, weights_only=True)
    tuned = train(
        mnist, _config(**TINY, feature_lr=0.0), init_weights=parent_weights
    ).model.state_dict()
    for name, value in tuned.items():
        if name.startswith(train_module.FEATURES):
            assert torch.equal(value, parent[name]), name
        else:
            assert not torch.equal(value, parent[name]), name


def test_the_players_foolings_are_told_apart_from_mnist_and_replay() -> None:
    data = players_set()
    fooling = data.is_fooling(torch.arange(len(data.labels)))
    assert not fooling[: data.mnist_count].any()
    assert torch.equal(fooling[data.mnist_count :], data.extra_fooled)


class _CountingJitter:
    """Stands in for `Jitter`: leaves the batch alone and counts the batches it is given."""

    calls = 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        _CountingJitter.calls += 1
        return batch


@pytest.mark.parametrize(("clean_fraction", "jittered_epochs"), [(0.0, 5), (0.2, 4), (0.5, 3)])
def test_the_last_epochs_train_without_jitter(
    mnist: Mnist, monkeypatch: pytest.MonkeyPatch, clean_fraction: float, jittered_epochs: int
) -> None:
    monkeypatch.setattr(train_module, "Jitter", _CountingJitter)
    monkeypatch.setattr(_CountingJitter, "calls", 0)
    train(mnist, _config(**(TINY | {"epochs": 5}), clean_fraction=clean_fraction))
    assert _CountingJitter.calls == jittered_epochs * 8  # 500 images in batches of 64


def test_extra_examples_are_drawn_in_proportion_to_weight() -> None:
    images = np.zeros((10, 28, 28), np.uint8)
    blank = np.zeros((28, 28), np.float32)
    data = TrainingSet.build(images, np.arange(10), [blank] * 3, [1, 2, 3], [1.0, 3.0, 0.0])
    order = data.epoch_order(Mix(oversample=100), generator=torch.Generator().manual_seed(0))

    assert sorted(order[order < 10].tolist()) == list(range(10))  # each MNIST digit once
    drawn = np.bincount(order[order >= 10].numpy() - 10, minlength=3)
    assert drawn.sum() == 400  # 100 draws per unit of weight
    assert drawn[2] == 0  # weight 0: never drawn
    assert 2.3 < drawn[1] / drawn[0] < 4.0


def players_set() -> TrainingSet:
    """100 MNIST digits; foolings: 40 of digit 9 and 4 of digit 1; 10 drawings read right."""
    blank = np.zeros((28, 28), np.float32)
    labels = [9] * 40 + [1] * 4 + [3] * 10
    fooled = [True] * 44 + [False] * 10
    return TrainingSet.build(
        np.zeros((100, 28, 28), np.uint8),
        np.arange(100) % 10,
        [blank] * 54,
        labels,
        [1.0] * 54,
        fooled,
    )


def drawn(order: torch.Tensor, data: TrainingSet) -> np.ndarray:
    extra = order[order >= data.mnist_count].numpy() - data.mnist_count
    return np.bincount(extra, minlength=len(data.extra_weights))


def test_balanced_classes_give_each_fooled_digit_the_same_share_of_draws() -> None:
    data = players_set()
    generator = torch.Generator().manual_seed(0)
    plain = drawn(data.epoch_order(Mix(oversample=50), generator), data)
    balanced = drawn(data.epoch_order(Mix(oversample=50, balance_classes=True), generator), data)
    assert plain.sum() == balanced.sum() == 50 * 44  # foolings only: no replay asked for
    assert 8 < plain[:40].sum() / plain[40:44].sum() < 12  # 9s drawn 10x as often as 1s
    assert 0.8 < balanced[:40].sum() / balanced[40:44].sum() < 1.25  # the same share
    assert plain[44:].sum() == balanced[44:].sum() == 0


def test_replay_draws_correctly_read_drawings_per_fooling_draw() -> None:
    data = players_set()
    order = data.epoch_order(Mix(oversample=10, replay=0.5), torch.Generator().manual_seed(0))
    counts = drawn(order, data)
    assert counts[:44].sum() == 440 and counts[44:].sum() == 220
    assert sorted(order[order < 100].tolist()) == list(range(100))  # every MNIST digit once
    assert data.epoch_size(Mix(oversample=10, replay=0.5)) == len(order) == 760


def test_an_mnist_ratio_draws_that_many_random_digits_per_player_draw() -> None:
    data = players_set()
    mix = Mix(oversample=1, replay=0.5, mnist_ratio=1.0)  # 44 + 22 player draws
    order = data.epoch_order(mix, torch.Generator().manual_seed(0))
    mnist = order[order < 100]
    assert len(mnist) == 66 == len(set(mnist.tolist()))  # without replacement
    assert data.epoch_size(mix) == len(order) == 132
    empty = TrainingSet.build(np.zeros((100, 28, 28), np.uint8), np.arange(100) % 10)
    assert empty.epoch_size(mix) == 100  # no player drawings: every MNIST digit


def test_jitter_moves_pixels_but_keeps_shape_and_range() -> None:
    torch.manual_seed(0)
    batch = torch.zeros(64, 1, 28, 28)
    batch[:, :, 10:18, 12:16] = 1.0
    out = Jitter()(batch)
    assert out.shape == batch.shape
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, batch)
    assert (out - batch).abs().sum() < batch.sum() * 2  # a jitter, not a different picture


@pytest.mark.parametrize(
    ("image", "label", "weight", "complaint"),
    [
        (np.zeros((27, 28)), 1, 1.0, r"\[28,28\]"),
        (np.zeros((28, 28)), 10, 1.0, "digit"),
        (np.zeros((28, 28)), -1, 1.0, "digit"),
        (np.zeros((28, 28)), 1, -1.0, "weight"),
        (np.zeros((28, 28)), 1, float("nan"), "weight"),
        (np.full((28, 28), 255.0), 1, 1.0, r"\[0, 1\]"),
        (np.full((28, 28), np.nan), 1, 1.0, r"\[0, 1\]"),
    ],
)
def test_malformed_extra_examples_are_refused(
    image: np.ndarray, label: int, weight: float, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        ExtraExample(image, label, weight)


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"lr": 0.0},
        {"lr": -1.0},
        {"train_limit": 0},
        {"test_limit": -5},
        {"threads": 0},
        {"extra_oversample": -1.0},
        {"replay": -0.5},
        {"mnist_ratio": 0.0},
        {"clean_fraction": -0.1},
        {"clean_fraction": 1.5},
        {"distill": 1.5},
        {"parent_share": -0.1},
        {"focal_distill": -1.0},
        {"focal_boost": float("nan")},
        {"average_last": 1.5},
        {"feature_lr": -0.1},
        {"soup": 0},
        {"replay_focus": -1.0},
    ],
)
def test_invalid_configurations_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid training configuration"):
        TrainConfig(**bad)  # type: ignore[arg-type]
