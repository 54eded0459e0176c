"""The GAN machinery every adversarial model family shares (GAN, CycleGAN, conditional GAN,
InfoGAN, pix2pix, ...): small functions, no base class. A module owns its schedule and nets and
calls these for the parts that must be the same everywhere.

Updates: one shape for every D and G update
-------------------------------------------
``toggled_update(module, optimizer, grad_clip_val=None)`` is a context manager: inside it only
``optimizer``'s parameters require gradients (Lightning's ``toggled_optimizer``), and the
``step(loss)`` it yields does zero_grad -> manual_backward -> [clip the gradient norm] -> step,
exactly once per update (a second call, or none, raises)::

    with toggled_update(self, d_opt, self.grad_clip_val) as step:
        with torch.no_grad():
            fake = self.generator(z)                                   # (B, C, H, W)
        d_loss, penalty = self.objective.discriminator_loss(self.discriminator, real, fake)
        step(d_loss + penalty)
    self.objective.after_d_step(self.discriminator)                    # WGAN clip, BEGAN k_t

    with toggled_update(self, g_opt, self.grad_clip_val) as step:
        fake = self.generator(z)
        g_loss = self.objective.generator_loss(self.discriminator, fake, real)
        step(g_loss)

Objectives (``genlab.objectives.gan``) score a critic they are given as a callable, on outputs
of any shape ((B,) scores or (B, 1, H, W) PatchGAN maps, means over all elements):
``objective.discriminator_loss(critic, real, fake) -> (L_D, penalty)``,
``objective.generator_loss(critic, fake, real=None) -> L_G`` (``real`` is read by relativistic
objectives, ``objective.relativistic``), ``objective.after_d_step(discriminator)`` and
``objective.logs()``. A conditional critic is ``lambda x: D(x, y)``, a pix2pix one
``lambda b: D(torch.cat([a, b], 1))`` (penalties then differentiate with respect to the
scored image only); a two-domain model passes each domain's D. A new objective subclasses
``GANObjective``: e.g. RpGAN sets ``relativistic = True`` and reads ``real_out`` in
``g_loss``; R1 / R2 penalties build on ``genlab.objectives.gan.input_gradient(critic, x)``.

Per-critic objectives: an objective holds the state of one critic (BEGAN's k_t, the D that
WGAN clips), so a module with several discriminators gets one copy per critic:
``self.objectives = objective_per_critic(objective, ["A", "B"])`` (an ``nn.ModuleDict``, so
the state is checkpointed), then ``self.objectives["B"].discriminator_loss(self.d_b, ...)``.
With one D, use the configured instance itself. ``choose_critic(objective, discriminator,
autoencoder)`` picks the net factory the objective needs (BEGAN: the family's autoencoder).

Config: the ``loss`` group (``conf/loss/<name>.yaml``, package ``loss``) holds the objective
and its authors' defaults; a model config reads what it wants by interpolation::

    objective: ${loss.objective}          # the objective object (loss.objective.<hp>)
    n_critic: ${loss.n_critic}            # optional: the authors' training settings
    optimizer: {lr: ${loss.lr}, betas: ${loss.betas}}
    discriminator: {batch_norm: ${loss.d_batch_norm}}
    autoencoder: {_target_: <the family's autoencoder>, _partial_: true}  # if BEGAN is allowed

A family with its own published settings (CycleGAN: Adam 2e-4, (0.5, 0.999)) reads only
``${loss.objective}`` and picks its default objective in its experiment (``override /loss``).

The rest
--------
- ``draw_latent(prior, num, dim, device, generator=None)``: z (num, dim), ``normal`` or
  ``uniform`` (U(-1, 1)); ``slerp(z0, z1, t)`` for interpolation pictures.
- EMA: ``make_ema(net)`` (a frozen copy), ``ema_update(average, net, decay)`` after each G
  update (parameters averaged; batch-norm statistics are not copied from the live net), and
  ``recompute_batch_norm(average, inputs)`` before the average is used: its batch-norm
  statistics become the cumulative averages over ``inputs`` (tuples of the net's arguments,
  e.g. ``[(z1,), (z2,)]`` or ``[(z, y)]``) under the averaged weights, as torch's
  ``swa_utils.update_bn`` does. Draw those inputs from a fixed-seed generator so every process
  gets the same statistics and the global RNG (resume) is untouched; recompute lazily before
  sampling when the average moved, and at each epoch end on every process (as
  ``GAN.sampling_generator`` and ``GAN.on_train_epoch_end`` do).
- ``broadcast_buffers(module)``: rank 0's buffers (batch-norm statistics) to every process,
  after the last update of a training step under DDP.
- ``apply_spectral_norm(net)``: spectral normalisation of every conv / linear weight.
- ``optimizer_config(factory, params, overrides, scheduler)`` and
  ``step_epoch_schedulers(module, epochs_done)`` (in ``on_train_epoch_end`` and
  ``on_train_batch_start``): optimizers from the optim group's partial, per-network keyword
  overrides, per-epoch LR schedules that survive any resume point.
- ``COUNTERS`` (``d_steps``, ``g_steps``, ``images_seen``) with ``register_counters`` and
  ``log_counters(module, batch_size)``: work counted in updates and real images, checkpointed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from lightning import LightningModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from genlab.modules.counters import counter_values
from genlab.objectives.gan import GANObjective

COUNTERS = ("d_steps", "g_steps", "images_seen")
LATENT_PRIORS = ("normal", "uniform")


# ---- updates -----------------------------------------------------------------------------------
@contextmanager
def toggled_update(
    module: LightningModule, optimizer: Any, grad_clip_val: float | None = None
) -> Iterator[Callable[[Tensor], None]]:
    """Within the block only ``optimizer``'s parameters need gradients; the yielded
    ``step(loss)`` makes the update: zero_grad -> manual_backward -> [clip_gradients to norm
    ``grad_clip_val``] -> optimizer.step(). It must be called exactly once."""
    calls = 0

    def step(loss: Tensor) -> None:
        nonlocal calls
        if calls:
            raise RuntimeError("toggled_update: step(loss) is called once per update")
        calls += 1
        optimizer.zero_grad()
        module.manual_backward(loss)
        if grad_clip_val is not None:
            module.clip_gradients(optimizer, grad_clip_val, gradient_clip_algorithm="norm")
        optimizer.step()

    with module.toggled_optimizer(optimizer):
        yield step
    if calls != 1:
        raise RuntimeError("toggled_update: the block ended without step(loss)")


def objective_per_critic(objective: GANObjective, names: Sequence[str]) -> nn.ModuleDict:
    """One independent copy of ``objective`` per critic name (each keeps its own state)."""
    return nn.ModuleDict({name: copy.deepcopy(objective) for name in names})


def choose_critic(
    objective: GANObjective,
    discriminator: Callable[..., nn.Module],
    autoencoder: Callable[..., nn.Module] | None,
) -> Callable[..., nn.Module]:
    """The critic factory ``objective`` needs: the autoencoder for BEGAN-type objectives, else
    the discriminator."""
    if not objective.needs_autoencoder:
        return discriminator
    if autoencoder is None:
        raise ValueError(
            f"{type(objective).__name__} needs an autoencoder critic, but model.autoencoder is "
            "null: set model.autoencoder to the network family's autoencoder "
            "(e.g. genlab.nets.lucic.LucicAutoencoder) or choose another loss="
        )
    return autoencoder


# ---- latents -----------------------------------------------------------------------------------
def draw_latent(prior: str, num: int, dim: int, device: Any, generator: Any = None) -> Tensor:
    """z (num, dim) from N(0, I) (``normal``) or U(-1, 1) (``uniform``)."""
    if prior == "normal":
        return torch.randn(num, dim, device=device, generator=generator)
    return torch.rand(num, dim, device=device, generator=generator) * 2 - 1


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between z0, z1 (D,) at fractions t (S,) -> (S, D); linear where
    the two are (anti)parallel."""
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1, 1))
    if torch.sin(omega).abs() < 1e-6:
        return torch.lerp(z0, z1, t[:, None])
    w0 = torch.sin((1 - t) * omega) / torch.sin(omega)  # (S,)
    w1 = torch.sin(t * omega) / torch.sin(omega)  # (S,)
    return w0[:, None] * z0 + w1[:, None] * z1


# ---- EMA ---------------------------------------------------------------------------------------
def make_ema(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` to average into."""
    return copy.deepcopy(net).requires_grad_(False)


def _batch_norm_buffers(net: nn.Module) -> set[int]:
    return {
        id(buffer)
        for layer in net.modules()
        if isinstance(layer, _BatchNorm)
        for buffer in layer.buffers(recurse=False)
    }


@torch.no_grad()
def ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * model for parameters; other buffers (e.g.
    spectral-norm vectors) are copied, except batch-norm statistics, which belong to the
    averaged weights (``recompute_batch_norm``)."""
    for avg, new in zip(average.parameters(), model.parameters(), strict=True):
        avg.lerp_(new, 1 - decay)
    skip = _batch_norm_buffers(average)
    for avg, new in zip(average.buffers(), model.buffers(), strict=True):
        if id(avg) not in skip:
            avg.copy_(new)


@torch.no_grad()
def recompute_batch_norm(net: nn.Module, inputs: Iterable[tuple[Tensor, ...]]) -> None:
    """Every batch-norm layer's running mean / var become the cumulative averages of its batch
    statistics over ``net(*args)`` for ``args`` in ``inputs`` (train-mode forwards, as torch's
    ``swa_utils.update_bn``); momentum and train / eval mode are restored."""
    layers = [layer for layer in net.modules() if isinstance(layer, _BatchNorm)]
    if not layers:
        return
    momenta = [layer.momentum for layer in layers]
    was_training = net.training
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average
    net.train()
    for args in inputs:
        net(*args)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    net.train(was_training)


# ---- distributed, spectral norm ----------------------------------------------------------------
@torch.no_grad()
def broadcast_buffers(module: nn.Module) -> None:
    """Give every process rank 0's buffers (batch-norm statistics), as DDP does before each
    forward; after the last update of a step each rank has moved them with its own batch."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv and linear weight."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            add_spectral_norm(layer)
    return module


# ---- optimizers, schedules, counters -----------------------------------------------------------
def optimizer_config(
    factory: Callable[..., torch.optim.Optimizer],
    params: Iterable[nn.Parameter],
    overrides: dict[str, Any] | None = None,
    scheduler: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """``{"optimizer": factory(params, **overrides)}`` plus its ``lr_scheduler`` if given: one
    entry of ``configure_optimizers``' list."""
    optimizer = factory(params=params, **(overrides or {}))
    config: dict[str, Any] = {"optimizer": optimizer}
    if scheduler is not None:
        config["lr_scheduler"] = scheduler(optimizer=optimizer)
    return config


def step_epoch_schedulers(module: LightningModule, epochs_done: int) -> None:
    """Step every LR scheduler of ``module`` (per-epoch schedules, manual optimization) until it
    has been stepped once per finished epoch (``last_epoch == epochs_done``). Call it in
    ``on_train_epoch_end`` with ``current_epoch + 1``, and in ``on_train_batch_start`` with
    ``current_epoch``: a run resumed from a checkpoint taken in an epoch's last step, before
    that epoch's end stepped it, then still trains the next epoch at its LR."""
    schedulers = module.lr_schedulers()
    if schedulers is not None:
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            while scheduler.last_epoch < epochs_done:
                scheduler.step()


def log_counters(module: LightningModule, batch_size: int) -> None:
    """Log ``counters/<name>`` for the module's counters (``register_counters``)."""
    values = counter_values(module, *module.counter_names)
    module.log_dict({f"counters/{k}": float(v) for k, v in values.items()}, batch_size=batch_size)
