"""The GAN module: the D/G schedule, counters, budgets, EMA, every objective end to end, and
every objective x GAN network x GAN experiment building and training."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from genlab.modules.adversarial import draw_latent, slerp
from genlab.modules.gan import GAN
from genlab.validation import validate_config
from tests.helpers import compose_train_config, group_options

SMALL_DATA = ["data.source.num_train=1200", "data.source.num_test=100", "data.batch_size=8"]
# narrow DCGAN nets keep the tests fast (BEGAN's critic: the DCGAN autoencoder)
SMALL_NETS = [
    "model=dcgan",
    "model.latent_dim=16",
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
    "model.autoencoder.base_channels=8",
]


def small_nets(loss: str = "ns") -> list[str]:
    return [*SMALL_NETS, f"loss={loss}"]


def build(
    *overrides: str, nets: tuple[str, ...] = tuple(SMALL_NETS)
) -> tuple[GAN, L.LightningDataModule]:
    cfg = compose_train_config(["experiment=gan_shapes_quick", *SMALL_DATA, *nets, *overrides])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return instantiate(cfg.model), datamodule


def fit(model: GAN, data, steps: int, callbacks=(), max_epochs: int = 1) -> L.Trainer:
    """Train on a data module or a data loader."""
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
    if isinstance(data, DataLoader):
        trainer.fit(model, train_dataloaders=data)
    else:
        trainer.fit(model, datamodule=data)
    return trainer


def params(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_n_critic_5_gives_10_generator_steps_in_50_and_each_update_moves_one_net(monkeypatch):
    model, datamodule = build("model.n_critic=5")
    seen = {"d": 0, "g": 0}
    d_step, g_step = model._discriminator_step, model._generator_step

    def checked_d_step(real, opt):
        g_before, d_before = params(model.generator), params(model.discriminator)
        out = d_step(real, opt)
        assert same(g_before, params(model.generator)), "a D update changed G"
        assert not same(d_before, params(model.discriminator))
        seen["d"] += 1
        return out

    def checked_g_step(real, opt):
        assert (int(model.d_steps) - 1) % 5 == 0  # G steps right after D steps 1, 6, 11, ...
        g_before, d_before = params(model.generator), params(model.discriminator)
        out = g_step(real, opt)
        assert same(d_before, params(model.discriminator)), "a G update changed D"
        assert not same(g_before, params(model.generator))
        seen["g"] += 1
        return out

    monkeypatch.setattr(model, "_discriminator_step", checked_d_step)
    monkeypatch.setattr(model, "_generator_step", checked_g_step)
    fit(model, datamodule, steps=50)
    assert seen == {"d": 50, "g": 10}
    assert (int(model.d_steps), int(model.g_steps), int(model.images_seen)) == (50, 10, 400)


class LossRecorder(Callback):
    def __init__(self):
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        metrics = trainer.callback_metrics
        self.values += [float(metrics[k]) for k in ("train/d_loss", "train/g_loss") if k in metrics]


@pytest.mark.parametrize("loss", group_options("loss"))
def test_every_objective_trains_100_steps_without_a_nan(loss):
    model, datamodule = build("model.optimizer.lr=2e-4", nets=tuple(small_nets(loss)))
    recorder = LossRecorder()
    fit(model, datamodule, steps=100, callbacks=[recorder])
    assert int(model.d_steps) == 100 and int(model.g_steps) == 100 // model.n_critic
    assert len(recorder.values) >= 100 and all(torch.isfinite(torch.tensor(recorder.values)))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    images = model.sample(4)
    assert images.shape == (4, 1, 32, 32) and images.min() >= 0 and images.max() <= 1


def test_wgan_keeps_the_critic_clipped_through_training():
    model, datamodule = build("loss=wgan")
    fit(model, datamodule, steps=6)
    assert max(p.abs().max().item() for p in model.discriminator.parameters()) <= 0.01


def test_max_g_steps_stops_training():
    model, datamodule = build("model.max_g_steps=4", "model.n_critic=2")
    fit(model, datamodule, steps=100)
    assert int(model.g_steps) == 4 and int(model.d_steps) == 7


def test_the_ema_generator_trails_the_generator_and_makes_the_samples(monkeypatch):
    model, datamodule = build("model.ema_decay=0.5")
    history = [params(model.generator)]
    g_step = model._generator_step

    def recorded_g_step(real, opt):
        out = g_step(real, opt)
        history.append(params(model.generator))
        return out

    monkeypatch.setattr(model, "_generator_step", recorded_g_step)
    fit(model, datamodule, steps=3)
    weights = [0.125, 0.125, 0.25, 0.5]  # start, then G after updates 1, 2, 3 at decay 0.5
    for i, ema in enumerate(params(model.ema_generator)):
        expected = sum(w * h[i] for w, h in zip(weights, history, strict=True))
        torch.testing.assert_close(ema, expected)
        assert not torch.equal(ema, history[-1][i])
    assert not any(p.requires_grad for p in model.ema_generator.parameters())
    z = model.latent(5)
    samples = model.sample(5, z=z)
    model.ema_generator.eval()
    torch.testing.assert_close(samples, model.ema_generator(z).clamp(0, 1))


def batch_norm_input_statistics(net: nn.Module, z: torch.Tensor) -> list[tuple]:
    """(mean, unbiased var) per channel of every batch-norm layer's input when ``net`` (a copy,
    in train mode) runs on ``z``."""
    net = copy.deepcopy(net).train()
    stats = []

    def record(layer, inputs, output):
        x = inputs[0].transpose(0, 1).flatten(1)  # (C, B * H * W)
        stats.append((x.mean(1), x.var(1)))

    for layer in net.modules():
        if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            layer.register_forward_hook(record)
    with torch.no_grad():
        net(z)
    return stats


def test_ema_batch_norm_statistics_are_those_of_the_averaged_weights():
    """After training, the EMA generator samples with batch-norm statistics of its own weights
    (measured on a fresh batch of 4096 latents), not the live generator's running averages."""
    model, datamodule = build("model.ema_decay=0.9", "model.optimizer.lr=2e-3")
    fit(model, datamodule, steps=12)
    model.sample(2)  # the EMA generator's statistics are set before it samples
    torch.manual_seed(7)
    expected = batch_norm_input_statistics(model.ema_generator, model.latent(4096))
    layers = [m for m in model.ema_generator.modules() if isinstance(m, nn.BatchNorm2d)]
    live = [m for m in model.generator.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(layers) == len(expected) == 3
    for layer, live_layer, (mean, var) in zip(layers, live, expected, strict=True):
        scale = var.mean().sqrt()
        torch.testing.assert_close(layer.running_mean, mean, atol=0.05 * scale, rtol=0)
        torch.testing.assert_close(layer.running_var, var, atol=0, rtol=0.1)
        stale = (live_layer.running_var - var).abs().max() / var.abs().max()
        assert stale > 0.2  # the live generator's statistics would be far off


def test_spectral_norm_bounds_every_discriminator_layer():
    model, datamodule = build("model.spectral_norm=true")
    fit(model, datamodule, steps=20)
    for layer in model.discriminator.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            sigma = torch.linalg.matrix_norm(layer.weight.flatten(1), ord=2)
            assert sigma.item() == pytest.approx(1.0, abs=0.1)


def test_gradient_clipping_runs_and_rmsprop_is_an_option():
    # the loss presets set Adam's betas, which RMSprop does not take
    model, datamodule = build(
        "model.grad_clip_val=0.1", "optim=rmsprop", "loss=wgan", "~model.optimizer.betas"
    )
    trainer = fit(model, datamodule, steps=5)
    assert all(isinstance(o, torch.optim.RMSprop) for o in trainer.optimizers)


def test_latent_priors():
    uniform = draw_latent("uniform", 10_000, 2, "cpu")
    normal = draw_latent("normal", 10_000, 2, "cpu")
    assert (
        uniform.min() >= -1
        and uniform.max() <= 1
        and uniform.std().item() == pytest.approx((4 / 12) ** 0.5, rel=0.05)
    )
    assert normal.std().item() == pytest.approx(1.0, rel=0.05) and normal.abs().max() > 1.5


def test_slerp_keeps_the_norm_between_equal_norm_endpoints():
    z0, z1 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    path = slerp(z0, z1, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(slerp(z0, 2 * z0, torch.tensor([0.5])), 1.5 * z0[None])


def test_pictures_are_fixed_noise_samples_and_interpolation_rows():
    model, _ = build("model.interpolation_pairs=2", "model.interpolation_steps=6", nets=())
    grids = model.pictures((torch.zeros(1, 1, 32, 32), torch.zeros(1)))
    assert grids["samples"].images.shape == (64, 1, 32, 32)
    assert grids["interpolation"].images.shape == (2 * 2 * 6, 1, 32, 32)
    assert grids["interpolation"].nrow == 6
    again = model.pictures((torch.zeros(1, 1, 32, 32), torch.zeros(1)))
    torch.testing.assert_close(grids["samples"].images, again["samples"].images)


def test_bad_module_settings_are_refused():
    for override, match in [
        ("model.n_critic=0", "n_critic"),
        ("model.latent_prior=cauchy", "latent_prior"),
        ("model.ema_decay=1.0", "ema_decay"),
    ]:
        with pytest.raises((ValueError, InstantiationException), match=match):
            build(override)


@pytest.mark.parametrize("loss", ["ns", "wgan_gp", "began"])
def test_ddp_keeps_every_parameter_and_buffer_identical_across_ranks(loss, tmp_path):
    """Two gloo processes, different data and noise per rank: after several alternating
    updates the two copies of the model (EMA generator and its statistics included) agree
    exactly."""
    script = Path(__file__).with_name("ddp_gan_script.py")
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), *small_nets(loss), "model.ema_decay=0.5"],
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
    counters = json.loads((tmp_path / "counters.json").read_text())
    g_steps = {"ns": 6, "wgan_gp": 2, "began": 2}[loss]  # n_critic 5: G after D steps 1 and 6
    assert counters == {"d_steps": 6, "g_steps": g_steps, "images_seen": 6 * 2 * 8}


GAN_EXPERIMENTS = [e for e in group_options("experiment") if e.startswith(("gan_", "lucic_"))]
GAN_NETWORKS = ("gan", "dcgan")  # the Lucic and the DCGAN networks


@pytest.mark.parametrize("experiment", GAN_EXPERIMENTS)
@pytest.mark.parametrize("network", GAN_NETWORKS)
@pytest.mark.parametrize("loss", group_options("loss"))
def test_every_objective_trains_on_every_gan_network_in_every_gan_experiment(
    experiment, network, loss
):
    """The composed config validates, the model builds for the experiment's image shape and
    makes 2 D and 1 or 2 G updates (random images of that shape stand in for the data)."""
    cfg = compose_train_config([f"experiment={experiment}", f"model={network}", f"loss={loss}"])
    validate_config(cfg)
    model = instantiate(cfg.model)
    shape = (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    assert model.image_shape == shape
    assert model.n_critic == cfg.loss.n_critic and type(model.objective).__name__ in (
        cfg.loss.objective._target_
    )
    images = torch.rand(8, *shape, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(images, torch.zeros(8)), batch_size=4)
    fit(model, loader, steps=2)
    assert (int(model.d_steps), int(model.g_steps)) == (2, 1 if model.n_critic > 1 else 2)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    model.eval()
    assert model.discriminator(torch.rand(2, *shape)).shape == (2,)
    assert model.sample(2).shape == (2, *shape)


def test_began_needs_the_network_familys_autoencoder():
    with pytest.raises((ValueError, InstantiationException), match=r"model\.autoencoder is null"):
        build("loss=began", "model.autoencoder=null")


def test_lr_schedules_step_once_per_epoch_for_each_network():
    schedule = "{_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:1,gamma:0.5}"
    model, datamodule = build(f"model.g_scheduler={schedule}", "+model.d_optimizer.lr=1e-3")
    trainer = fit(model, datamodule, steps=2, max_epochs=3)
    d_opt, g_opt = trainer.optimizers
    assert d_opt.param_groups[0]["lr"] == pytest.approx(1e-3)  # no D schedule, own lr
    assert g_opt.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5**3)
