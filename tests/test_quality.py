"""Quality bars on real data (slow: `make test-slow`, needs GENLAB_DATA or ../shared/data)."""

import math

import pytest

from genlab.data.sources import MNIST
from genlab.metrics.evaluate import dataset_key, generate
from genlab.metrics.evaluator import load_or_train_evaluator
from genlab.runs import load_model
from genlab.train import train
from tests.helpers import compose_train_config


@pytest.mark.slow
def test_vae_mnist_reaches_the_quality_bar(tmp_path, shared_data_dir, monkeypatch):
    """Dynamically binarized MNIST: test -ELBO <= 100 nats and IWAE NLL (k = 1000) <= 95 nats,
    within 20 minutes on 2 CPU cores."""
    monkeypatch.setenv("GENLAB_DATA", str(shared_data_dir))
    cfg = compose_train_config(["experiment=vae_mnist", "logger=none"], output_dir=tmp_path)
    record = train(cfg)
    assert record["status"] == "completed"
    assert record["test/neg_elbo"] <= 100.0
    assert record["test/iwae_nll"] <= 95.0
    assert record["test/iwae_nll"] < record["test/neg_elbo"]
    assert record["wall_time_s"] < 20 * 60


@pytest.mark.slow
def test_pixelcnn_mnist_reaches_the_quality_bar(tmp_path, shared_data_dir, monkeypatch):
    """Class-conditional gated PixelCNN on dynamically binarized MNIST: exact test NLL <= 100
    nats within 30 minutes on 2 CPU cores, and samples drawn for label k classified as k (by the
    cached MNIST domain evaluator) at least 80% of the time."""
    monkeypatch.setenv("GENLAB_DATA", str(shared_data_dir))
    cfg = compose_train_config(["experiment=pixelcnn_mnist", "logger=none"], output_dir=tmp_path)
    record = train(cfg)
    assert record["status"] == "completed"
    assert record["test/nll"] <= 100.0
    assert record["test/bits_per_dim"] == pytest.approx(record["test/nll"] / (784 * math.log(2)))
    assert record["wall_time_s"] < 30 * 60
    assert (tmp_path / "samples" / "class_grid.png").is_file()
    model = load_model(cfg, tmp_path / "checkpoints" / "last.ckpt")
    images, labels = generate(model, 500, 500)  # labels 0..9 in turn
    source = MNIST(str(shared_data_dir))
    evaluator = load_or_train_evaluator(
        dataset_key(cfg.data), source.load("train"), source.load("test"), 10, cfg.paths.cache_dir
    )
    accuracy = (evaluator.logits(images).argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.8
