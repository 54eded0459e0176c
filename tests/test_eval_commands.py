"""genlab-sample and genlab-eval on a run trained here, and evaluation during training."""

import json
import subprocess
import sys

import numpy as np
import pytest

from genlab import sample as genlab_sample
from genlab.train import train
from tests.helpers import compose_train_config
from tests.test_train import run_cli

SMALL_SHAPES = [
    "data.source.num_train=1500",
    "data.source.num_test=300",
    "data.val_size=200",
]
SMALL_EVAL = [
    "eval.num_samples=200",
    "eval.memorization_samples=50",
    "eval.quality.kid_subsets=10",
    "eval.quality.kid_subset_size=100",
    "+eval.extractor.epochs=2",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "quick"
    run_cli(run_dir, "debug=fast", *SMALL_SHAPES)
    return run_dir


def test_sample_writes_uint8_images(run_dir, tmp_path):
    out = genlab_sample.sample_run(
        [str(run_dir), "--num-samples", "10", "--out", str(tmp_path / "s.npz")]
    )
    images = np.load(out)["images"]
    assert images.shape == (10, 32, 32, 1) and images.dtype == np.uint8
    again = genlab_sample.sample_run(
        [str(run_dir), "--num-samples", "10", "--out", str(tmp_path / "t.npz")]
    )
    np.testing.assert_array_equal(np.load(again)["images"], images)  # same seed, same images


def test_sample_command_exits_cleanly(run_dir, tmp_path):
    out = tmp_path / "cli.npz"
    command = [sys.executable, "-m", "genlab.sample", str(run_dir), "--num-samples", "4"]
    result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.load(out)["images"].shape == (4, 32, 32, 1)


def test_sample_rejects_a_label_for_an_unconditional_model(run_dir, tmp_path):
    with pytest.raises(ValueError, match="unconditional"):
        genlab_sample.sample_run([str(run_dir), "--out", str(tmp_path / "s.npz"), "--label", "1"])


def test_eval_command_writes_every_metric_to_eval_json(run_dir, tmp_path):
    cache = f"paths.cache_dir={tmp_path / 'cache'}"
    command = [sys.executable, "-m", "genlab.eval", str(run_dir), *SMALL_EVAL, cache]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "eval/fid" in result.stdout  # the printed table
    written = json.loads((run_dir / "eval.json").read_text())
    for key in ("fid", "kid_mean", "is_mean", "precision", "recall", "density", "coverage"):
        assert np.isfinite(written[f"eval/{key}"])
    assert written["eval/nn_pixel_min"] >= 0
    assert np.isfinite(written["test/neg_elbo"]) and np.isfinite(written["test/iwae_nll"])
    assert written["num_samples"] == 200 and written["extractor"].startswith("shapes-")
    assert (run_dir / "samples" / "nearest_neighbours.png").is_file()
    cached = list((tmp_path / "cache" / "reference").glob("*.pt"))
    assert len(cached) == 2  # test split (200 images) and train split (memorization)


def test_eval_of_the_best_model_of_a_run_without_one_names_the_fix(run_dir):
    from genlab.eval import evaluate_run

    with pytest.raises(FileNotFoundError, match=r"best\.ckpt not found.*every_n_epochs"):
        evaluate_run([str(run_dir), "--ckpt", "best"])


def test_training_can_evaluate_at_the_end(tmp_path):
    overrides = ["debug=fast", *SMALL_SHAPES, *SMALL_EVAL, "callbacks.sample_quality.at_end=true"]
    overrides.append(f"paths.cache_dir={tmp_path / 'cache'}")
    record = train(compose_train_config(overrides, output_dir=tmp_path / "run"))
    assert np.isfinite(record["eval/fid"]) and 0 <= record["eval/precision"] <= 1
    assert (tmp_path / "run" / "samples" / "nearest_neighbours.png").is_file()
