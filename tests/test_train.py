"""genlab-train end to end: every experiment with debug=fast, metrics.json, resume, W&B offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab.data.download import DataNotFoundError
from genlab.train import train
from tests.helpers import compose_train_config, group_options

# experiments that read a data set from GENLAB_DATA, and the folder it needs there
NEEDS_REAL_DATA = {
    "vae_mnist": "mnist",
    "lucic_mnist": "mnist",
    "lucic_fashion_mnist": "fashion_mnist",
    "lucic_cifar10": "cifar10",
    "pixelcnn_mnist": "mnist",
    "cyclegan_horse2zebra": "horse2zebra",
}
# per model class (metrics.json "model"): keys a debug=fast run must log, and a picture it saves
FAST_RUN_KEYS = {
    "VAE": ("val/neg_elbo", "test/neg_elbo", "test/iwae_nll"),
    "GAN": ("train/d_loss", "train/g_loss"),
    "PixelCNN": ("val/nll", "val/bits_per_dim", "test/nll", "test/bits_per_dim"),
    "CycleGAN": ("train/d_loss", "train/g_loss", "train/cycle", "train/identity"),
}
FAST_RUN_PICTURE = {
    "VAE": "samples",
    "GAN": "interpolation",
    "PixelCNN": "samples",
    "CycleGAN": "translation",
}


def run_fast(tmp_path: Path, *overrides: str) -> dict:
    cfg = compose_train_config(["debug=fast", *overrides], output_dir=tmp_path)
    return train(cfg)


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_runs_with_debug_fast(experiment, tmp_path, request, monkeypatch):
    if experiment in NEEDS_REAL_DATA:
        data_dir = request.getfixturevalue("shared_data_dir")
        if not (data_dir / NEEDS_REAL_DATA[experiment]).is_dir():
            pytest.skip(f"{data_dir / NEEDS_REAL_DATA[experiment]} is absent")
        monkeypatch.setenv("GENLAB_DATA", str(data_dir))
    record = run_fast(tmp_path, f"experiment={experiment}")
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == record
    assert written["status"] == "completed"
    assert written["images_seen"] == 3 * 16
    family = written["model"]
    for key in ("wall_time_s", *FAST_RUN_KEYS[family]):
        assert isinstance(written[key], float) and written[key] == written[key]  # not NaN
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "samples" / f"{FAST_RUN_PICTURE[family]}.png").is_file()


def test_resume_continues_the_counters(tmp_path):
    first = run_fast(tmp_path / "first")
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    second = run_fast(tmp_path / "second", f"ckpt_path={ckpt}", "trainer.max_epochs=2")
    assert first["images_seen"] == 48 and second["images_seen"] == 96
    assert second["train_steps"] == 6 and second["epochs"] == 2
    state = torch.load(tmp_path / "second" / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(state["state_dict"]["images_seen"]) == 96


def test_missing_data_fails_before_training_and_records_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError, match="GENLAB_DATA"):
        run_fast(tmp_path / "run", "experiment=vae_mnist")
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and "DataNotFoundError" in record["error"]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_binary_likelihood_on_gray_data_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"data\.binarize=true"):
        run_fast(tmp_path, "data.binarize=false")
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "failed" and "likelihood=Bernoulli" in record["error"]
    assert record["train_steps"] == 0 and not (tmp_path / "checkpoints").exists()


def test_wandb_offline_run_keeps_the_logged_history(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    record = run_fast(tmp_path, "logger=wandb")
    runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    history = runs[0].read_bytes()
    for key in (b"val/neg_elbo", b"test/iwae_nll", b"pictures/samples"):
        assert key in history
    assert record["status"] == "completed"


def run_cli(
    run_dir: Path, *overrides: str, dir_key: str = "hydra.run.dir"
) -> subprocess.CompletedProcess:
    """Run genlab-train in a fresh process (as a user would; DDP re-launches it)."""
    result = subprocess.run(
        [sys.executable, "-m", "genlab.train", *overrides, f"{dir_key}={run_dir}"],
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "offline"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_command_line_entry_point_writes_the_run_directory(tmp_path):
    run_dir = tmp_path / "cli_run"
    result = run_cli(run_dir, "debug=fast")
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert f"checkpoint: {run_dir / 'checkpoints' / 'last.ckpt'}" in result.stdout


def test_ddp_on_two_cpu_processes_counts_the_images_of_both(tmp_path):
    run_dir = tmp_path / "ddp_run"
    run_cli(run_dir, "debug=fast", "hardware=ddp_cpu")
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed"
    assert record["images_seen"] == 2 * 3 * 16 and record["train_steps"] == 3


@pytest.mark.slow
def test_cyclegan_under_ddp_on_two_cpu_processes(tmp_path):
    """genlab-train experiment=cyclegan_shapes hardware=ddp_cpu (about a minute): both processes
    train, their images counted (pools and nets across ranks: test_cyclegan_module.py)."""
    run_dir = tmp_path / "ddp_cyclegan"
    small = ["model.generator.base_channels=4", "model.discriminator.base_channels=4"]
    run_cli(run_dir, "experiment=cyclegan_shapes", "debug=fast", "hardware=ddp_cpu", *small)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["model"] == "CycleGAN"
    assert record["images_seen"] == 2 * 3 * 16 and record["g_steps"] == record["d_steps"] == 3


def test_multirun_sweep_writes_one_directory_per_job(tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_cli(sweep_dir, "-m", "debug=fast", "model.latent_dim=2,4", dir_key="hydra.sweep.dir")
    for job, latent_dim in (("0", "2"), ("1", "4")):
        record = json.loads((sweep_dir / job / "metrics.json").read_text())
        assert record["status"] == "completed"
        overrides = (sweep_dir / job / ".hydra" / "overrides.yaml").read_text()
        assert f"model.latent_dim={latent_dim}" in overrides
