"""The PixelCNN family in one LightningModule: masked or gated PixelCNN (the ``net``), any output
distribution (the ``output``: Bernoulli, 256-way softmax, discretized logistic mixture), optionally
class-conditional. Training minimises the exact NLL; sampling uses the cached sampler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn

from genlab.modules.counters import counter_values, register_counters
from genlab.nets.pixelcnn_sampling import cached_sample
from genlab.objectives.autoregressive import bits_per_dim
from genlab.utils.images import Grid
from genlab.utils.precision import full_precision
from genlab.validation import ConfigError

COUNTERS = ("train_steps", "images_seen")


class PixelCNN(LightningModule):
    """Autoregressive image model trained on the exact negative log-likelihood.

    Logged for train / val / test: ``{split}/nll`` (nats per image) and ``{split}/bits_per_dim``
    (nll / (H * W * C * ln 2)); val and test in float32 whatever the training precision.
    """

    def __init__(
        self,
        net: Callable[..., nn.Module],
        output: Any,
        optimizer: Callable[..., torch.optim.Optimizer],
        image_shape: Sequence[int],
        conditional: bool = False,
        num_classes: int = 0,
        picture_samples_per_class: int = 8,
        num_picture_samples: int = 64,
        scheduler: Callable[..., Any] | None = None,
    ):
        super().__init__()
        if conditional and num_classes < 2:
            raise ValueError(
                f"a class-conditional PixelCNN needs labelled data, but data.num_classes="
                f"{num_classes}: choose a labelled data set (shapes, mnist, fashion_mnist, "
                "cifar10) or set model.conditional=false"
            )
        if picture_samples_per_class < 1 or num_picture_samples < 1:
            raise ValueError(
                f"model.picture_samples_per_class={picture_samples_per_class} and "
                f"model.num_picture_samples={num_picture_samples} must be >= 1"
            )
        if output.binary and image_shape[0] != 1:
            raise ValueError(
                f"model.output={type(output).__name__} models binarized gray images, but "
                f"data.channels={image_shape[0]}: for colour images use model.output._target_="
                "genlab.objectives.autoregressive.Categorical256 (or DiscretizedLogisticMixture) "
                "with data.binarize=false"
            )
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes if conditional else 0
        self.net = net(
            image_shape=self.image_shape,
            params_per_channel=output.num_params,
            num_classes=self.num_classes,
        )
        self.output = output
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.picture_samples_per_class = picture_samples_per_class
        self.num_picture_samples = num_picture_samples
        register_counters(self, *COUNTERS)

    # ---- the model ---------------------------------------------------------------------------
    def labels(self, y: Tensor) -> Tensor | None:
        """The labels the net sees: y for a conditional model, None otherwise."""
        return y if self.num_classes > 0 else None

    def nll(self, x: Tensor, y: Tensor) -> Tensor:
        """Exact -log p(x [| y]) in nats per image: x (B, C, H, W) in [0, 1], y (B,) -> (B,)."""
        return -self.output.log_prob(self.net(x, self.labels(y)), x)

    @torch.no_grad()
    def sample(self, num_samples: int, y: Tensor | None = None, u: Tensor | None = None) -> Tensor:
        """Images (N, C, H, W) in [0, 1], by the cached sampler; ``u`` (N, C, H, W): the uniforms
        that pick each pixel value (fresh ones unless given)."""
        if self.num_classes > 0 and y is None:
            raise ValueError("this PixelCNN is class-conditional: pass labels y (N,)")
        if u is None:
            u = torch.rand(num_samples, *self.image_shape, device=self.device, dtype=self.dtype)
        labels = y.to(self.device) if self.num_classes > 0 else None
        return cached_sample(self.net, self.output, u, labels)

    @property
    def progress_steps(self) -> int:
        """Training steps so far: the step count of callbacks' ``every_n_steps``."""
        return int(self.train_steps)

    # ---- Lightning hooks ---------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Refuse, before training, an output distribution that does not fit the data."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or self.output.binary == datamodule.binarize:
            return
        name = type(self.output).__name__
        if self.output.binary:
            raise ConfigError(
                f"model.output={name} is a distribution of binary pixels, but data.binarize="
                "false: set data.binarize=true, or use model.output._target_="
                "genlab.objectives.autoregressive.Categorical256 for 8-bit values"
            )
        raise ConfigError(
            f"model.output={name} is a distribution of 8-bit pixel values, but data.binarize=true:"
            " set data.binarize=false, or use model.output._target_="
            "genlab.objectives.autoregressive.Bernoulli for binarized data"
        )

    def _log_nll(self, split: str, nll: Tensor, **kwargs: Any) -> None:
        dims = self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        self.log(f"{split}/nll", nll.mean(), prog_bar=True, batch_size=len(nll), **kwargs)
        self.log(
            f"{split}/bits_per_dim", bits_per_dim(nll, dims).mean(), batch_size=len(nll), **kwargs
        )

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch  # (B, C, H, W), (B,)
        nll = self.nll(x, y)  # (B,)
        self.train_steps += 1
        self.images_seen += x.shape[0] * self.trainer.world_size
        self._log_nll("train", nll)
        self.log_dict(
            {f"counters/{k}": float(v) for k, v in counter_values(self, *COUNTERS).items()},
            batch_size=x.shape[0],
        )
        return nll.mean()

    @full_precision()
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self._log_nll("val", self.nll(x, y), sync_dist=True)

    @full_precision()
    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self._log_nll("test", self.nll(x, y), sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer=optimizer)}

    # ---- pictures ----------------------------------------------------------------------------
    @torch.no_grad()
    def pictures(self, batch: tuple[Tensor, Tensor]) -> dict[str, Grid]:
        """``samples`` (8 per row; a conditional model cycles through the classes) and, for a
        conditional model, ``class_grid`` (one row per class). Fixed uniforms, so the grids of
        successive epochs are comparable."""
        noise = torch.Generator().manual_seed(0)
        n = self.num_picture_samples
        u = torch.rand(n, *self.image_shape, generator=noise).to(self.device, self.dtype)
        y = None
        if self.num_classes > 0:
            y = torch.arange(n, device=self.device) % self.num_classes  # (N,)
        grids = {"samples": Grid(self.sample(n, y=y, u=u), 8)}
        if self.num_classes > 0:
            per_class = self.picture_samples_per_class
            classes = torch.arange(self.num_classes, device=self.device)
            u = torch.rand(per_class, *self.image_shape, generator=noise)  # (n, C, H, W)
            u = u.repeat(self.num_classes, 1, 1, 1).to(self.device, self.dtype)  # (K * n, ...)
            y = classes.repeat_interleave(per_class)  # (K * n,)
            grids["class_grid"] = Grid(self.sample(len(y), y=y, u=u), per_class)
        return grids
