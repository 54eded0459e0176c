"""Every option of every config group composes; models and loggers instantiate."""

import re

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genlab.config import run_stamp
from tests.helpers import compose_train_config, group_options

GROUPS = [
    "data",
    "model",
    "optim",
    "loss",
    "hardware",
    "logger",
    "callbacks",
    "experiment",
    "debug",
]


@pytest.mark.parametrize(
    "override", [f"{group}={option}" for group in GROUPS for option in group_options(group)]
)
def test_every_group_option_composes_and_resolves(override, tmp_path):
    cfg = compose_train_config([override], output_dir=tmp_path)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container["trainer"]["_target_"] == "lightning.Trainer"


def test_default_job_is_the_quickstart_experiment(tmp_path):
    default = compose_train_config([], output_dir=tmp_path)
    explicit = compose_train_config(["experiment=quickstart"], output_dir=tmp_path)
    assert OmegaConf.to_container(default, resolve=True) == OmegaConf.to_container(
        explicit, resolve=True
    )
    assert default.name == "quickstart"


GAN_MODELS = ("gan", "dcgan")


@pytest.mark.parametrize("model", group_options("model"))
@pytest.mark.parametrize("data", ["shapes", "mnist"])
def test_every_model_instantiates_for_its_data(model, data, tmp_path):
    objective = ["loss=ns"] if model in GAN_MODELS else []  # GANs take their objective from loss=
    cfg = compose_train_config([f"model={model}", f"data={data}", *objective], output_dir=tmp_path)
    module = instantiate(cfg.model)
    assert module.image_shape == (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    assert module.configure_optimizers() is not None


@pytest.mark.parametrize("data", group_options("data"))
def test_every_data_option_instantiates_with_the_default_experiment(data, tmp_path):
    cfg = compose_train_config([f"data={data}"], output_dir=tmp_path)
    datamodule = instantiate(cfg.data)
    assert datamodule.image_shape == (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)


def test_slurm_node_and_device_counts_are_integers(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_NNODES", "4")
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "8")
    trainer = compose_train_config(["hardware=slurm"], output_dir=tmp_path).trainer
    assert (trainer.num_nodes, trainer.devices) == (4, 8)


@pytest.mark.parametrize("logger", ["wandb", "csv", "none"])
def test_loggers_instantiate(logger, tmp_path):
    cfg = compose_train_config([f"logger={logger}"], output_dir=tmp_path)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    assert len(loggers) == (0 if logger == "none" else 1)


def test_wandb_is_offline_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert compose_train_config([], output_dir=tmp_path).logger.wandb.offline is True
    monkeypatch.setenv("WANDB_MODE", "online")
    assert compose_train_config([], output_dir=tmp_path).logger.wandb.offline is False
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_train_config(["logger.wandb.offline=false"], output_dir=tmp_path)
    assert cfg.logger.wandb.offline is False  # the config key wins over the environment


def test_data_dir_follows_genlab_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    cfg = compose_train_config(["data=mnist"], output_dir=tmp_path)
    assert cfg.data.source.root == str(tmp_path)


def test_unknown_group_option_lists_the_choices(tmp_path):
    with pytest.raises(ConfigCompositionException, match="Available options") as error:
        compose_train_config(["model=not_a_model"], output_dir=tmp_path)
    assert "vae" in str(error.value)


def test_run_directories_are_unique_but_shared_by_the_tasks_of_a_slurm_step(monkeypatch):
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    assert re.fullmatch(r"\d\d-\d\d-\d\d-\d{6}", run_stamp())
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_STEP_ID", "1")
    assert run_stamp() == "slurm4242.1"
    cfg = compose_train_config([])
    assert "slurm4242.1_quickstart" in HydraConfig.get().run.dir
    assert cfg.name == "quickstart"
