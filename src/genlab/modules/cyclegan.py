"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B.

Two generators, G: A -> B (``generator_ab``) and F: B -> A (``generator_ba``), and two
discriminators, D_A (``discriminator_a``: real A vs F(b)) and D_B (``discriminator_b``: real B
vs G(a)), trained on (a, b) batches drawn independently from the two domains
(``genlab.data.unpaired``). The loss (FORMULAS.md, ``genlab.objectives.cycle``):

    L_G = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda_cyc (|F(G(a)) - a| + |G(F(b)) - b|)
          + lambda_cyc lambda_id (|G(b) - b| + |F(a) - a|)
    L_D_A = (L_D(D_A; a, pool_A(F(b))) + penalty) / 2, L_D_B likewise on b, pool_B(G(a)).

The adversarial terms come from the configured objective (``loss=<name>``, least squares by
default, the paper's), one copy per discriminator (``objective_per_critic``), each with its own
state (WGAN clipping, BEGAN's k_t); each critic is one domain's D, scored on PatchGAN maps.
Every training step updates both generators (one optimizer), then both discriminators (one
optimizer) on fakes from the image pools, each update with the shared
``genlab.modules.adversarial.toggled_update`` (toggled optimizer -> zero_grad ->
manual_backward -> [clip] -> step). Adam with the paper's settings; the LR is constant for
``n_epochs`` epochs, then decays linearly over ``n_epochs_decay`` (the reference's rule,
``genlab.modules.schedules.LinearDecay``, a per-epoch scheduler of each optimizer, stepped by
``step_epoch_schedulers`` at each epoch's end and caught up before every step).

Counters: ``g_steps`` = ``d_steps`` = training steps, ``images_seen`` = images of each domain
consumed (all processes; one pair per image, as the reference counts iterations).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from genlab.data.arrays import derive_seed
from genlab.metrics.translation import check_direction
from genlab.modules.adversarial import (
    COUNTERS,
    broadcast_buffers,
    choose_critic,
    log_counters,
    objective_per_critic,
    optimizer_config,
    step_epoch_schedulers,
    toggled_update,
)
from genlab.modules.counters import register_counters
from genlab.modules.image_pool import ImagePool
from genlab.modules.schedules import LinearDecay
from genlab.objectives.cycle import CycleTerms, l1_reconstruction
from genlab.objectives.gan import GANObjective, LeastSquares
from genlab.utils.images import Grid

DOMAINS = ("A", "B")


class CycleGAN(LightningModule):
    """G, F, D_A, D_B trained with the CycleGAN loss (see the module docstring).

    ``generator`` / ``discriminator``: partials taking ``image_shape`` (both domains have the
    data's shape). ``objective``: the adversarial objective (``${loss.objective}``; None: least
    squares). Objectives that need an autoencoder critic (BEGAN) need ``autoencoder``, a net
    factory for the domains (none by default: the config check refuses them before training).
    ``optimizer``: a partial (Adam 2e-4, (0.5, 0.999) in the config), called for the
    generators' and for the discriminators' parameters, with the keyword overrides
    ``g_optimizer`` / ``d_optimizer`` (e.g. ``{"lr": 4e-4}``).

    Logged: ``train/g_loss`` (total), ``train/g_adv`` (both adversarial terms), ``train/cycle``
    and ``train/identity`` (unweighted sums over the domains), ``train/d_loss`` (both halved D
    losses with penalties), ``train/penalty``, ``train/lr``, the objectives' extra scalars per
    domain (``train/<name>_A``, ``train/<name>_B``), and ``counters/*``.
    """

    batch_layout = "unpaired"  # training batches are (a, b) pairs of domain images

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        optimizer: Callable[..., torch.optim.Optimizer],
        image_shape: Sequence[int],
        objective: GANObjective | None = None,
        lambda_cyc: float = 10.0,
        lambda_id: float = 0.5,
        pool_size: int = 50,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        autoencoder: Callable[..., nn.Module] | None = None,
        grad_clip_val: float | None = None,
        g_optimizer: dict[str, Any] | None = None,
        d_optimizer: dict[str, Any] | None = None,
    ):
        super().__init__()
        for key, value in (("lambda_cyc", lambda_cyc), ("lambda_id", lambda_id)):
            if not value >= 0:
                raise ValueError(f"model.{key}={value} must be >= 0")
        for key, value in (("n_epochs", n_epochs), ("n_epochs_decay", n_epochs_decay)):
            if value < 0:
                raise ValueError(f"model.{key}={value} must be >= 0")
        objective = LeastSquares() if objective is None else objective
        critic = choose_critic(objective, discriminator, autoencoder)
        self.automatic_optimization = False
        self.image_shape = tuple(int(v) for v in image_shape)
        self.lambda_cyc = lambda_cyc
        self.lambda_id = lambda_id
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay
        self.grad_clip_val = grad_clip_val
        self.generator_ab = generator(image_shape=self.image_shape)  # G: A -> B
        self.generator_ba = generator(image_shape=self.image_shape)  # F: B -> A
        self.discriminator_a = critic(image_shape=self.image_shape)  # D_A: is it an A image?
        self.discriminator_b = critic(image_shape=self.image_shape)  # D_B: is it a B image?
        self.objectives = objective_per_critic(objective, DOMAINS)  # each keeps its own state
        # the pools' draws follow the run's seed (genlab-train seeds before building the model)
        seed = torch.initial_seed()
        self.pools = nn.ModuleDict(
            {
                d: ImagePool(pool_size, self.image_shape, derive_seed(seed, f"pool/{d}"))
                for d in DOMAINS
            }
        )
        self.optimizer_factory = optimizer
        self.optimizer_overrides = (dict(g_optimizer or {}), dict(d_optimizer or {}))
        register_counters(self, *COUNTERS)

    # ---- the model ---------------------------------------------------------------------------
    @property
    def progress_steps(self) -> int:
        """Training steps so far (one G and one D update each)."""
        return int(self.g_steps)

    def _generator(self, direction: str) -> nn.Module:
        source, _ = check_direction(direction)
        return self.generator_ab if source == "A" else self.generator_ba

    def _discriminator(self, domain: str) -> nn.Module:
        return self.discriminator_a if domain == "A" else self.discriminator_b

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str) -> Tensor:
        """G(images) for ``AtoB``, F(images) for ``BtoA``, in eval mode: (N, C, H, W) in [0, 1]."""
        net = self._generator(direction)
        was_training = net.training
        net.eval()
        out = net(images).clamp(0, 1)
        net.train(was_training)
        return out

    # ---- training ----------------------------------------------------------------------------
    def _cycle_terms(self, reals: dict[str, Tensor], fakes: dict[str, Tensor]) -> CycleTerms:
        """The reconstruction terms for reals and their translations (fakes["B"] = G(a))."""
        zero = reals["A"].new_zeros(())
        identity = self.lambda_id > 0
        return CycleTerms(
            cycle_a=l1_reconstruction(reals["A"], self.generator_ba(fakes["B"])),
            cycle_b=l1_reconstruction(reals["B"], self.generator_ab(fakes["A"])),
            identity_a=l1_reconstruction(reals["A"], self.generator_ba(reals["A"]))
            if identity
            else zero,
            identity_b=l1_reconstruction(reals["B"], self.generator_ab(reals["B"]))
            if identity
            else zero,
        )

    def _generator_step(
        self, reals: dict[str, Tensor], g_opt: Any
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Update G and F; returns the detached fakes {"A": F(b), "B": G(a)} and the logs."""
        with toggled_update(self, g_opt, self.grad_clip_val) as step:
            fakes = {"B": self.generator_ab(reals["A"]), "A": self.generator_ba(reals["B"])}
            terms = self._cycle_terms(reals, fakes)
            adversarial = sum(
                self.objectives[d].generator_loss(self._discriminator(d), fakes[d], reals[d])
                for d in DOMAINS
            )
            g_loss = adversarial + terms.weighted(self.lambda_cyc, self.lambda_id)
            step(g_loss)
        logs = {
            "train/g_loss": g_loss.detach(),
            "train/g_adv": adversarial.detach(),
            "train/cycle": (terms.cycle_a + terms.cycle_b).detach(),
            "train/identity": (terms.identity_a + terms.identity_b).detach(),
        }
        return {d: fake.detach() for d, fake in fakes.items()}, logs

    def _discriminator_step(
        self, reals: dict[str, Tensor], fakes: dict[str, Tensor], d_opt: Any
    ) -> dict[str, Tensor]:
        """Update D_A and D_B on pooled fakes; each D loss (with its penalty) is halved."""
        pooled = {d: self.pools[d].query(fakes[d]) for d in DOMAINS}  # (B, C, H, W) each
        with toggled_update(self, d_opt, self.grad_clip_val) as step:
            losses = {
                d: self.objectives[d].discriminator_loss(
                    self._discriminator(d), reals[d], pooled[d]
                )
                for d in DOMAINS
            }  # (L_D, penalty) per domain
            d_loss = sum(0.5 * (loss + penalty) for loss, penalty in losses.values())
            step(d_loss)
        for d in DOMAINS:
            self.objectives[d].after_d_step(self._discriminator(d))
        return {
            "train/d_loss": d_loss.detach(),
            "train/penalty": sum(penalty for _, penalty in losses.values()).detach(),
        }

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real_a, real_b = batch  # (B, C, H, W) each, drawn independently
        reals = {"A": real_a, "B": real_b}
        g_opt, d_opt = self.optimizers()
        fakes, logs = self._generator_step(reals, g_opt)
        logs.update(self._discriminator_step(reals, fakes, d_opt))
        self.g_steps += 1
        self.d_steps += 1
        self.images_seen += real_a.shape[0] * self.trainer.world_size
        broadcast_buffers(self)
        for d in DOMAINS:
            logs.update({f"train/{k}_{d}": v for k, v in self.objectives[d].logs().items()})
        logs["train/lr"] = torch.tensor(g_opt.param_groups[0]["lr"])
        self.log_dict(logs, prog_bar=True, batch_size=real_a.shape[0])
        log_counters(self, batch_size=real_a.shape[0])

    def on_fit_start(self) -> None:
        """Refuse a budget longer than the LR schedule (its extra epochs would train at LR 0)."""
        max_epochs = self.trainer.max_epochs
        total = self.n_epochs + self.n_epochs_decay
        if max_epochs is not None and max_epochs > total:
            raise ValueError(
                f"trainer.max_epochs={max_epochs} is more than model.n_epochs + "
                f"model.n_epochs_decay = {total}: the learning rate is 0 after epoch {total}; "
                f"set trainer.max_epochs={total} or lengthen the schedule"
            )

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Every step trains at its epoch's LR, also after a resume from a checkpoint taken in
        an epoch's last step (before the epoch-end scheduler step)."""
        step_epoch_schedulers(self, self.current_epoch)

    def on_train_epoch_end(self) -> None:
        step_epoch_schedulers(self, self.current_epoch + 1)

    def configure_optimizers(self) -> Any:
        """Two optimizers, each with the linear-decay schedule: the generators' (G and F), then
        the discriminators' (D_A and D_B)."""
        schedule = functools.partial(
            LambdaLR, lr_lambda=LinearDecay(self.n_epochs, self.n_epochs_decay)
        )
        nets = (
            (self.generator_ab, self.generator_ba),
            (self.discriminator_a, self.discriminator_b),
        )
        return [
            optimizer_config(
                self.optimizer_factory,
                itertools.chain.from_iterable(net.parameters() for net in pair),
                overrides,
                schedule,
            )
            for pair, overrides in zip(nets, self.optimizer_overrides, strict=True)
        ]

    # ---- pictures ----------------------------------------------------------------------------
    @torch.no_grad()
    def pictures(self, batch: tuple[Tensor, Tensor]) -> dict[str, Grid]:
        """``translation``: for fixed test images, rows of real A, G(A), F(G(A)), then real B,
        F(B), G(F(B)) (one column per image)."""
        n = min(len(x) for x in batch)
        real_a, real_b = (x[:n].to(self.device) for x in batch)  # (N, C, H, W) each
        fake_b = self.translate(real_a, "AtoB")
        fake_a = self.translate(real_b, "BtoA")
        rows = [
            real_a,
            fake_b,
            self.translate(fake_b, "BtoA"),
            real_b,
            fake_a,
            self.translate(fake_a, "AtoB"),
        ]
        return {"translation": Grid(torch.cat(rows), len(real_a))}
