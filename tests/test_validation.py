"""Bad config values fail before anything is built, with a message naming key, value and fix."""

import copy
import json
import math
import string
import sys
from functools import cache

import pytest
from hydra.core.global_hydra import GlobalHydra
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf

from genlab.train import main, train
from genlab.validation import RULES, ConfigError, validate_config
from tests.helpers import compose_train_config, group_options

# (rule section, key) -> (a dotted key it checks in the default config, a bad value, the message)
RULE_CASES = {
    ("optimizer", "lr"): ("model.optimizer.lr", 0.0, "must be a finite number > 0"),
    ("optimizer", "betas"): (
        "model.optimizer.betas",
        [0.9, 1.0],
        "must be a pair [a, b], each a number in [0, 1)",
    ),
    ("optimizer", "weight_decay"): (
        "model.optimizer.weight_decay",
        -0.1,
        "must be a finite number >= 0",
    ),
    ("optimizer", "momentum"): ("model.optimizer.momentum", 1.5, "must be a number in [0, 1)"),
    ("optimizer", "alpha"): ("model.optimizer.alpha", -0.01, "must be a number in [0, 1)"),
    ("optimizer", "eps"): ("model.optimizer.eps", 0, "must be a finite number > 0"),
    ("model", "latent_dim"): ("model.latent_dim", 0, "must be an integer >= 1"),
    ("model", "n_critic"): ("model.n_critic", 0, "must be an integer >= 1"),
    ("model", "num_classes"): ("model.num_classes", -1, "must be an integer >= 0"),
    ("model", "ema_decay"): ("model.ema_decay", 1.0, "must be null or a number in [0, 1)"),
    ("model", "max_g_steps"): ("model.max_g_steps", 0, "must be null or an integer >= 1"),
    ("model", "latent_prior"): ("model.latent_prior", "gaussian", "must be one of normal, uniform"),
    ("model", "sample_mode"): ("model.sample_mode", "median", "must be one of auto, mean, draw"),
    ("model", "penalty_weight"): (
        "model.objective.penalty_weight",
        -10.0,
        "must be a finite number >= 0",
    ),
    ("model", "lambda_k"): ("model.objective.lambda_k", -0.001, "must be a finite number >= 0"),
    ("model", "clip_value"): (
        "model.objective.clip_value",
        0.0,
        "must be null or a finite number > 0",
    ),
    ("model", "grad_clip_val"): (
        "model.grad_clip_val",
        -1.0,
        "must be null or a finite number > 0",
    ),
    ("model", "gamma"): ("model.objective.gamma", 1.5, "must be a number in (0, 1]"),
    ("model", "ema_bn_samples"): ("model.ema_bn_samples", 0, "must be an integer >= 1"),
    ("loss", "penalty_weight"): (
        "loss.objective.penalty_weight",
        -10.0,
        "must be a finite number >= 0",
    ),
    ("loss", "lambda_k"): ("loss.objective.lambda_k", -0.001, "must be a finite number >= 0"),
    ("loss", "clip_value"): (
        "loss.objective.clip_value",
        0.0,
        "must be null or a finite number > 0",
    ),
    ("loss", "gamma"): ("loss.objective.gamma", 1.5, "must be a number in (0, 1]"),
    ("loss", "n_critic"): ("loss.n_critic", 0, "must be an integer >= 1"),
    ("loss", "lr"): ("loss.lr", 0.0, "must be a finite number > 0"),
    ("loss", "betas"): ("loss.betas", [0.5, 1.0], "must be a pair [a, b], each a number in [0, 1)"),
    ("loss", "d_batch_norm"): ("loss.d_batch_norm", "no", "must be true or false"),
    ("model", "beta"): ("model.kl_weighting.beta", -4.0, "must be a finite number >= 0"),
    ("data", "batch_size"): ("data.batch_size", 0, "must be an integer >= 1"),
    ("data", "eval_batch_size"): ("data.eval_batch_size", 0, "must be null or an integer >= 1"),
    ("data", "channels"): ("data.channels", 2, "must be one of 1, 3"),
    ("data", "image_size"): ("data.image_size", 4, "must be an integer >= 8"),
    ("data", "load_size"): ("data.load_size", 4, "must be an integer >= 8"),
    ("data", "num_classes"): ("data.num_classes", -1, "must be an integer >= 0"),
    ("data", "val_size"): ("data.val_size", -1, "must be an integer >= 0"),
    ("data", "num_workers"): ("data.num_workers", -2, "must be an integer >= 0"),
    ("trainer", "max_epochs"): (
        "trainer.max_epochs",
        0,
        "must be null, -1 (no limit) or an integer >= 1",
    ),
    ("trainer", "max_steps"): ("trainer.max_steps", 0, "must be -1 (no limit) or an integer >= 1"),
}


@cache
def _default_config(*overrides: str) -> DictConfig:
    return compose_train_config(list(overrides))


# rules whose key the default optimizer (Adam) does not take are checked on one that does
RULE_BASES = {
    ("optimizer", "momentum"): ("optim=rmsprop",),
    ("optimizer", "alpha"): ("optim=rmsprop",),
}


def _rule_config(rule: tuple[str, str], value: object) -> DictConfig:
    """The default config (or the rule's base) with the rule's key set to ``value``."""
    return _with(RULE_CASES[rule][0], value, _default_config(*RULE_BASES.get(rule, ())))


def _with(key: str, value: object, cfg: DictConfig | None = None) -> DictConfig:
    """A copy of ``cfg`` (the default config) with ``key`` set to ``value``, added if absent."""
    cfg = copy.deepcopy(cfg if cfg is not None else _default_config())
    OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def _shown(value: object) -> str:
    """The value as the message writes it (as on the command line)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def test_default_config_is_valid():
    validate_config(_default_config())


def test_every_rule_has_a_case():
    assert {(rule.section, rule.key) for rule in RULES} == set(RULE_CASES)


@pytest.mark.parametrize("rule", sorted(RULE_CASES), ids="/".join)
def test_each_rule_names_key_value_and_what_is_allowed(rule):
    key, value, allowed = RULE_CASES[rule]
    with pytest.raises(ConfigError) as error:
        validate_config(_rule_config(rule, value))
    assert str(error.value) == f"{key}={_shown(value)} is invalid: {allowed}"


# ---- random bad values (hypothesis) ------------------------------------------------------------
_letters = st.text(alphabet=string.ascii_letters, min_size=1, max_size=6)
_wrong_type = st.one_of(_letters, st.booleans(), st.lists(st.integers(-3, 3), max_size=3))
_non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
_floats = st.floats(allow_nan=False, allow_infinity=False)


def _int_below(
    low: int, *, optional: bool = False, allowed: tuple[int, ...] = ()
) -> st.SearchStrategy:
    """Values that are not an integer >= low (nor null when optional, nor one of ``allowed``)."""
    ints = st.integers(max_value=low - 1).filter(lambda v: v not in allowed)
    nones = st.nothing() if optional else st.none()
    return st.one_of(ints, _floats, _non_finite, _wrong_type, nones)


def _number_outside(
    low: float,
    high: float | None = None,
    *,
    open_low: bool = False,
    closed_high: bool = False,
    optional: bool = False,
) -> st.SearchStrategy:
    """Values that are not a finite number in the interval from low to high."""
    below = _floats.filter(lambda v: v <= low if open_low else v < low)
    above = st.nothing()
    if high is not None:
        above = _floats.filter(lambda v: v > high if closed_high else v >= high)
    nones = st.nothing() if optional else st.none()
    return st.one_of(below, above, _non_finite, _wrong_type, nones)


_unit = _number_outside(0, 1)
BAD_VALUES = {
    ("optimizer", "lr"): _number_outside(0, open_low=True),
    ("optimizer", "betas"): st.one_of(
        st.tuples(_unit, st.floats(0, 0.99)).map(list),
        st.tuples(st.floats(0, 0.99), _unit).map(list),
        st.lists(st.floats(0, 0.99), max_size=4).filter(lambda v: len(v) != 2),
        _letters,
    ),
    ("optimizer", "weight_decay"): _number_outside(0),
    ("optimizer", "momentum"): _unit,
    ("optimizer", "alpha"): _unit,
    ("optimizer", "eps"): _number_outside(0, open_low=True),
    ("model", "latent_dim"): _int_below(1),
    ("model", "n_critic"): _int_below(1),
    ("model", "num_classes"): _int_below(0),
    ("model", "ema_decay"): _number_outside(0, 1, optional=True),
    ("model", "max_g_steps"): _int_below(1, optional=True),
    ("model", "latent_prior"): st.one_of(
        _letters.filter(lambda v: v not in ("normal", "uniform")), st.integers(), st.none()
    ),
    ("model", "sample_mode"): st.one_of(
        _letters.filter(lambda v: v not in ("auto", "mean", "draw")), st.integers(), st.none()
    ),
    ("model", "penalty_weight"): _number_outside(0),
    ("model", "lambda_k"): _number_outside(0),
    ("model", "clip_value"): _number_outside(0, open_low=True, optional=True),
    ("model", "grad_clip_val"): _number_outside(0, open_low=True, optional=True),
    ("model", "gamma"): _number_outside(0, 1, open_low=True, closed_high=True),
    ("model", "beta"): _number_outside(0),
    ("model", "ema_bn_samples"): _int_below(1),
    ("loss", "penalty_weight"): _number_outside(0),
    ("loss", "lambda_k"): _number_outside(0),
    ("loss", "clip_value"): _number_outside(0, open_low=True, optional=True),
    ("loss", "gamma"): _number_outside(0, 1, open_low=True, closed_high=True),
    ("loss", "n_critic"): _int_below(1),
    ("loss", "lr"): _number_outside(0, open_low=True),
    ("loss", "betas"): st.one_of(
        st.tuples(_unit, st.floats(0, 0.99)).map(list),
        st.lists(st.floats(0, 0.99), max_size=4).filter(lambda v: len(v) != 2),
        _letters,
    ),
    ("loss", "d_batch_norm"): st.one_of(st.integers(), _floats, _letters, st.none()),
    ("data", "batch_size"): _int_below(1),
    ("data", "eval_batch_size"): _int_below(1, optional=True),
    ("data", "channels"): st.one_of(st.integers().filter(lambda v: v not in (1, 3)), _wrong_type),
    ("data", "image_size"): _int_below(8),
    ("data", "load_size"): _int_below(8),
    ("data", "num_classes"): _int_below(0),
    ("data", "val_size"): _int_below(0),
    ("data", "num_workers"): _int_below(0),
    ("trainer", "max_epochs"): _int_below(1, optional=True, allowed=(-1,)),
    ("trainer", "max_steps"): _int_below(1, allowed=(-1,)),
}


def test_every_rule_has_bad_values():
    assert set(BAD_VALUES) == set(RULE_CASES)


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_random_bad_values_raise_config_errors_naming_key_and_value(data):
    rule = data.draw(st.sampled_from(sorted(BAD_VALUES)), label="rule")
    value = data.draw(BAD_VALUES[rule], label="value")
    key = RULE_CASES[rule][0]
    with pytest.raises(ConfigError) as error:
        validate_config(_rule_config(rule, value))
    assert f"{key}={_shown(value)} is invalid: must be " in str(error.value)


# ---- rules across keys ---------------------------------------------------------------------
def test_several_bad_values_are_listed_together():
    cfg = _with("trainer.max_steps", -5, _with("model.optimizer.lr", -1e-3))
    with pytest.raises(ConfigError, match="2 config values are invalid") as error:
        validate_config(cfg)
    assert "model.optimizer.lr=-0.001 is invalid" in str(error.value)
    assert "trainer.max_steps=-5 is invalid" in str(error.value)


def test_references_are_checked_where_the_value_is_defined():
    with pytest.raises(ConfigError) as error:
        validate_config(_with("data.num_classes", -1))
    assert str(error.value) == "data.num_classes=-1 is invalid: must be an integer >= 0"


def test_per_network_optimizer_overrides_are_checked_as_optimizers():
    with pytest.raises(ConfigError) as error:
        validate_config(_with("model.d_optimizer", {"lr": -1, "betas": [0.5, 0.999]}))
    assert str(error.value) == "model.d_optimizer.lr=-1 is invalid: must be a finite number > 0"


def test_lr_schedulers_are_not_optimizers():
    scheduler = {"_target_": "torch.optim.lr_scheduler.StepLR", "_partial_": True, "gamma": 2.0}
    validate_config(_with("model.scheduler", scheduler))


def test_unknown_target_is_named():
    with pytest.raises(ConfigError) as error:
        validate_config(_with("model.encoder._target_", "genlab.nets.vae.NoSuchNet"))
    assert str(error.value) == (
        "model.encoder._target_='genlab.nets.vae.NoSuchNet' is invalid: must be an importable "
        "name (module 'genlab.nets.vae' has no attribute 'NoSuchNet')"
    )


def test_conv_vae_image_size_must_divide_by_its_strides():
    with pytest.raises(ConfigError) as error:
        validate_config(_with("data.image_size", 30))
    message = str(error.value)
    assert (
        "data.image_size=30 is invalid for model.encoder (genlab.nets.vae.ConvEncoder)" in message
    )
    assert "not divisible by 2^2=4" in message and "model.decoder" in message
    validate_config(_with("data.image_size", 36))  # 36 = 4 x 9 is fine for two stride-2 layers


def test_net_supported_sizes_and_channels_are_read_from_the_class(monkeypatch):
    from genlab.nets.vae import MLPDecoder

    monkeypatch.setattr(MLPDecoder, "supported_image_sizes", (28, 32, 64), raising=False)
    monkeypatch.setattr(MLPDecoder, "supported_channels", (3,), raising=False)
    cfg = _with("data.image_size", 48, compose_train_config(["model=vae_mlp"]))
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert str(error.value) == (
        "2 config values are invalid:\n"
        "  data.image_size=48 is invalid for model.decoder (genlab.nets.vae.MLPDecoder): must be "
        "one of 28, 32, 64\n"
        "  data.channels=1 is invalid for model.decoder (genlab.nets.vae.MLPDecoder): must be "
        "one of 3"
    )


def test_conditional_model_on_unlabelled_data_names_the_labelled_sets():
    cfg = compose_train_config(["model=cvae", "data=image_folder"])
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert str(error.value) == (
        "model.conditional=true needs labelled data, but data.num_classes=0 (data=image_folder): "
        "choose a labelled data set (data=cifar10 | fashion_mnist | mnist | shapes | shapes_small) "
        "or an unconditional model"
    )


def test_missing_checkpoint_file_is_named(tmp_path):
    with pytest.raises(ConfigError) as error:
        validate_config(_with("ckpt_path", str(tmp_path / "nope.ckpt")))
    assert str(error.value) == (
        f"ckpt_path='{tmp_path / 'nope.ckpt'}' is invalid: no such checkpoint file; pass the path "
        "of a checkpoint, e.g. ckpt_path=<run_dir>/checkpoints/last.ckpt, or ckpt_path=null"
    )


# ---- shipped configs -------------------------------------------------------------------------
GROUPS = [
    "data",
    "model",
    "loss",
    "optim",
    "hardware",
    "logger",
    "callbacks",
    "experiment",
    "debug",
]


def _compose_usable(*overrides: str) -> DictConfig:
    """The config of ``overrides``; a GAN model with no objective gets loss=ns, as it must take
    one from the loss group; unpaired two-domain data gets model=cyclegan, and model=cyclegan
    unpaired data, when the override names only one of them."""
    overrides = list(overrides)
    names = {o.split("=")[0] for o in overrides}
    if names & {"data", "model"} == {"data"} and f"{overrides[0]}" in UNPAIRED_DATA:
        overrides.append("model=cyclegan")
    if names & {"data", "model"} == {"model"} and "model=cyclegan" in overrides:
        overrides.append("data=shapes_pair")
    cfg = compose_train_config(overrides)
    if "objective" in cfg.model and "loss" not in cfg:
        cfg = compose_train_config([*overrides, "loss=ns"])
    return cfg


UNPAIRED_DATA = {"data=horse2zebra", "data=shapes_pair"}


@pytest.mark.parametrize(
    "override", [f"{group}={option}" for group in GROUPS for option in group_options(group)]
)
def test_every_shipped_option_passes(override):
    validate_config(_compose_usable(override))


@pytest.mark.parametrize("model", group_options("model"))
@pytest.mark.parametrize("data", ["cifar10", "image_folder"])  # colour, 32 and 64 px
def test_shipped_models_take_colour_images_unless_they_need_labels(model, data):
    cfg = _compose_usable(f"model={model}", f"data={data}")
    if cfg.model.get("conditional") and cfg.data.num_classes == 0:
        with pytest.raises(ConfigError, match="needs labelled data"):
            validate_config(cfg)
    elif model == "cyclegan":  # single-domain data: refused, see the test below
        with pytest.raises(ConfigError, match="unpaired two-domain"):
            validate_config(cfg)
    else:
        validate_config(cfg)


def test_a_missing_mandatory_value_is_named():
    cfg = _with("model.objective", "???")
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert str(error.value) == (
        "model.objective=??? is missing: set it on the command line or choose a config group "
        "option that sets it"
    )


@pytest.mark.parametrize("model", ["gan", "dcgan"])
def test_a_gan_model_without_a_loss_names_the_loss_options(model):
    with pytest.raises(ConfigError) as error:
        validate_config(compose_train_config([f"model={model}"]))
    assert str(error.value) == (
        "model.objective=${loss.objective} (and 5 more keys) reads the loss config group, but no "
        f"loss option is chosen (model={model}): add loss=<name> to the command line, with "
        f"<name> one of {', '.join(group_options('loss'))}"
    )


def test_a_reference_to_a_key_nobody_sets_is_named():
    cfg = _with("model.latent_dim", "${data.latent_size}")
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert str(error.value) == (
        "model.latent_dim=${data.latent_size} refers to a key that no chosen config sets: set it "
        "on the command line or choose a config group option that sets it"
    )


def test_optimizer_keys_the_optimizer_does_not_take_are_named_with_the_fix():
    cfg = compose_train_config(["experiment=gan_shapes_quick", "loss=wgan", "optim=rmsprop"])
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert str(error.value) == (
        "model.optimizer.betas=[0.5, 0.999] is invalid: torch.optim.RMSprop takes no betas; "
        "remove it with '~model.optimizer.betas' on the command line"
    )
    validate_config(
        compose_train_config(
            ["experiment=gan_shapes_quick", "loss=wgan", "optim=rmsprop", "~model.optimizer.betas"]
        )
    )


def test_objective_settings_are_checked_in_the_loss_group_they_come_from():
    cfg = compose_train_config(
        ["model=gan", "loss=wgan_gp", "loss.objective.penalty_weight=-1", "loss.lr=0"]
    )
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert str(error.value) == (
        "2 config values are invalid:\n"
        "  loss.lr=0 is invalid: must be a finite number > 0\n"
        "  loss.objective.penalty_weight=-1 is invalid: must be a finite number >= 0"
    )


# ---- the entry points --------------------------------------------------------------------------
def test_train_records_a_bad_value_before_building_anything(tmp_path):
    cfg = compose_train_config(["debug=fast", "model.latent_dim=0"], output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"model\.latent_dim=0 is invalid"):
        train(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "failed"
    assert record["error"] == "ConfigError: model.latent_dim=0 is invalid: must be an integer >= 1"
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "samples").exists()


def test_unknown_group_option_on_the_command_line_lists_the_choices(monkeypatch, capsys):
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["genlab-train", "model=not_a_model"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    stderr = capsys.readouterr().err
    assert "Could not find 'model/not_a_model'" in stderr and "Available options" in stderr
    assert all(option in stderr for option in group_options("model"))


def test_an_eval_metric_to_optimize_needs_the_sample_quality_callback():
    cfg = compose_train_config(
        ["experiment=gan_shapes_quick", "callbacks.sample_quality.at_end=false"]
    )
    with pytest.raises(ConfigError, match=r"optimized_metric=eval/fid .* sample_quality"):
        validate_config(cfg)
    validate_config(compose_train_config(["experiment=gan_shapes_quick"]))
    cfg = compose_train_config(
        ["experiment=gan_shapes_quick", "debug=fast"]  # debug=fast turns both off
    )
    validate_config(cfg)
    during = ["callbacks.sample_quality.at_end=false", "callbacks.sample_quality.every_n_epochs=1"]
    validate_config(compose_train_config(["experiment=gan_shapes_quick", *during]))


def test_a_best_of_run_metric_to_optimize_needs_evaluations_during_training():
    overrides = ["experiment=gan_shapes_quick", "optimized_metric=best/eval/fid"]
    with pytest.raises(ConfigError, match=r"optimized_metric=best/eval/fid .*every_n_epochs"):
        validate_config(compose_train_config(overrides))  # at_end only
    for during in ("every_n_epochs=2", "every_n_steps=50"):
        validate_config(compose_train_config([*overrides, f"callbacks.sample_quality.{during}"]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["experiment=cyclegan_shapes", "data=mnist"],
            "model._target_=genlab.modules.cyclegan.CycleGAN trains on unpaired two-domain "
            "(a, b) batches, but data._target_=genlab.data.ImageDataModule (data=mnist) yields "
            "single-domain "
            "(x, y) batches: choose data=horse2zebra | shapes_pair for this model, or a model for "
            "this data",
        ),
        (
            ["data=horse2zebra"],
            "model._target_=genlab.modules.vae.VAE trains on single-domain (x, y) batches, but "
            "data._target_=genlab.data.unpaired.UnpairedDataModule (data=horse2zebra) yields "
            "unpaired two-domain "
            "(a, b) batches: choose data=cifar10 | fashion_mnist | image_folder | mnist | shapes "
            "| shapes_small for this model, or a model for this data",
        ),
    ],
)
def test_a_model_must_take_the_batches_its_data_gives(overrides, message):
    with pytest.raises(ConfigError) as error:
        validate_config(compose_train_config(overrides))
    assert str(error.value) == message
