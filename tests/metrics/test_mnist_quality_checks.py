"""The evaluator-based metrics behave on real MNIST (slow; needs GENLAB_DATA or ../shared/data):
train vs test images are close, one class alone is far, the test split scores a high IS."""

import pytest
import torch

from genlab.data.sources import MNIST
from genlab.metrics.evaluator import load_or_train_evaluator
from genlab.metrics.quality import frechet_distance, inception_score


@pytest.mark.slow
def test_mnist_fid_and_is_sanity(shared_data_dir, tmp_path):
    source = MNIST(root=str(shared_data_dir))
    train, test = source.load("train"), source.load("test")
    evaluator = load_or_train_evaluator("mnist", train, test, 10, tmp_path)
    assert evaluator.test_accuracy >= 0.99
    test_features = evaluator.features(test.images)  # (10000, D)
    train_features = evaluator.features(train.images[:10000])
    ones = train.images[train.labels == 1]  # all 6742 training images of the digit 1
    figures = {
        "fid_train10k_vs_test": frechet_distance(train_features, test_features),
        "fid_test_vs_itself": frechet_distance(test_features, test_features),
        "fid_one_class_vs_test": frechet_distance(evaluator.features(ones), test_features),
        "is_test": inception_score(evaluator.logits(test.images), splits=10)[0],
    }
    print(figures)
    assert figures["fid_train10k_vs_test"] < 3
    assert figures["fid_test_vs_itself"] == pytest.approx(0, abs=1e-2)
    assert figures["fid_one_class_vs_test"] > 100
    assert figures["is_test"] > 9.5
    assert len(ones) > 6000 and torch.isfinite(test_features).all()
