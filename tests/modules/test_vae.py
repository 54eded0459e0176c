"""The VAE LightningModule: terms, IWAE, counters, pictures, conditioning, an overfit run."""

import functools

import pytest
import torch

from genlab.modules.vae import VAE
from genlab.nets.vae import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from genlab.objectives.elbo import BetaKL
from genlab.objectives.likelihoods import Bernoulli, ContinuousBernoulli, Gaussian


def make_vae(num_classes=0, latent_dim=4, image_shape=(1, 28, 28), conv=False, **kwargs):
    encoder, decoder = (ConvEncoder, ConvDecoder) if conv else (MLPEncoder, MLPDecoder)
    return VAE(
        encoder=functools.partial(encoder),
        decoder=functools.partial(decoder),
        likelihood=kwargs.pop("likelihood", Bernoulli()),
        kl_weighting=BetaKL(1.0),
        optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
        image_shape=image_shape,
        latent_dim=latent_dim,
        num_classes=num_classes,
        **{"conditional": num_classes > 0, **kwargs},
    )


def binary_batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=g)
    return x, torch.arange(n) % 10


def test_iwae_with_one_sample_estimates_the_elbo_and_more_samples_tighten_it():
    torch.manual_seed(0)
    vae = make_vae().eval()
    x, y = binary_batch(4)
    with torch.no_grad():
        elbo = torch.stack(
            [-sum(vae.elbo_terms(x, y)[k] for k in ("rec_nll", "kl")) for _ in range(400)]
        )
        iwae_1 = torch.stack([vae.iwae_log_likelihood(x, y, 1) for _ in range(400)])
        iwae_100 = vae.iwae_log_likelihood(x, y, 100)
    stderr = elbo.std(0) / 20
    assert torch.all((elbo.mean(0) - iwae_1.mean(0)).abs() < 4 * stderr + 1e-3)
    assert torch.all(iwae_100 > elbo.mean(0))


def test_iwae_chunking_does_not_change_the_bound(monkeypatch):
    vae = make_vae().eval()
    x, y = binary_batch(3)
    eps = torch.randn(20, 3, 4)  # (K, B, D): the same noise whatever the chunking

    def replay_reparameterize(mu, logvar, num_samples):
        nonlocal used
        noise = eps[used : used + num_samples]
        used += num_samples
        return mu + torch.exp(0.5 * logvar) * noise

    monkeypatch.setattr("genlab.modules.vae.reparameterize", replay_reparameterize)
    bounds = []
    for chunk in (7, 20):
        used = 0
        vae.iwae_chunk = chunk
        bounds.append(vae.iwae_log_likelihood(x, y, 20))
    assert used == 20
    torch.testing.assert_close(bounds[0], bounds[1], rtol=1e-5, atol=1e-4)


def test_conditional_iwae_uses_labels():
    torch.manual_seed(0)
    vae = make_vae(num_classes=10).eval()
    x, y = binary_batch(4)
    torch.manual_seed(2)
    a = vae.iwae_log_likelihood(x, y, 10)
    torch.manual_seed(2)
    b = vae.iwae_log_likelihood(x, (y + 1) % 10, 10)
    assert not torch.allclose(a, b)


def test_pictures_have_the_documented_layouts():
    vae = make_vae(traversal_rows=3, num_picture_samples=16)
    grids = vae.pictures(binary_batch(5))
    assert grids["samples"].images.shape == (16, 1, 28, 28)
    assert grids["reconstructions"].images.shape == (10, 1, 28, 28)
    assert grids["reconstructions"].nrow == 5
    torch.testing.assert_close(grids["reconstructions"].images[:5], binary_batch(5)[0])
    traversal = grids["traversal"]
    assert traversal.images.shape == (3 * 9, 1, 28, 28) and traversal.nrow == 9
    for grid in grids.values():
        assert grid.images.min() >= 0 and grid.images.max() <= 1


def test_class_grid_has_one_row_per_class():
    vae = make_vae(num_classes=10, num_picture_samples=30)
    grids = vae.pictures(binary_batch(4))
    assert "samples" not in grids
    assert grids["class_grid"].images.shape == (30, 1, 28, 28)
    assert grids["class_grid"].nrow == 3


def test_a_sample_is_a_bernoulli_draw_or_the_mean_as_sample_mode_says():
    torch.manual_seed(0)
    vae = make_vae().eval()
    z = torch.randn(16, 4)
    mean = torch.sigmoid(vae.decoder(z, None))  # (16, 1, 28, 28)
    torch.testing.assert_close(vae.sample(16, z=z, mode="mean"), mean)
    draw = vae.sample(16, z=z, mode="draw")
    assert set(draw.unique().tolist()) == {0.0, 1.0}
    draws = torch.stack([vae.sample(16, z=z, mode="draw") for _ in range(400)])
    assert (draws.mean(0) - mean).abs().max() < 0.1  # std of a mean of 400 draws <= 0.025
    assert vae.sample_mode == "draw"  # auto: binary samples for binary data
    torch.manual_seed(1)
    default = vae.sample(16, z=z)
    torch.manual_seed(1)
    assert torch.equal(default, vae.sample(16, z=z, mode="draw"))
    torch.manual_seed(2)
    by_config = make_vae(sample_mode="mean")
    torch.manual_seed(2)
    assert torch.equal(by_config.sample(3, z=z[:3]), make_vae().sample(3, z=z[:3], mode="mean"))


@pytest.mark.parametrize(
    ("likelihood", "auto"),
    [(Bernoulli(), "draw"), (Gaussian(), "mean"), (ContinuousBernoulli(), "mean")],
)
def test_auto_sample_mode_follows_the_likelihood(likelihood, auto):
    assert make_vae(likelihood=likelihood).sample_mode == auto
    for mode in ("mean", "draw"):
        assert make_vae(likelihood=likelihood, sample_mode=mode).sample_mode == mode


def test_traversals_show_decoder_means_whatever_the_sample_mode():
    vae = make_vae(traversal_rows=2, sample_mode="draw")
    traversal = vae.pictures(binary_batch(3))["traversal"].images
    assert not set(traversal.unique().tolist()) <= {0.0, 1.0}  # gray: means, not draws


def test_conditional_sampling_requires_labels():
    vae = make_vae(num_classes=10)
    with pytest.raises(ValueError, match="class-conditional"):
        vae.sample(4)
    assert vae.sample(4, y=torch.tensor([0, 1, 2, 3])).shape == (4, 1, 28, 28)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latent_dim": 0}, "latent_dim=0"),
        ({"iwae_samples": 0}, "iwae_samples=0"),
        ({"conditional": True, "num_classes": 0}, "needs labelled data"),
        ({"sample_mode": "median"}, "sample_mode='median' is invalid"),
    ],
)
def test_bad_hyperparameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_vae(**kwargs)


def test_loss_falls_when_overfitting_64_images():
    torch.manual_seed(0)
    vae = make_vae(conv=True, latent_dim=8)
    x = torch.zeros(64, 1, 28, 28)  # 64 distinct images: one bright bar each
    for i in range(64):
        if i < 28:
            x[i, 0, i, :] = 1
        else:
            x[i, 0, :, (i - 28) % 28] = 1
    y = torch.zeros(64, dtype=torch.long)
    optimizer = vae.configure_optimizers()
    losses = []
    for _ in range(150):
        terms = vae.elbo_terms(x, y)
        loss = (terms["rec_nll"] + terms["kl"]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
