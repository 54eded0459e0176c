"""The share of samples the domain evaluator recognises, and the quickstart's bar on it."""

import json
import os
import subprocess
import sys

import pytest
import torch

from genlab.metrics.classified import classify_run_samples, confidence_summary

# the quickstart's bar (README, quick start): >= 90% of samples classified with confidence >= 0.9,
# every shape between these shares of them (a third each, give or take)
CONFIDENT_SHARE = 0.9
CLASS_SHARE_RANGE = (0.25, 0.42)


def test_confidence_summary_counts_confident_samples_per_class():
    probabilities = torch.tensor(
        [
            [0.95, 0.03, 0.02],  # confident square
            [0.10, 0.85, 0.05],  # ellipse, not confident
            [0.00, 0.00, 1.00],  # confident triangle
            [0.02, 0.90, 0.08],  # confident ellipse (>= is inclusive)
        ]
    )
    summary = confidence_summary(probabilities, ["square", "ellipse", "triangle"], 0.9)
    assert summary["num_samples"] == 4 and summary["confident_share"] == 0.75
    assert summary["mean_confidence"] == pytest.approx((0.95 + 0.85 + 1.0 + 0.9) / 4)
    assert summary["class_shares"] == {"square": 0.25, "ellipse": 0.5, "triangle": 0.25}
    thirds = pytest.approx({"square": 1 / 3, "ellipse": 1 / 3, "triangle": 1 / 3})
    assert summary["confident_class_shares"] == thirds


def test_no_confident_sample_gives_zero_shares():
    summary = confidence_summary(torch.full((5, 2), 0.5), ["a", "b"], 0.9)
    assert summary["confident_share"] == 0.0
    assert summary["confident_class_shares"] == {"a": 0.0, "b": 0.0}


def check_quickstart_bar(summary: dict) -> None:
    """The quickstart's samples are recognisable shapes, all three in about equal shares."""
    assert summary["confident_share"] >= CONFIDENT_SHARE, summary
    low, high = CLASS_SHARE_RANGE
    assert all(low <= share <= high for share in summary["class_shares"].values()), summary


@pytest.mark.slow
def test_the_quickstart_draws_recognisable_shapes(tmp_path):
    """`make train` (the default experiment) trained here, then 1000 of its samples classified."""
    run_dir = tmp_path / "quickstart"
    command = [sys.executable, "-m", "genlab.train", f"hydra.run.dir={run_dir}", "logger=none"]
    env = {**os.environ, "GENLAB_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    check_quickstart_bar(classify_run_samples(run_dir, num_samples=1000))
