"""FID / KID / IS through torchmetrics against independent computations and known values."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.metrics.quality import (
    QualitySettings,
    frechet_distance,
    inception_score,
    kernel_distance,
    sample_quality,
)


def frechet_distance_numpy(real: np.ndarray, fake: np.ndarray) -> float:
    """FID with scipy's matrix square root, independent of torchmetrics."""
    linalg = pytest.importorskip("scipy.linalg")
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = linalg.sqrtm(cov_r @ cov_f).real
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(cov_r + cov_f - 2 * root))


def test_fid_matches_an_independent_scipy_computation():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(2000, 16, generator=g, dtype=torch.float64)
    mixing = torch.randn(16, 16, generator=g, dtype=torch.float64) * 0.3
    fake = torch.randn(1500, 16, generator=g, dtype=torch.float64) @ (torch.eye(16) + mixing) + 0.5
    expected = frechet_distance_numpy(real.numpy(), fake.numpy())
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-3)


def test_fid_of_a_set_with_itself_is_zero_and_of_a_shift_is_its_squared_norm():
    real = torch.randn(3000, 8, generator=torch.Generator().manual_seed(1))
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-3)
    shift = torch.tensor([3.0, 0, 0, 0, 4.0, 0, 0, 0])
    assert frechet_distance(real, real + shift) == pytest.approx(25.0, rel=1e-3)


def test_inception_score_known_values():
    confident = torch.eye(10).repeat(100, 1) * 50  # (1000, 10): every class equally, sure of each
    mean, _ = inception_score(confident, splits=1)  # IS = exp(H(p(y))) = 10 for sure, even classes
    assert mean == pytest.approx(10.0, rel=1e-4)
    one_class = torch.zeros(1000, 10)
    one_class[:, 3] = 50
    assert inception_score(one_class, splits=10)[0] == pytest.approx(1.0, abs=1e-4)
    uncertain = torch.zeros(1000, 10)  # p(y|x) = p(y): KL = 0
    assert inception_score(uncertain, splits=10)[0] == pytest.approx(1.0, abs=1e-4)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(600, 8, generator=g), torch.randn(600, 8, generator=g)
    same, _ = kernel_distance(a, b, subsets=20, subset_size=300)
    shifted, _ = kernel_distance(a, b + 1.0, subsets=20, subset_size=300)
    assert abs(same) < 0.01 and shifted > 0.1


def test_sample_quality_reports_every_metric():
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(300, 6, generator=g), torch.randn(300, 6, generator=g)
    metrics = sample_quality(real, fake, torch.randn(300, 4, generator=g), QualitySettings())
    expected = {"fid", "kid_mean", "kid_std", "is_mean", "is_std"}
    assert expected | {"precision", "recall", "density", "coverage"} == set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())


def test_ddp_sync_gives_the_single_process_values(tmp_path):
    """Two gloo processes, each with half the points, give the one-process metrics."""
    script = Path(__file__).with_name("ddp_quality_script.py")
    out = tmp_path / "ddp.json"
    result = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(out.read_text())
    single, ddp = values["single"], values["ddp"]
    for key in ("fid", "is_mean", "precision", "recall", "density", "coverage"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-6, abs=1e-9), key
