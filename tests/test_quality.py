"""Quality bars on real data (slow: `make test-slow`, needs GENLAB_DATA or ../shared/data)."""

import pytest

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
