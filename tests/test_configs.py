"""Every option of every config group composes; models and loggers instantiate."""

import inspect
import re
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from genlab.config import CONFIG_DIR, run_stamp
from genlab.objectives.gan import GANObjective
from genlab.validation import validate_config
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


GAN_MODELS = ("gan", "dcgan")


@pytest.mark.parametrize(
    "override", [f"{group}={option}" for group in GROUPS for option in group_options(group)]
)
def test_every_group_option_composes_and_resolves(override, tmp_path):
    objective = ["loss=ns"] if override in ("model=gan", "model=dcgan") else []  # reads loss
    cfg = compose_train_config([override, *objective], output_dir=tmp_path)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container["trainer"]["_target_"] == "lightning.Trainer"


# ---- the loss group (contract 1: presets set the objective and its authors' settings only) ----
LOSS_PRESET_KEYS = {"objective", "n_critic", "lr", "betas", "d_batch_norm"}


@pytest.mark.parametrize("loss", group_options("loss"))
def test_loss_presets_hold_the_objective_and_its_authors_settings_only(loss):
    preset = OmegaConf.load(Path(CONFIG_DIR) / "loss" / f"{loss}.yaml")
    assert set(preset) == LOSS_PRESET_KEYS
    cfg = compose_train_config([f"loss={loss}"])  # the default (VAE) job: loss is a top node
    assert set(cfg.loss) == LOSS_PRESET_KEYS and "objective" not in cfg.model
    objective = instantiate(cfg.loss.objective)
    assert isinstance(objective, GANObjective)
    assert cfg.loss.n_critic >= 1 and cfg.loss.lr > 0 and len(cfg.loss.betas) == 2
    # the objective node holds the object's own arguments only
    arguments = set(inspect.signature(type(objective)).parameters)
    assert set(cfg.loss.objective) - {"_target_"} <= arguments


@pytest.mark.parametrize("model", GAN_MODELS)
def test_gan_models_read_the_loss_group_by_interpolation(model):
    raw = OmegaConf.to_container(compose_train_config([f"model={model}", "loss=ns"]).model)
    assert raw["objective"] == "${loss.objective}"
    assert raw["n_critic"] == "${loss.n_critic}"
    assert raw["optimizer"]["lr"] == "${loss.lr}"
    assert raw["optimizer"]["betas"] == "${loss.betas}"
    assert raw["discriminator"]["batch_norm"] == "${loss.d_batch_norm}"
    assert raw["autoencoder"]["_target_"].endswith("Autoencoder")


@pytest.mark.parametrize("model", GAN_MODELS)
@pytest.mark.parametrize("loss", group_options("loss"))
def test_the_presets_settings_reach_the_module(model, loss):
    cfg = compose_train_config([f"model={model}", f"loss={loss}"])
    module = instantiate(cfg.model)
    d_opt = module.configure_optimizers()[0]["optimizer"]
    assert module.n_critic == cfg.loss.n_critic
    assert d_opt.param_groups[0]["lr"] == cfg.loss.lr
    assert list(d_opt.param_groups[0]["betas"]) == list(cfg.loss.betas)
    has_bn = any(
        isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in module.discriminator.modules()
    )
    assert has_bn == cfg.loss.d_batch_norm
    autoencoder = module.objective.needs_autoencoder
    assert type(module.discriminator).__name__.endswith("Autoencoder") == autoencoder
    family = "lucic" if model == "gan" else "dcgan"
    assert type(module.discriminator).__module__ == f"genlab.nets.{family}"


# (override, the value it must reach) for every path of contract 1
OVERRIDE_PATHS = [
    (
        "loss=wgan_gp",
        "loss.objective.penalty_weight=5",
        lambda m, c: m.objective.penalty_weight == 5,
    ),
    ("loss=wgan", "loss.objective.clip_value=0.05", lambda m, c: m.objective.clip_value == 0.05),
    ("loss=began", "loss.objective.lambda_k=0.01", lambda m, c: m.objective.lambda_k == 0.01),
    ("loss=began", "loss.objective.gamma=0.5", lambda m, c: m.objective.gamma == 0.5),
    (
        "loss=dragan",
        "loss.objective.perturb_scale=0.25",
        lambda m, c: m.objective.perturb_scale == 0.25,
    ),
    ("loss=ns", "model.n_critic=3", lambda m, c: m.n_critic == 3),
    ("loss=ns", "model.optimizer.lr=3e-4", lambda m, c: _lr(m) == (3e-4, [0.0, 0.999])),
    ("loss=ns", "model.optimizer.betas=[0.5,0.9]", lambda m, c: _lr(m) == (5e-5, [0.5, 0.9])),
    ("loss=wgan_gp", "model.discriminator.batch_norm=true", lambda m, c: _has_bn(m)),
    ("loss=ns", "model.discriminator.batch_norm=false", lambda m, c: not _has_bn(m)),
    ("loss=ns", "model.max_g_steps=7", lambda m, c: m.max_g_steps == 7),
    ("loss=ns", "trainer.max_epochs=2", lambda m, c: c.trainer.max_epochs == 2),
    ("loss=ns", "seed=3", lambda m, c: c.seed == 3),
]


def _lr(module) -> tuple[float, list[float]]:
    group = module.configure_optimizers()[1]["optimizer"].param_groups[0]  # G's optimizer
    return group["lr"], list(group["betas"])


def _has_bn(module) -> bool:
    return any(
        isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in module.discriminator.modules()
    )


@pytest.mark.parametrize(
    ("loss", "override", "reached"), OVERRIDE_PATHS, ids=[o for _, o, _ in OVERRIDE_PATHS]
)
def test_every_override_path_of_the_loss_contract_works(loss, override, reached):
    cfg = compose_train_config(["experiment=lucic_mnist", loss, override])
    validate_config(cfg)
    assert reached(instantiate(cfg.model), cfg)


def test_default_job_is_the_quickstart_experiment(tmp_path):
    default = compose_train_config([], output_dir=tmp_path)
    explicit = compose_train_config(["experiment=quickstart"], output_dir=tmp_path)
    assert OmegaConf.to_container(default, resolve=True) == OmegaConf.to_container(
        explicit, resolve=True
    )
    assert default.name == "quickstart"


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
