"""genlab installed from its wheel (not the checkout) runs from any directory, and a user's own
config directory composes with genlab's groups.

The wheel is installed with no dependencies into a temporary venv whose ``.pth`` file points at
this venv's site-packages: the dependencies are reused (no download), but the checkout's editable
genlab is not (a ``.pth`` line adds a folder to sys.path without running the ``.pth`` files in it).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from genlab.config import CONFIG_DIR
from tests.helpers import compose_train_config

REPO = Path(__file__).resolve().parents[1]


def _setuptools_can_build() -> bool:
    """Whether this venv's setuptools meets pyproject's build requirement (>= 77)."""
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0]) >= 77
    except importlib.metadata.PackageNotFoundError:
        return False


def build_wheel(out_dir: Path) -> Path:
    """``pip wheel`` of the checkout (with this venv's setuptools when it can: no download)."""
    isolation = ["--no-build-isolation"] if _setuptools_can_build() else []
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", out_dir, REPO],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out_dir.glob("genlab-*.whl")
    return wheel


def install_wheel(wheel: Path, venv: Path) -> Path:
    """A venv holding genlab from ``wheel``, dependencies from this venv; returns its bin/."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "genlab-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def run_in(cwd: Path, command: list, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GENLAB_CACHE")}
    environment.update(WANDB_MODE="offline", WANDB_SILENT="true", **env)
    return subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """bin/ of a venv with genlab installed from the wheel."""
    return install_wheel(wheel, tmp_path_factory.mktemp("installed") / "venv")


def test_the_wheel_holds_the_whole_config_tree(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = Path(CONFIG_DIR)
    expected = {f"genlab/conf/{p.relative_to(conf)}" for p in conf.rglob("*.yaml")}
    assert len(expected) > 50 and expected <= names
    assert {"genlab/py.typed", "genlab/conf/__init__.py"} <= names


def test_installed_genlab_runs_outside_the_repository(installed, tmp_path):
    where = run_in(tmp_path, [installed / "python", "-c", "import genlab; print(genlab.__file__)"])
    assert Path(where.stdout.strip()).is_relative_to(installed.parent)  # not the checkout
    job = run_in(tmp_path, [installed / "genlab-train", "--cfg", "job"])
    assert job.returncode == 0, job.stderr[-3000:]
    assert "_target_: genlab.modules.vae.VAE" in job.stdout
    run = run_in(tmp_path, [installed / "genlab-train", "debug=fast"])
    assert run.returncode == 0, run.stderr[-3000:]
    (metrics,) = (tmp_path / "outputs" / "runs").glob("*/*_quickstart/metrics.json")
    assert json.loads(metrics.read_text())["status"] == "completed"


# ---- a user's own config directory --------------------------------------------------------------
USER_NETS = '''
"""A user's own VAE networks (outside genlab): MLPs with a hidden layer of ``hidden`` units."""
import math

from torch import nn


class TinyEncoder(nn.Module):
    def __init__(self, image_shape, latent_dim, num_classes=0, hidden=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(image_shape), hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * latent_dim),
        )

    def forward(self, x, y=None):
        return self.net(x).chunk(2, dim=1)


class TinyDecoder(nn.Module):
    def __init__(self, image_shape, latent_dim, num_classes=0, params_per_pixel=1, hidden=32):
        super().__init__()
        c, h, w = image_shape
        self.out_shape = (c * params_per_pixel, h, w)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, math.prod(self.out_shape))
        )

    def forward(self, z, y=None):
        return self.net(z).view(-1, *self.out_shape)
'''

USER_MODEL = """
# model/my_net.yaml: genlab's VAE module with the user's own networks
_target_: genlab.modules.vae.VAE
image_shape: ["${data.channels}", "${data.image_size}", "${data.image_size}"]
latent_dim: 8
num_classes: ${data.num_classes}
encoder: {_target_: my_nets.TinyEncoder, _partial_: true, hidden: 48}
decoder: {_target_: my_nets.TinyDecoder, _partial_: true, hidden: 48}
likelihood: {_target_: genlab.objectives.likelihoods.Bernoulli}
kl_weighting: {_target_: genlab.objectives.elbo.BetaKL, beta: 1.0}
iwae_samples: 10
"""

USER_EXPERIMENT = """
# @package _global_
# experiment/my_run.yaml: genlab's data and optimizer groups, the user's model
defaults:
  - override /data: shapes_small
  - override /model: my_net
data:
  source: {num_train: 1500, num_test: 300}
  val_size: 200
trainer:
  max_epochs: 2
"""


def user_project(root: Path) -> Path:
    """A user's project: my_nets.py and conf/{experiment/my_run,model/my_net}.yaml."""
    (root / "conf" / "experiment").mkdir(parents=True)
    (root / "conf" / "model").mkdir()
    (root / "my_nets.py").write_text(textwrap.dedent(USER_NETS))
    (root / "conf" / "model" / "my_net.yaml").write_text(USER_MODEL)
    (root / "conf" / "experiment" / "my_run.yaml").write_text(USER_EXPERIMENT)
    return root


def test_a_user_config_directory_composes_with_genlab_groups(tmp_path, monkeypatch):
    project = user_project(tmp_path / "project")
    monkeypatch.syspath_prepend(str(project))
    cfg = compose_train_config(["experiment=my_run"], search_path=[project / "conf"])
    assert cfg.name == "my_run" and cfg.data.source.num_train == 1500
    assert cfg.model.encoder._target_ == "my_nets.TinyEncoder"
    assert cfg.model.optimizer._target_ == "torch.optim.Adam"  # genlab's optim group
    model = instantiate(cfg.model)
    assert type(model.encoder).__module__ == "my_nets"


@pytest.mark.slow
def test_installed_genlab_trains_evaluates_and_samples_a_user_model(installed, tmp_path):
    project = user_project(tmp_path / "project")
    train = [installed / "genlab-train", "--config-dir", "conf", "experiment=my_run", "debug=fast"]
    run_dir = project / "run"
    result = run_in(project, [*train, f"hydra.run.dir={run_dir}"], PYTHONPATH=str(project))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"

    sample = [installed / "genlab-sample", run_dir, "--num-samples", "6", "--out", "s.npz"]
    result = run_in(tmp_path, sample, PYTHONPATH=str(project))
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.load(tmp_path / "s.npz")["images"].shape == (6, 32, 32, 1)

    evaluate = [installed / "genlab-eval", run_dir, "eval.num_samples=100"]
    evaluate += ["eval.memorization_samples=20", "eval.quality.kid_subsets=5"]
    evaluate += ["eval.quality.kid_subset_size=50", "+eval.extractor.epochs=1"]
    result = run_in(tmp_path, evaluate, PYTHONPATH=str(project))
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.isfinite(json.loads((run_dir / "eval.json").read_text())["eval/fid"])

    result = run_in(tmp_path, sample)  # the user's module is not importable: a clear error
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "model.encoder._target_='my_nets.TinyEncoder' cannot be imported" in result.stderr
    assert "PYTHONPATH" in result.stderr
