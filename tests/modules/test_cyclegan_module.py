"""The CycleGAN module: its losses against a hand computation, the update order, counters and the
LR rule over epochs, budgets, translation and pictures."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning import Callback
from torch import nn

from genlab.config import CONFIG_DIR
from genlab.modules.cyclegan import CycleGAN
from genlab.train import train
from genlab.validation import ConfigError, validate_config
from tests.helpers import compose_train_config

SMALL = [
    "experiment=cyclegan_shapes",
    "data.source.num_train=40",
    "data.source.num_test=12",
    "data.batch_size=4",
    "model.generator.base_channels=4",
    "model.generator.num_blocks=1",
    "model.discriminator.base_channels=4",
]


def build(*overrides: str) -> tuple[CycleGAN, L.LightningDataModule]:
    cfg = compose_train_config([*SMALL, *overrides])
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return instantiate(cfg.model), datamodule


def fit(model, datamodule, steps: int, callbacks=(), max_epochs: int = 1) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=max_epochs,
        limit_train_batches=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer


class FirstBatch(Callback):
    """Keeps the first training batch and copies of the four nets as they were before it."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self.batch = [x.clone() for x in batch]
            names = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
            self.nets = {n: copy.deepcopy(getattr(pl_module, n)) for n in names}


def l1(x, y):
    return (x - y).abs().mean() * 2  # in the [-1, 1] range of the reference


def least_squares(d_real, d_fake, g_fake):
    """(L_D, L_G) of least squares on D outputs (PatchGAN maps): means over every element."""
    return (d_real - 1).pow(2).mean() + d_fake.pow(2).mean(), (g_fake - 1).pow(2).mean()


def hinge(d_real, d_fake, g_fake):
    return (1 - d_real).clamp(min=0).mean() + (1 + d_fake).clamp(min=0).mean(), -g_fake.mean()


@pytest.mark.parametrize(("loss", "objective"), [("ls", least_squares), ("hinge", hinge)])
def test_the_first_step_losses_match_a_hand_computation(loss, objective):
    model, datamodule = build(f"loss={loss}", "model.lambda_cyc=7.0", "model.lambda_id=0.3")
    first = FirstBatch()
    trainer = fit(model, datamodule, steps=1, callbacks=[first])
    a, b = first.batch
    g, f, d_a, d_b = first.nets.values()
    with torch.no_grad():
        fake_b, fake_a = g(a), f(b)
        # the pool is empty at the first step: D sees the new fakes; each D loss is halved
        d_loss_a, g_adv_a = objective(d_a(a), d_a(fake_a), d_a(fake_a))
        d_loss_b, g_adv_b = objective(d_b(b), d_b(fake_b), d_b(fake_b))
        adversarial = g_adv_a + g_adv_b
        cycle = l1(f(fake_b), a) + l1(g(fake_a), b)
        identity = l1(f(a), a) + l1(g(b), b)
        g_loss = adversarial + 7.0 * cycle + 7.0 * 0.3 * identity
        d_loss = 0.5 * d_loss_a + 0.5 * d_loss_b
    logged = trainer.callback_metrics
    expected = {
        "train/g_adv": adversarial,
        "train/cycle": cycle,
        "train/identity": identity,
        "train/g_loss": g_loss,
        "train/d_loss": d_loss,
    }
    for key, value in expected.items():
        torch.testing.assert_close(logged[key], value, rtol=1e-5, atol=1e-6, msg=key)


LOSSES = sorted(p.stem for p in (Path(CONFIG_DIR) / "loss").glob("*.yaml"))


@pytest.mark.parametrize("loss", LOSSES)
def test_every_objective_composes_with_cyclegan_or_is_refused(loss):
    """loss=<name> gives each discriminator its own copy of the objective, with the preset's
    hyperparameters, and trains; BEGAN (no autoencoder critic here) is refused before
    training, naming the fix."""
    cfg = compose_train_config([*SMALL, f"loss={loss}"])
    objective = instantiate(cfg.loss.objective)
    if objective.needs_autoencoder:
        with pytest.raises(ConfigError, match=r"BEGAN \(loss=began\) needs an autoencoder critic"):
            validate_config(cfg)
        return
    validate_config(cfg)
    model, datamodule = build(f"loss={loss}")
    critics = (model.discriminator_a, model.discriminator_b)
    assert model.objectives["A"] is not model.objectives["B"]
    for copy_ in model.objectives.values():
        assert type(copy_) is type(objective) and vars(copy_).keys() == vars(objective).keys()
    trainer = fit(model, datamodule, steps=2)
    assert (int(model.g_steps), int(model.d_steps)) == (2, 2)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    penalty = float(trainer.callback_metrics["train/penalty"])
    assert penalty > 0 if getattr(objective, "penalty_weight", 0) else penalty == 0
    clip = getattr(objective, "clip_value", None)
    if clip is not None:  # WGAN clips both critics after each D step
        assert all(p.abs().max() <= clip for d in critics for p in d.parameters())


def test_the_preset_settings_of_the_gan_family_are_not_read():
    """CycleGAN keeps the paper's Adam 2e-4, (0.5, 0.999), whatever the loss preset says."""
    model, _ = build("loss=wgan")  # the preset: lr 5e-5, n_critic 5
    for config in model.configure_optimizers():
        group = config["optimizer"].param_groups[0]
        assert group["lr"] == pytest.approx(2e-4) and group["betas"] == (0.5, 0.999)


class UpdateOrder(Callback):
    def __init__(self):
        self.steps: list[str] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        g_opt, _ = pl_module.optimizers()
        self.steps.append("G" if optimizer is g_opt.optimizer else "D")


def params(*nets: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for net in nets for p in net.parameters()]


def test_each_step_updates_the_generators_then_the_discriminators(monkeypatch):
    model, datamodule = build()
    order = UpdateOrder()
    g_step, d_step = model._generator_step, model._discriminator_step
    gens, discs = (
        (model.generator_ab, model.generator_ba),
        (model.discriminator_a, model.discriminator_b),
    )

    def checked_g_step(*args):
        before_g, before_d = params(*gens), params(*discs)
        out = g_step(*args)
        assert all(torch.equal(x, y) for x, y in zip(before_d, params(*discs), strict=True))
        assert not all(torch.equal(x, y) for x, y in zip(before_g, params(*gens), strict=True))
        return out

    def checked_d_step(*args):
        before_g, before_d = params(*gens), params(*discs)
        out = d_step(*args)
        assert all(torch.equal(x, y) for x, y in zip(before_g, params(*gens), strict=True))
        assert not all(torch.equal(x, y) for x, y in zip(before_d, params(*discs), strict=True))
        return out

    monkeypatch.setattr(model, "_generator_step", checked_g_step)
    monkeypatch.setattr(model, "_discriminator_step", checked_d_step)
    fit(model, datamodule, steps=3, callbacks=[order])
    assert order.steps == ["G", "D"] * 3


class EpochLR(Callback):
    def __init__(self):
        self.lrs: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx == 0:  # the LR each epoch trained at (the D optimizer's)
            self.lrs.append(pl_module.optimizers()[1].param_groups[0]["lr"])


def test_counters_and_the_lr_rule_over_epochs():
    model, datamodule = build("model.n_epochs=1", "model.n_epochs_decay=2")
    lrs = EpochLR()
    fit(model, datamodule, steps=2, max_epochs=3, callbacks=[lrs])
    assert lrs.lrs == pytest.approx([2e-4, 2e-4 * 2 / 3, 2e-4 / 3])
    assert (int(model.g_steps), int(model.d_steps), int(model.images_seen)) == (6, 6, 24)
    assert int(model.pools["A"].count) == int(model.pools["B"].count) == 24
    assert model.progress_steps == 6


def test_a_budget_longer_than_the_lr_schedule_is_refused_before_training():
    model, datamodule = build("model.n_epochs=1", "model.n_epochs_decay=1")
    with pytest.raises(ValueError, match=r"trainer\.max_epochs=3 is more than model\.n_epochs"):
        fit(model, datamodule, steps=1, max_epochs=3)
    assert int(model.g_steps) == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.n_epochs=-1", r"model\.n_epochs=-1 must be >= 0"),
        ("model.n_epochs_decay=-2", r"model\.n_epochs_decay=-2 must be >= 0"),
        ("model.lambda_cyc=-1.0", r"model\.lambda_cyc=-1\.0 must be >= 0"),
        ("model.pool_size=-1", r"model\.pool_size=-1 must be >= 0"),
    ],
)
def test_bad_settings_are_refused_with_their_key(override, message):
    with pytest.raises(Exception, match=message):
        build(override)


def test_the_adversarial_terms_alone_train_both_generators():
    model, datamodule = build("model.lambda_cyc=0")  # no cycle, no identity term
    before = params(model.generator_ab), params(model.generator_ba)
    fit(model, datamodule, steps=1)
    for old, net in zip(before, (model.generator_ab, model.generator_ba), strict=True):
        assert not all(torch.equal(x, y) for x, y in zip(old, params(net), strict=True))


def test_no_identity_term_when_its_weight_is_zero():
    model, datamodule = build("model.lambda_id=0")
    trainer = fit(model, datamodule, steps=1)
    assert float(trainer.callback_metrics["train/identity"]) == 0.0


def test_translation_and_the_picture_of_cycles():
    model, datamodule = build()
    a, b = datamodule.sample_batch("test", 3)
    out = model.translate(a, "AtoB")
    assert out.shape == a.shape and out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out, model.generator_ab(a).clamp(0, 1))
    torch.testing.assert_close(model.translate(b, "BtoA"), model.generator_ba(b).clamp(0, 1))
    with pytest.raises(ValueError, match="direction='A2B'"):
        model.translate(a, "A2B")
    grid = model.pictures((a, b))["translation"]
    assert grid.nrow == 3 and grid.images.shape == (18, 1, 32, 32)
    rows = grid.images.view(6, 3, 1, 32, 32)
    torch.testing.assert_close(rows[0], a)  # real A, G(A), F(G(A)), real B, F(B), G(F(B))
    torch.testing.assert_close(rows[2], model.translate(rows[1], "BtoA"))
    torch.testing.assert_close(rows[3], b)
    torch.testing.assert_close(rows[5], model.translate(rows[4], "AtoB"))


@pytest.mark.slow
def test_ddp_keeps_nets_and_pools_identical_across_ranks(tmp_path):
    """Two gloo processes, each with its own data: after 5 steps both copies of the model, pools
    included, agree exactly, and the pools hold the fakes of both processes (one pool over the
    global batch of 2 x 2: full with 16 after 4 steps, where each process's own fakes would
    make 10)."""
    script = Path(__file__).with_name("ddp_cyclegan_script.py")
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert states[0].keys() == states[1].keys()
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key
    assert int(states[0]["pools.A.count"]) == int(states[0]["pools.B.count"]) == 16
    counters = json.loads((tmp_path / "counters.json").read_text())
    assert counters == {"d_steps": 5, "g_steps": 5, "images_seen": 5 * 2 * 2, "pool_queries": 5}


def shapes_pair_run(tmp_path: Path, *overrides: str) -> dict:
    """Train on 400 filled / outlined shape pairs (8-channel nets, batch 1) and evaluate the
    translations with the pair's domain classifier (small, trained on the 800 training images
    and cached under tmp_path)."""
    common = [
        "experiment=cyclegan_shapes",
        "logger=none",
        "data.source.num_train=400",
        "data.source.num_test=100",
        "data.batch_size=1",
        "model.generator.base_channels=8",
        "model.generator.num_blocks=2",
        "model.discriminator.base_channels=8",
        "model.n_epochs=1",
        "model.n_epochs_decay=0",
        "trainer.max_epochs=1",
        "+eval.extractor.epochs=4",
        "+eval.extractor.width=16",
        "+eval.extractor.feature_dim=32",
        "eval.extractor.batch_size=32",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    record = train(compose_train_config([*common, *overrides], output_dir=tmp_path / "run"))
    assert record["status"] == "completed"
    assert record["eval/classifier_acc_real"] >= 0.95
    return record


def test_a_fast_run_on_the_shapes_pair_translates_above_chance(tmp_path):
    """150 steps (about 25 s on 2 busy cores, classifier included) at LR 1e-3 without the
    identity term: the classifier calls most translations of each direction the target domain
    (chance: 1/2; after 80 steps one direction still scores 0)."""
    record = shapes_pair_run(
        tmp_path, "+trainer.limit_train_batches=150", "model.optimizer.lr=1e-3", "model.lambda_id=0"
    )
    assert record["g_steps"] == 150
    assert record["eval/domain_acc_AtoB"] > 0.75 and record["eval/domain_acc_BtoA"] > 0.75


@pytest.mark.slow
def test_a_short_run_on_the_shapes_pair_translates_above_chance(tmp_path):
    """With the paper's settings (LR 2e-4, identity term): 400 steps (about 90 s on 2 busy
    cores), most translations of each direction reach the target domain."""
    record = shapes_pair_run(tmp_path)
    assert record["g_steps"] == 400
    assert record["eval/domain_acc_AtoB"] > 0.75 and record["eval/domain_acc_BtoA"] > 0.75
