"""User errors on the command line: one short message naming the problem and the fix, no
traceback, exit status 1 (genlab-train, genlab-eval, genlab-sample); HYDRA_FULL_ERROR=1 shows the
traceback; programming errors keep theirs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from genlab.data.download import CorruptFileError, DataNotFoundError
from genlab.errors import (
    FULL_ERROR_HINT,
    ReportedUserError,
    UsageError,
    UserError,
    run_reporting_user_errors,
    user_errors_for_hydra,
)
from genlab.hydra_callbacks import RunDirectoryExistsError
from genlab.runs import CheckpointError, CheckpointMismatchError, RunNotFoundError
from genlab.validation import ConfigError
from tests.helpers import compose_train_config

BIN = Path(sys.executable).parent
_MODULES = {"genlab-train": "genlab.train", "genlab-eval": "genlab.eval"}
_MODULES["genlab-sample"] = "genlab.sample"


def run_command(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """A genlab console script (from this venv) in a fresh process."""
    script = BIN / name
    command = [str(script)] if script.is_file() else [sys.executable, "-m", _MODULES[name]]
    environment = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    environment.update(WANDB_MODE="offline", **env)
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=environment, timeout=300
    )


def user_error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The lines a user error leaves on stderr, from its ``Error:`` line on; checks the exit
    status and that no traceback was printed."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Error: "))
    return lines[start:]


def fake_run(run_dir: Path, ckpt_bytes: bytes) -> Path:
    """A run directory with the debug=fast config and ``ckpt_bytes`` as its last.ckpt."""
    cfg = compose_train_config(["debug=fast"], output_dir=run_dir)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml", resolve=True)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(ckpt_bytes)
    return run_dir


RANDOM_BYTES = bytes(range(256)) * 20


def test_bad_config_value(tmp_path):
    run_dir = tmp_path / "run"
    result = run_command("genlab-train", "model.latent_dim=0", f"hydra.run.dir={run_dir}")
    assert user_error_lines(result) == [
        "Error: model.latent_dim=0 is invalid: must be an integer >= 1",
        "",
        FULL_ERROR_HINT,
    ]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith("ConfigError: ")


def test_random_file_as_ckpt_path_is_called_corrupt(tmp_path):
    ckpt = tmp_path / "random.ckpt"
    ckpt.write_bytes(RANDOM_BYTES)
    result = run_command(
        "genlab-train", "debug=fast", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert user_error_lines(result) == [
        f"Error: checkpoint {ckpt} is truncated, corrupt or not a checkpoint (UnpicklingError): "
        "pass a checkpoint written by genlab-train, e.g. <run_dir>/checkpoints/last.ckpt",
        "",
        FULL_ERROR_HINT,
    ]
    assert "other than tensors" not in result.stderr


def test_missing_data_names_the_files_and_the_fix(tmp_path):
    result = run_command(
        "genlab-train",
        "experiment=vae_mnist",
        f"hydra.run.dir={tmp_path / 'run'}",
        GENLAB_DATA=str(tmp_path / "nothing"),
    )
    folder = tmp_path / "nothing" / "mnist"
    assert user_error_lines(result) == [
        "Error: mnist data not found: 4 of 4 expected files are missing:",
        *(
            f"  {folder / f'{split}-{kind}-ubyte.gz'} (missing)"
            for split in ("train", "t10k")
            for kind in ("images-idx3", "labels-idx1")
        ),
        "Set paths.data_dir (or the GENLAB_DATA environment variable) to the folder that holds "
        "the data sets, or pass data.source.download=true to download mnist.",
        "",
        FULL_ERROR_HINT,
    ]


def test_full_error_shows_the_traceback(tmp_path):
    result = run_command(
        "genlab-train",
        "model.latent_dim=0",
        f"hydra.run.dir={tmp_path / 'run'}",
        HYDRA_FULL_ERROR="1",
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "validate_config" in result.stderr
    assert "genlab.validation.ConfigError: model.latent_dim=0 is invalid" in result.stderr


def test_eval_of_a_missing_run_directory(tmp_path):
    result = run_command("genlab-eval", str(tmp_path / "no_run"))
    assert user_error_lines(result) == [
        f"Error: {tmp_path / 'no_run'} is not a genlab-train run directory (no such directory): "
        "pass the directory of a run (outputs/runs/<date>/<time>_<name>, or a multirun job "
        "folder)",
        "",
        FULL_ERROR_HINT,
    ]
    full = run_command("genlab-eval", str(tmp_path / "no_run"), HYDRA_FULL_ERROR="1")
    assert full.returncode == 1 and "Traceback" in full.stderr
    assert "genlab.runs.RunNotFoundError" in full.stderr


def test_sample_from_a_foreign_checkpoint(tmp_path):
    run_dir = fake_run(tmp_path / "run", RANDOM_BYTES)
    result = run_command("genlab-sample", str(run_dir), "--out", str(tmp_path / "s.npz"))
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert user_error_lines(result)[0] == (
        f"Error: checkpoint {ckpt} is truncated, corrupt or not a checkpoint (UnpicklingError): "
        "pass a checkpoint written by genlab-train, e.g. <run_dir>/checkpoints/last.ckpt"
    )
    assert not (tmp_path / "s.npz").exists()


def test_eval_override_of_a_config_group_is_refused(tmp_path):
    run_dir = fake_run(tmp_path / "run", RANDOM_BYTES)
    result = run_command("genlab-eval", str(run_dir), "model=gan")
    (message, *_) = user_error_lines(result)
    assert message.startswith("Error: override 'model=gan': genlab-eval takes eval settings")


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("x"),
        DataNotFoundError("x"),
        CorruptFileError(Path("f"), "x"),
        CheckpointError("x"),
        CheckpointMismatchError("x"),
        RunNotFoundError("x"),
        RunDirectoryExistsError("x"),
        UsageError("x"),
    ],
    ids=type,
)
def test_user_errors_are_user_errors_and_keep_their_builtin_base(error):
    assert isinstance(error, UserError)
    assert isinstance(error, ValueError | FileNotFoundError | FileExistsError)


def test_programming_errors_keep_their_traceback(capsys):
    def bug():
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run_reporting_user_errors(bug)
    with pytest.raises(RuntimeError, match="a bug"), user_errors_for_hydra():
        bug()
    assert capsys.readouterr().err == ""


def test_user_errors_become_one_message(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def mistake():
        raise ConfigError("data.batch_size=0 is invalid: must be an integer >= 1")

    with pytest.raises(SystemExit) as exit_info:
        run_reporting_user_errors(mistake)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        f"Error: data.batch_size=0 is invalid: must be an integer >= 1\n\n{FULL_ERROR_HINT}\n"
    )
    with pytest.raises(ReportedUserError) as reported, user_errors_for_hydra():
        mistake()
    assert str(reported.value) == "Error: data.batch_size=0 is invalid: must be an integer >= 1"
    assert isinstance(reported.value.__cause__, ConfigError)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigError):
        run_reporting_user_errors(mistake)
