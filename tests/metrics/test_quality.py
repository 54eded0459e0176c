"""FID / KID / IS through torchmetrics against independent computations and known values;
precision / recall / density / coverage against the reference ``prdc`` package; DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.metrics.nearest import neighbourhood_metrics
from genlab.metrics.quality import (
    QualitySettings,
    frechet_distance,
    inception_score,
    kernel_distance,
    sample_quality,
)

REPO = Path(__file__).resolve().parents[2]


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


def unbiased_mmd2_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012) with KID's kernel k(a, b) = (a.b / d + 1)^3."""
    d = x.shape[1]
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel(shift):
    """With subsets as large as the sets, every subset holds all points (in another order):
    KID is the unbiased MMD^2 of the two sets, whatever the subsets, so its std is 0."""
    g = torch.Generator().manual_seed(4)
    real = torch.randn(300, 12, generator=g, dtype=torch.float64)
    fake = torch.randn(300, 12, generator=g, dtype=torch.float64) * 1.1 + shift
    mean, std = kernel_distance(real, fake, subsets=3, subset_size=300)
    assert mean == pytest.approx(unbiased_mmd2_numpy(real.numpy(), fake.numpy()), rel=1e-6)
    assert std == pytest.approx(0, abs=1e-9)


def test_kid_and_is_draw_their_subsets_from_their_own_seed():
    """The random KID subsets and IS splits do not depend on the global RNG: the same points
    give the same numbers in every call (and every DDP process)."""
    g = torch.Generator().manual_seed(5)
    real, fake = torch.randn(400, 6, generator=g), torch.randn(400, 6, generator=g) + 0.2
    logits = torch.randn(400, 7, generator=g) * 3
    values = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        values.append((kernel_distance(real, fake, 10, 100), inception_score(logits, 10)))
    assert values[0] == values[1]
    other = (kernel_distance(real, fake, 10, 100, seed=1), inception_score(logits, 10, seed=1))
    assert other != values[0]  # the seed does choose the subsets


def test_neighbourhood_metrics_match_the_prdc_package():
    """Naeem et al.'s reference implementation (``prdc``, dev extra) on random point sets; it
    counts a point on a ball's boundary as outside (genlab inside), which random float64
    points never hit."""
    prdc = pytest.importorskip("prdc")
    g = torch.Generator().manual_seed(6)
    for n_real, n_fake, dim, shift, k in ((200, 150, 8, 0.5, 3), (120, 180, 3, 1.5, 5)):
        real = torch.randn(n_real, dim, generator=g, dtype=torch.float64)
        fake = torch.randn(n_fake, dim, generator=g, dtype=torch.float64) * 0.8 + shift
        expected = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)
        got = neighbourhood_metrics(real, fake, k=k)
        assert got == pytest.approx({key: float(v) for key, v in expected.items()}, abs=1e-12)
        assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1  # not a degenerate case


def test_sample_quality_reports_every_metric():
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(300, 6, generator=g), torch.randn(300, 6, generator=g)
    metrics = sample_quality(real, fake, torch.randn(300, 4, generator=g), QualitySettings())
    expected = {"fid", "kid_mean", "kid_std", "is_mean", "is_std"}
    assert expected | {"precision", "recall", "density", "coverage"} == set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())


def test_ddp_evaluation_gives_the_single_process_values(tmp_path):
    """Two gloo processes, each drawing part of the samples and checking part of the
    memorization queries, give every one-process metric, on both ranks."""
    script = Path(__file__).with_name("ddp_quality_script.py")
    out = tmp_path / "ddp.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(script), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(out.read_text())
    single = values["single"]
    keys = {"fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "density"}
    keys |= {"coverage", "grid_sum", "grid_len"}
    keys |= {
        f"nn_{space}_{stat}" for space in ("pixel", "feature") for stat in ("mean", "min", "p01")
    }
    assert set(single) == keys
    for rank in values["ranks"]:
        assert rank == pytest.approx(single, rel=1e-6, abs=1e-9)
