"""The VAE family in one LightningModule: VAE, beta-VAE (plain or capacity-annealed) and CVAE.

Which member it is follows from what is passed in: ``kl_weighting`` (BetaKL / CapacityKL) and
``conditional`` (True makes encoder and decoder see the label, one of ``num_classes``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn

from genlab.modules.counters import counter_values, register_counters
from genlab.objectives.elbo import (
    gaussian_kl,
    gaussian_log_prob,
    iwae_bound,
    reparameterize,
    standard_normal_log_prob,
)
from genlab.utils.images import Grid
from genlab.utils.precision import full_precision
from genlab.validation import ConfigError

COUNTERS = ("train_steps", "images_seen")
SAMPLE_MODES = ("auto", "mean", "draw")


class VAE(LightningModule):
    """Gaussian-posterior VAE trained on the (weighted) ELBO.

    Logged, all in nats per image: ``{train,val,test}/neg_elbo`` (-ELBO), ``/kl``, ``/rec_nll``
    (-E log p(x|z)), and at test time ``test/iwae_nll`` (-IWAE bound with ``iwae_samples``);
    val and test values in float32 whatever the training precision.

    ``sample_mode`` says what a sample is: ``draw`` x ~ p(x | z) (binary images for the
    Bernoulli likelihood), ``mean`` E[x | z] (gray images), ``auto`` a draw for likelihoods of
    binary data (so that samples compare like with like with the binarized data) and the mean
    otherwise (Gaussian, continuous Bernoulli: their draws add pixel noise to the image).
    """

    def __init__(
        self,
        encoder: Callable[..., nn.Module],
        decoder: Callable[..., nn.Module],
        likelihood: Any,
        kl_weighting: Any,
        optimizer: Callable[..., torch.optim.Optimizer],
        image_shape: Sequence[int],
        latent_dim: int = 32,
        conditional: bool = False,
        num_classes: int = 0,
        iwae_samples: int = 1000,
        iwae_chunk: int = 100,
        num_picture_samples: int = 64,
        traversal_rows: int = 0,
        scheduler: Callable[..., Any] | None = None,
        sample_mode: str = "auto",
    ):
        super().__init__()
        if sample_mode not in SAMPLE_MODES:
            raise ValueError(
                f"model.sample_mode={sample_mode!r} is invalid: must be one of "
                f"{', '.join(SAMPLE_MODES)}"
            )
        if latent_dim < 1:
            raise ValueError(f"model.latent_dim={latent_dim} must be >= 1")
        if iwae_samples < 1 or iwae_chunk < 1:
            raise ValueError(
                f"model.iwae_samples={iwae_samples} and model.iwae_chunk={iwae_chunk} must be >= 1"
            )
        if conditional and num_classes < 2:
            raise ValueError(
                f"a conditional VAE needs labelled data, but data.num_classes={num_classes}: "
                "choose a labelled data set (shapes, mnist, fashion_mnist, cifar10) or model=vae"
            )
        num_classes = num_classes if conditional else 0
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.encoder = encoder(
            image_shape=self.image_shape, latent_dim=latent_dim, num_classes=num_classes
        )
        self.decoder = decoder(
            image_shape=self.image_shape,
            latent_dim=latent_dim,
            num_classes=num_classes,
            params_per_pixel=likelihood.num_params,
        )
        self.likelihood = likelihood
        self.kl_weighting = kl_weighting
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.iwae_samples = iwae_samples
        self.iwae_chunk = iwae_chunk
        self.traversal_rows = traversal_rows
        if sample_mode == "auto":
            binary = getattr(likelihood, "requires_binary_data", False)
            sample_mode = "draw" if binary else "mean"
        self.sample_mode = sample_mode  # "mean" or "draw"
        register_counters(self, *COUNTERS)
        noise = torch.Generator().manual_seed(0)
        self.register_buffer(
            "fixed_z", torch.randn(num_picture_samples, latent_dim, generator=noise)
        )

    # ---- the model ---------------------------------------------------------------------------
    def labels(self, y: Tensor) -> Tensor | None:
        """The labels the nets see: y for a conditional model, None otherwise."""
        return y if self.num_classes > 0 else None

    def elbo_terms(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Single-sample ELBO pieces per image: rec_nll, kl (B,) and the reconstruction params."""
        mu, logvar = self.encoder(x, self.labels(y))  # (B, D) each
        z = reparameterize(mu, logvar)  # (B, D)
        params = self.decoder(z, self.labels(y))  # (B, P * C, H, W)
        rec_nll = -self.likelihood.log_prob(params, x)  # (B,)
        return {"rec_nll": rec_nll, "kl": gaussian_kl(mu, logvar), "params": params}

    @torch.no_grad()
    def iwae_log_likelihood(self, x: Tensor, y: Tensor, num_samples: int) -> Tensor:
        """IWAE lower bound on log p(x) (B,), drawing ``num_samples`` z per image in chunks."""
        labels = self.labels(y)
        mu, logvar = self.encoder(x, labels)  # (B, D)
        log_weights = []
        for start in range(0, num_samples, self.iwae_chunk):
            k = min(self.iwae_chunk, num_samples - start)
            z = reparameterize(mu, logvar, num_samples=k)  # (K, B, D)
            flat_y = None if labels is None else labels.repeat(k)  # (K * B,)
            params = self.decoder(z.flatten(0, 1), flat_y)  # (K * B, P * C, H, W)
            log_px_z = self.likelihood.log_prob(params, x.repeat(k, 1, 1, 1)).view(k, -1)  # (K, B)
            log_pz = standard_normal_log_prob(z)  # (K, B)
            log_qz = gaussian_log_prob(z, mu, logvar)  # (K, B)
            log_weights.append(log_px_z + log_pz - log_qz)
        return iwae_bound(torch.cat(log_weights))  # (B,)

    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        y: Tensor | None = None,
        z: Tensor | None = None,
        mode: str | None = None,
    ) -> Tensor:
        """Images (N, C, H, W) in [0, 1] from p(x | z) for z ~ N(0, I) (or the given z): its
        mean or a draw, as ``mode`` ("mean" | "draw"; default ``self.sample_mode``) says."""
        if z is None:
            z = torch.randn(num_samples, self.latent_dim, device=self.device)
        if self.num_classes > 0 and y is None:
            raise ValueError("this VAE is class-conditional: pass labels y (N,)")
        params = self.decoder(z, self.labels(y) if y is not None else None)  # (N, P * C, H, W)
        if (mode or self.sample_mode) == "draw":
            return self.likelihood.sample(params)
        return self.likelihood.mean(params)

    @property
    def progress_steps(self) -> int:
        """Training steps so far: the step count of callbacks' ``every_n_steps``."""
        return int(self.train_steps)

    # ---- Lightning hooks ---------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Refuse, before training, a binary likelihood on data that is not binarized."""
        datamodule = getattr(self.trainer, "datamodule", None)
        binary_only = getattr(self.likelihood, "requires_binary_data", False)
        if binary_only and datamodule is not None and not datamodule.binarize:
            raise ConfigError(
                f"model.likelihood={type(self.likelihood).__name__} is a likelihood of binary "
                "pixels, but data.binarize=false: set data.binarize=true, or use "
                "model.likelihood._target_=genlab.objectives.likelihoods.ContinuousBernoulli "
                "(or Gaussian) for gray values"
            )

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch  # (B, C, H, W), (B,)
        terms = self.elbo_terms(x, y)
        step = int(self.train_steps)
        # the KL weighting acts on the batch-mean KL (beta |KL - C| with the mean KL, as in
        # Burgess et al. 2018; for plain beta the two forms agree)
        loss = terms["rec_nll"].mean() + self.kl_weighting(terms["kl"].mean(), step)
        self.train_steps += 1
        self.images_seen += x.shape[0] * self.trainer.world_size
        neg_elbo = (terms["rec_nll"] + terms["kl"]).mean()
        self.log("train/neg_elbo", neg_elbo, prog_bar=True, batch_size=x.shape[0])
        self.log_dict(
            {
                "train/loss": loss,
                "train/kl": terms["kl"].mean(),
                "train/rec_nll": terms["rec_nll"].mean(),
                "train/kl_capacity": float(self.kl_weighting.capacity(step)),
            },
            batch_size=x.shape[0],
        )
        self.log_dict(
            {f"counters/{k}": float(v) for k, v in counter_values(self, *COUNTERS).items()},
            batch_size=x.shape[0],
        )
        return loss

    def _log_eval(self, split: str, x: Tensor, terms: dict[str, Tensor]) -> None:
        self.log_dict(
            {
                f"{split}/neg_elbo": (terms["rec_nll"] + terms["kl"]).mean(),
                f"{split}/kl": terms["kl"].mean(),
                f"{split}/rec_nll": terms["rec_nll"].mean(),
            },
            prog_bar=split == "val",
            batch_size=x.shape[0],
            sync_dist=True,
        )

    @full_precision()
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self._log_eval("val", x, self.elbo_terms(x, y))

    @full_precision()
    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self._log_eval("test", x, self.elbo_terms(x, y))
        iwae_nll = -self.iwae_log_likelihood(x, y, self.iwae_samples).mean()
        self.log("test/iwae_nll", iwae_nll, batch_size=x.shape[0], sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer=optimizer)}

    # ---- pictures ----------------------------------------------------------------------------
    @torch.no_grad()
    def pictures(self, batch: tuple[Tensor, Tensor]) -> dict[str, Grid]:
        """Grids to save: samples (or one row per class), reconstructions, latent traversals."""
        x, y = (t.to(self.device) for t in batch)  # (N, C, H, W), (N,)
        grids: dict[str, Grid] = {}
        if self.num_classes > 0:
            per_class = max(1, len(self.fixed_z) // self.num_classes)
            z = self.fixed_z[:per_class].repeat(self.num_classes, 1)  # (K * n, D)
            classes = torch.arange(self.num_classes, device=self.device).repeat_interleave(
                per_class
            )
            grids["class_grid"] = Grid(self.sample(len(z), y=classes, z=z), per_class)
        else:
            grids["samples"] = Grid(self.sample(len(self.fixed_z), z=self.fixed_z), 8)
        mu, logvar = self.encoder(x, self.labels(y))
        recon = self.likelihood.mean(self.decoder(mu, self.labels(y)))  # (N, C, H, W)
        grids["reconstructions"] = Grid(torch.cat([x, recon]), len(x))
        if self.traversal_rows > 0:
            grids["traversal"] = self._traversal(mu, logvar, y)
        return grids

    def _traversal(self, mu: Tensor, logvar: Tensor, y: Tensor, steps: int = 9) -> Grid:
        """Rows: the latent dims with the largest mean KL on this batch, each swept over [-3, 3]
        while the others stay at the first image's posterior mean."""
        kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(0)  # (D,)
        dims = kl_per_dim.argsort(descending=True)[: self.traversal_rows]  # (R,)
        values = torch.linspace(-3, 3, steps, device=self.device)  # (S,)
        z = mu[:1].repeat(len(dims) * steps, 1)  # (R * S, D)
        rows = torch.arange(len(dims), device=self.device).repeat_interleave(steps)
        z[torch.arange(len(z)), dims[rows]] = values.repeat(len(dims))
        labels = y[:1].repeat(len(z)) if self.num_classes > 0 else None
        return Grid(self.sample(len(z), y=labels, z=z, mode="mean"), steps)  # no pixel noise
