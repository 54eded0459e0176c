import dataclasses
import re

import pytest
import torch

from genlab.data.arrays import ImageArrays
from genlab.data.sources import MNIST, FashionMNIST, Shapes
from genlab.metrics import evaluator as ev
from genlab.metrics.evaluator import (
    Evaluator,
    EvaluatorConfig,
    EvaluatorNet,
    load_or_train_evaluator,
    train_evaluator,
)

TINY = EvaluatorConfig(feature_dim=16, width=8, epochs=1, batch_size=64)


@pytest.fixture(scope="module")
def shapes() -> tuple[ImageArrays, ImageArrays]:
    source = Shapes(num_train=2000, num_test=200)
    return source.load("train"), source.load("test")


@pytest.fixture(scope="module")
def few(shapes) -> tuple[ImageArrays, ImageArrays]:
    """300 train and 100 test images: enough for cache tests, which train one cheap epoch."""
    train, test = shapes
    return train.subset(torch.arange(300)), test.subset(torch.arange(100))


def _no_training(*args, **kwargs):
    raise AssertionError("train_evaluator was called, but the cache should have been used")


@pytest.mark.parametrize("image_shape", [(1, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64)])
def test_features_and_logits_shapes(image_shape):
    net = EvaluatorNet(image_shape, num_classes=7, feature_dim=24, width=8)
    evaluator = Evaluator(net, "toy", 0.5, EvaluatorConfig(), image_shape, 7)
    x = torch.rand(5, *image_shape)  # (N, C, H, W)
    features = evaluator.features(x, batch_size=2)
    assert features.shape == (5, 24) and evaluator.feature_dim == 24
    assert (features >= 0).all()  # after the ReLU
    logits = evaluator.logits(x, batch_size=2)
    assert logits.shape == (5, 7)
    torch.testing.assert_close(logits, net(x))  # batching does not change eval-mode outputs
    torch.testing.assert_close(net.head(features), logits)
    uint8 = (x * 255).round().to(torch.uint8)
    torch.testing.assert_close(evaluator.features(uint8), evaluator.features(uint8.float() / 255))


def test_evaluator_rejects_images_of_another_shape():
    net = EvaluatorNet((1, 28, 28), num_classes=10, width=4)
    evaluator = Evaluator(net, "mnist", 0.99, EvaluatorConfig(), (1, 28, 28), 10)
    with pytest.raises(ValueError, match=r"'mnist'.*\(1, 28, 28\).*\(2, 3, 28, 28\)"):
        evaluator.features(torch.rand(2, 3, 28, 28))


def test_digest_is_stable_and_changes_with_every_field():
    digest = EvaluatorConfig().digest()
    assert digest == EvaluatorConfig().digest()
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert EvaluatorConfig(lr=1).digest() == EvaluatorConfig(lr=1.0).digest()
    changed = {
        field.name: dataclasses.replace(
            EvaluatorConfig(), **{field.name: getattr(EvaluatorConfig(), field.name) + 1}
        ).digest()
        for field in dataclasses.fields(EvaluatorConfig)
    }
    assert len(set(changed.values()) | {digest}) == len(changed) + 1


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="epochs=0"):
        EvaluatorConfig(epochs=0)
    with pytest.raises(ValueError, match="lr=0"):
        EvaluatorConfig(lr=0.0)


def test_tiny_training_beats_chance_and_is_deterministic(shapes):
    train, test = shapes
    config = dataclasses.replace(TINY, epochs=4, batch_size=32)
    net, accuracy = train_evaluator(train, test, 3, config, progress=False)
    assert accuracy > 0.8  # chance is 1/3
    assert not net.training
    hundred = train.subset(torch.arange(100))
    again, accuracy_again = train_evaluator(hundred, test, 3, TINY, progress=False)
    same, accuracy_same = train_evaluator(hundred, test, 3, TINY, progress=False)
    assert accuracy_again == accuracy_same
    for name, value in again.state_dict().items():
        assert torch.equal(value, same.state_dict()[name]), name


def test_cache_round_trip(few, tmp_path, monkeypatch, capsys):
    train, test = few
    key = "shapes-1x32x32"
    first = load_or_train_evaluator(key, train, test, 3, tmp_path, TINY)
    path = tmp_path / "evaluators" / f"{key}-{TINY.digest()}.pt"
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == [path.name]
    assert f"evaluator {key}: test accuracy" in capsys.readouterr().out
    monkeypatch.setattr(ev, "train_evaluator", _no_training)
    second = load_or_train_evaluator(key, train, test, 3, tmp_path, TINY)
    assert f"(cached at {path})" in capsys.readouterr().out
    assert second.test_accuracy == first.test_accuracy and second.config == TINY
    assert second.key == first.key == path.stem  # names the config too, for feature caches
    assert (second.image_shape, second.num_classes) == ((1, 32, 32), 3)
    assert not second.net.training and not any(p.requires_grad for p in second.net.parameters())
    assert torch.equal(second.features(test.images), first.features(test.images))
    assert torch.equal(second.logits(test.images), first.logits(test.images))
    load_or_train_evaluator(key, train, test, 3, tmp_path, TINY, progress=False)
    assert capsys.readouterr().out == ""


def test_cache_made_for_other_data_is_refused(few, tmp_path, monkeypatch):
    train, test = few
    load_or_train_evaluator("shapes", train, test, 3, tmp_path, TINY, progress=False)
    monkeypatch.setattr(ev, "train_evaluator", _no_training)
    with pytest.raises(
        ValueError, match=r"shapes-.*\.pt was made for other data.*num_classes.*delete"
    ):
        load_or_train_evaluator("shapes", train, test, 4, tmp_path, TINY, progress=False)
    big = Shapes(num_train=2, num_test=2, image_size=64)
    with pytest.raises(ValueError, match=r"image_shape: file has \[1, 32, 32\].*delete"):
        load_or_train_evaluator("shapes", big.load("train"), big.load("test"), 3, tmp_path, TINY)


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "a list", "no weights"])
def test_corrupt_cache_names_the_file(few, tmp_path, monkeypatch, damage):
    train, test = few
    load_or_train_evaluator("shapes", train, test, 3, tmp_path, TINY, progress=False)
    path = tmp_path / "evaluators" / f"shapes-{TINY.digest()}.pt"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"not a torch file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "a list":
        torch.save([1, 2, 3], path)
    else:
        payload = torch.load(path, weights_only=True)
        torch.save({**payload, "state_dict": {}}, path)
    monkeypatch.setattr(ev, "train_evaluator", _no_training)
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(path))} is unreadable, corrupt.*delete it"
    ):
        load_or_train_evaluator("shapes", train, test, 3, tmp_path, TINY, progress=False)


def test_unlabelled_or_out_of_range_labels_are_refused_before_training(tmp_path, monkeypatch):
    images = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)
    data = ImageArrays(images, torch.full((8,), -1, dtype=torch.int64))
    monkeypatch.setattr(ev, "train_evaluator", _no_training)
    with pytest.raises(ValueError, match=r"'horse2zebra'.*needs labels.*inception"):
        load_or_train_evaluator("horse2zebra", data, data, 2, tmp_path, TINY)
    labelled = ImageArrays(images, torch.full((8,), 5, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"label 5.*num_classes=2"):
        load_or_train_evaluator("toy", labelled, labelled, 2, tmp_path, TINY)


def _reaches(source, key: str, num_classes: int, bar: float, tmp_path) -> None:
    train, test = source.load("train"), source.load("test")
    evaluator = load_or_train_evaluator(key, train, test, num_classes, tmp_path)
    assert evaluator.test_accuracy >= bar


@pytest.mark.slow
def test_mnist_evaluator_reaches_99_percent(shared_data_dir, tmp_path):
    _reaches(MNIST(root=shared_data_dir), "mnist-1x28x28", 10, 0.99, tmp_path)


@pytest.mark.slow
def test_fashion_mnist_evaluator_reaches_90_percent(shared_data_dir, tmp_path):
    _reaches(FashionMNIST(root=shared_data_dir), "fashion_mnist-1x28x28", 10, 0.90, tmp_path)


@pytest.mark.slow
def test_shapes_evaluator_reaches_99_percent(tmp_path):
    _reaches(Shapes(), "shapes-1x32x32", 3, 0.99, tmp_path)
