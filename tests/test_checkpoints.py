"""Checkpoints are read with weights_only=True, and one that does not fit the model is named."""

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from genlab.runs import (
    CheckpointError,
    CheckpointMismatchError,
    load_model,
    read_state_dict,
    state_dict_mismatch,
)
from genlab.train import train
from tests.helpers import compose_train_config


def _save_model_checkpoint(path: Path, *overrides: str) -> Path:
    """A checkpoint holding the state_dict of the model of ``overrides`` (untrained)."""
    model = instantiate(compose_train_config(list(overrides)).model)
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def test_mismatch_lists_missing_unexpected_and_reshaped_keys():
    expected = {"a": torch.zeros(2), "b": torch.zeros(3, 4), "c": torch.zeros(1)}
    found = {
        "b": torch.zeros(4, 4),
        "c": torch.zeros(1),
        **{f"x{i}": torch.zeros(1) for i in range(7)},
    }
    assert state_dict_mismatch(expected, found) == [
        "missing from the checkpoint (1): a",
        "unexpected in the checkpoint (7): x0, x1, x2, x3, x4, ... (2 more)",
        "of another shape (1): b (checkpoint (4, 4), model (3, 4))",
    ]
    assert state_dict_mismatch(expected, expected) == []


def test_other_latent_size_names_checkpoint_config_and_shapes(tmp_path):
    ckpt = _save_model_checkpoint(tmp_path / "vae16.ckpt", "model.latent_dim=16")
    cfg = compose_train_config(["model.latent_dim=32"], output_dir=tmp_path / "run")
    with pytest.raises(CheckpointMismatchError) as error:
        load_model(cfg, ckpt)
    message = str(error.value)
    assert f"checkpoint {ckpt} does not fit the VAE built from the run config " in message
    assert str(tmp_path / "run" / ".hydra" / "config.yaml") in message
    assert (
        "of another shape" in message and "fixed_z (checkpoint (64, 16), model (64, 32))" in message
    )
    assert "missing" not in message


def test_other_model_lists_missing_and_unexpected_keys(tmp_path):
    ckpt = _save_model_checkpoint(tmp_path / "mlp.ckpt", "model=vae_mlp", "model.latent_dim=16")
    cfg = compose_train_config([], output_dir=tmp_path)  # the conv VAE of the quickstart
    with pytest.raises(CheckpointMismatchError) as error:
        load_model(cfg, ckpt)
    message = str(error.value)
    assert "missing from the checkpoint" in message and "encoder.convs.0.weight" in message
    assert "unexpected in the checkpoint" in message and "encoder.net.0.weight" in message


def test_fitting_checkpoint_loads(tmp_path):
    ckpt = _save_model_checkpoint(tmp_path / "vae.ckpt")
    model = load_model(compose_train_config([], output_dir=tmp_path), ckpt)
    assert not model.training


class _RunsCode:
    """Unpickling this would run a shell command (as a crafted checkpoint could)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_code_in_a_checkpoint_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _RunsCode(marker)}, ckpt)
    with pytest.raises(CheckpointError, match="other than tensors and plain data") as error:
        read_state_dict(ckpt)
    assert str(ckpt) in str(error.value) and "system" in str(error.value)
    assert not marker.exists()


def test_truncated_or_foreign_checkpoint_names_the_file(tmp_path):
    ckpt = _save_model_checkpoint(tmp_path / "vae.ckpt")
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated, corrupt or not a checkpoint") as error:
        read_state_dict(ckpt)
    assert str(ckpt) in str(error.value)
    torch.save({"weights": torch.zeros(1)}, ckpt)
    with pytest.raises(CheckpointError, match="has no 'state_dict'"):
        read_state_dict(ckpt)


def test_resuming_from_a_checkpoint_of_another_shape_fails_before_training(tmp_path):
    ckpt = _save_model_checkpoint(tmp_path / "vae16.ckpt", "model.latent_dim=16")
    run_dir = tmp_path / "run"
    cfg = compose_train_config(
        ["debug=fast", f"ckpt_path={ckpt}", "model.latent_dim=8"], output_dir=run_dir
    )
    with pytest.raises(CheckpointMismatchError, match=r"this run's config \(model._target_="):
        train(cfg)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and "CheckpointMismatchError" in record["error"]
    assert str(ckpt) in record["error"]
    assert record["train_steps"] == 0 and not (run_dir / "checkpoints").exists()


class _NotAllowed:
    """A class outside torch's weights-only allow-list."""


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (bytes(range(256)) * 20, "(UnpicklingError)"),  # random bytes
        (b"hello world\n" * 50, "(KeyError: 101)"),  # a text file
        (b"", "(EOFError)"),  # an empty file
        (pickle.dumps({"state_dict": {}}, protocol=4), "(UnpicklingError)"),  # a plain pickle
    ],
    ids=["random", "text", "empty", "pickle"],
)
def test_a_file_that_is_no_checkpoint_is_called_corrupt(tmp_path, content, reason):
    ckpt = tmp_path / "file.ckpt"
    ckpt.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        read_state_dict(ckpt)
    assert str(error.value) == (
        f"checkpoint {ckpt} is truncated, corrupt or not a checkpoint {reason}: pass a "
        "checkpoint written by genlab-train, e.g. <run_dir>/checkpoints/last.ckpt"
    )


def test_an_object_outside_the_allow_list_is_named(tmp_path):
    ckpt = tmp_path / "object.ckpt"
    torch.save({"state_dict": {}, "extra": _NotAllowed()}, ckpt)
    with pytest.raises(CheckpointError) as error:
        read_state_dict(ckpt)
    assert f"({__name__}._NotAllowed), which genlab does not load" in str(error.value)
