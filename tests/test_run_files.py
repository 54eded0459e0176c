"""Run directories: a new run never writes into an old one, checkpoints are written atomically,
and no secret from the environment lands in a run's files."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from genlab.hydra_callbacks import is_extra_process, previous_run_files
from genlab.utils.checkpoint_io import AtomicCheckpointIO
from tests.helpers import compose_train_config, group_options


def _genlab_train(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """genlab-train in a fresh process; returns whatever it exits with."""
    return subprocess.run(
        [sys.executable, "-m", "genlab.train", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **env},
        timeout=300,
    )


def _previous_run(directory: Path) -> dict[Path, bytes]:
    """Files a finished run leaves behind (their content does not matter here)."""
    files = {
        directory / ".hydra" / "config.yaml": b"previous config\n",
        directory / "metrics.json": b'{"status": "completed"}\n',
        directory / "checkpoints" / "last.ckpt": b"previous weights",
    }
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def test_previous_run_files(tmp_path):
    assert previous_run_files(tmp_path / "absent") == []
    (tmp_path / "notes.txt").write_text("a user's own file")
    assert previous_run_files(tmp_path) == []
    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    (tmp_path / "metrics.json").write_text("{}")
    assert previous_run_files(tmp_path) == ["metrics.json", "0/.hydra"]


@pytest.mark.parametrize(
    ("env", "extra"),
    [
        ({}, False),
        ({"LOCAL_RANK": "0"}, False),
        ({"LOCAL_RANK": "1"}, True),
        ({"SLURM_NTASKS": "1"}, False),
        ({"SLURM_NTASKS": "4"}, True),
    ],
)
def test_extra_processes_of_a_run_share_its_directory(monkeypatch, env, extra):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_extra_process() is extra


@pytest.mark.parametrize(
    ("args", "key"),
    [((), "hydra.run.dir"), (("-m",), "hydra.sweep.dir")],
    ids=["run", "multirun"],
)
def test_an_existing_run_directory_is_refused_before_anything_is_written(tmp_path, args, key):
    run_dir = tmp_path / "old_run"
    files = _previous_run(run_dir)
    result = _genlab_train(*args, "debug=fast", f"{key}={run_dir}")
    assert result.returncode == 1
    assert f"Error: {key}={run_dir} already holds a previous run" in result.stderr
    assert "never writes into an existing run directory" in result.stderr
    assert {path: path.read_bytes() for path in files} == files
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "checkpoints", "metrics.json"]


def test_default_directories_are_new_for_each_run_and_sweep(tmp_path):
    result = _genlab_train(
        "-m", "debug=fast", "trainer.limit_train_batches=1", "test=false", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = tmp_path.glob("outputs/multirun/*/*/0")
    assert re.fullmatch(r"\d{2}-\d{2}-\d{2}-\d{6}_quickstart", job.parent.name)  # microseconds
    assert (job / "metrics.json").is_file()


def test_no_secret_from_the_environment_is_written(tmp_path):
    secret = "some-secret-value-a1b2c3"
    run_dir = tmp_path / "run"
    result = _genlab_train(
        "debug=fast", "logger=wandb", f"hydra.run.dir={run_dir}", WANDB_API_KEY=secret
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert (
        any(p.suffix == ".wandb" for p in files) and (run_dir / ".hydra" / "hydra.yaml").is_file()
    )
    assert [p for p in files if secret.encode() in p.read_bytes()] == []
    assert secret not in result.stdout + result.stderr


def test_checkpoint_writes_are_atomic(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(3))
    with pytest.raises(Exception, match="pickle"):  # a crash while the checkpoint is made
        checkpoint_io.save_checkpoint({"state_dict": {}, "bad": lambda: None}, path)
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temp file left


@pytest.mark.parametrize("hardware", group_options("hardware"))
def test_every_hardware_option_writes_checkpoints_atomically(hardware, tmp_path):
    plugins = compose_train_config([f"hardware={hardware}"], output_dir=tmp_path).trainer.plugins
    assert "genlab.utils.checkpoint_io.AtomicCheckpointIO" in [p._target_ for p in plugins]


def test_the_trainer_uses_the_atomic_writer(tmp_path):
    cfg = compose_train_config(["debug=fast"], output_dir=tmp_path)
    trainer = instantiate(cfg.trainer, logger=False)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
