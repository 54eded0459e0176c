"""Best-of-run evaluation: callbacks.sample_quality.every_n_epochs / every_n_steps evaluate
during training; metrics.json keeps the final eval/* values and the best evaluation's best/*
keys, checkpoints/best.ckpt its model (atomic, resumable, written by rank 0 under DDP), and
genlab-eval / genlab-sample take --ckpt best."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab.callbacks import sample_quality
from genlab.runs import checkpoint_path
from genlab.utils.images import Grid
from tests.test_train import run_fast

REPO = Path(__file__).resolve().parents[1]
QUICK = ["callbacks.image_grids.every_n_epochs=5"]  # no pictures but the final ones


@pytest.fixture
def scripted_fids(monkeypatch):
    """Evaluations return the FIDs of the list given (in order) and record where they ran."""
    fids: list[float] = []
    calls: list[dict[str, int]] = []

    def evaluate(model, *args, **kwargs):
        calls.append({"train_steps": int(model.train_steps)})
        fid = fids[len(calls) - 1]
        metrics = {"fid": fid, "is_mean": 10 - fid, "precision": fid / 10}
        return metrics, Grid(torch.zeros(2, 1, 8, 8), 2)

    monkeypatch.setattr(sample_quality, "evaluate_samples", evaluate)
    monkeypatch.setattr(sample_quality.SampleQuality, "_extractor_for", lambda self, t: None)
    return fids, calls


def state_dict(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_the_lowest_fid_of_the_run_is_kept_with_its_model(tmp_path, scripted_fids):
    fids, calls = scripted_fids
    fids += [5.0, 3.0, 4.0]
    record = run_fast(
        tmp_path, *QUICK, "trainer.max_epochs=3", "callbacks.sample_quality.every_n_epochs=1"
    )
    assert [c["train_steps"] for c in calls] == [3, 6, 9]  # at the end of every epoch
    assert record["eval/fid"] == 4.0 and record["eval/is_mean"] == 6.0  # final values
    assert record["best/eval/fid"] == 3.0 and record["best/eval/is_mean"] == 7.0
    assert record["best/eval/precision"] == 0.3
    assert record["best/at"] == {"epoch": 2, "train_steps": 6, "images_seen": 96}
    assert json.loads((tmp_path / "metrics.json").read_text()) == record
    best, last = tmp_path / "checkpoints" / "best.ckpt", tmp_path / "checkpoints" / "last.ckpt"
    assert int(state_dict(best)["train_steps"]) == 6 and int(state_dict(last)["train_steps"]) == 9
    assert checkpoint_path(tmp_path, "best") == best and checkpoint_path(tmp_path) == last
    assert not list(best.parent.glob(".*.tmp"))  # written through the atomic writer


def test_a_resumed_run_keeps_its_best_and_its_best_checkpoint(tmp_path, scripted_fids):
    fids, calls = scripted_fids
    fids += [5.0, 3.0, 4.0, 3.5]
    every_epoch = [*QUICK, "callbacks.sample_quality.every_n_epochs=1"]
    run_fast(tmp_path / "first", *every_epoch, "trainer.max_epochs=2")
    first_best = tmp_path / "first" / "checkpoints" / "best.ckpt"
    ckpt = f"ckpt_path={tmp_path / 'first'}"
    record = run_fast(tmp_path / "second", *every_epoch, ckpt, "trainer.max_epochs=4")
    assert len(calls) == 4 and record["eval/fid"] == 3.5
    assert record["best/eval/fid"] == 3.0
    assert record["best/at"] == {"epoch": 2, "train_steps": 6, "images_seen": 96}
    second_best = tmp_path / "second" / "checkpoints" / "best.ckpt"
    assert second_best.read_bytes() == first_best.read_bytes()  # the first run's best model
    fids.append(1.0)  # and a better evaluation after a resume replaces it
    record = run_fast(
        tmp_path / "third", *every_epoch, f"ckpt_path={tmp_path / 'second'}", "trainer.max_epochs=5"
    )
    assert record["best/eval/fid"] == 1.0 and record["best/at"]["epoch"] == 5
    assert int(state_dict(tmp_path / "third" / "checkpoints" / "best.ckpt")["train_steps"]) == 15


def test_steps_epochs_and_the_end_evaluate_each_weights_once(tmp_path, scripted_fids):
    fids, calls = scripted_fids
    fids += [6.0, 5.0, 4.0, 7.0, 8.0]
    record = run_fast(
        tmp_path,
        *QUICK,
        "trainer.max_epochs=3",
        "callbacks.sample_quality.every_n_steps=2",
        "callbacks.sample_quality.every_n_epochs=3",
        "callbacks.sample_quality.at_end=true",
    )
    # steps 2, 4, 6, 8 (every_n_steps), 9 (the end of epoch 3, which is also the end)
    assert [c["train_steps"] for c in calls] == [2, 4, 6, 8, 9]
    assert record["eval/fid"] == 8.0 and record["best/eval/fid"] == 4.0
    # step 6 ends the second epoch, but it is evaluated before the epoch is complete
    assert record["best/at"] == {"epoch": 1, "train_steps": 6, "images_seen": 96}


def test_without_evaluations_during_training_there_is_no_best(tmp_path, scripted_fids):
    fids, calls = scripted_fids
    fids += [5.0]
    record = run_fast(tmp_path, *QUICK, "callbacks.sample_quality.at_end=true")
    assert len(calls) == 1 and record["eval/fid"] == 5.0
    assert not [key for key in record if key.startswith("best/")]
    assert not (tmp_path / "checkpoints" / "best.ckpt").exists()
    with pytest.raises(FileNotFoundError, match="every_n_epochs"):
        checkpoint_path(tmp_path, "best")


def test_a_negative_every_n_epochs_fails_before_training(tmp_path):
    with pytest.raises(Exception, match=r"every_n_epochs=-1 is invalid: must be >= 0"):
        run_fast(tmp_path, "callbacks.sample_quality.every_n_epochs=-1")
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "failed" and "every_n_epochs=-1" in record["error"]
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_ddp_keeps_one_best_written_by_rank_zero(tmp_path):
    """Two gloo processes, a real (cheap) evaluation every epoch: one best, one best.ckpt."""
    run_dir = tmp_path / "ddp"
    overrides = [
        "debug=fast",
        "hardware=ddp_cpu",
        "trainer.max_epochs=2",
        "callbacks.sample_quality.every_n_epochs=1",
        "eval.extractor._target_=tests.metrics.toys.projection_extractor",
        "eval.num_samples=64",
        "eval.batch_size=16",
        "eval.memorization_samples=16",
        "eval.quality.kid_subsets=5",
        "eval.quality.kid_subset_size=32",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, "-m", "genlab.train", *overrides],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed"
    assert record["best/eval/fid"] <= record["eval/fid"]
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert int(best["state_dict"]["train_steps"]) == record["best/at"]["train_steps"]
    assert record["best/at"]["images_seen"] == 2 * 16 * record["best/at"]["train_steps"]
