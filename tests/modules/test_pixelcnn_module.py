"""The PixelCNN LightningModule: exact NLL by the chain rule, conditioning, label-respecting
samples, an overfit run, pictures, and the config errors it raises before training."""

import functools
import math

import pytest
import torch

from genlab.data.shapes import render, sample_factors
from genlab.modules.pixelcnn import PixelCNN
from genlab.nets.pixelcnn import GatedPixelCNN, MaskedPixelCNN
from genlab.objectives.autoregressive import Bernoulli, Categorical256
from genlab.train import train
from tests.helpers import compose_train_config


def make_model(image_shape=(1, 8, 8), num_classes=0, net=GatedPixelCNN, output=None, **net_kwargs):
    torch.manual_seed(0)
    kwargs = {"hidden_channels": 16, "head_channels": 16, **net_kwargs}
    return PixelCNN(
        net=functools.partial(net, **kwargs),
        output=output or Bernoulli(),
        optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
        image_shape=image_shape,
        conditional=num_classes > 0,
        num_classes=num_classes,
    )


@pytest.mark.parametrize("net", [GatedPixelCNN, MaskedPixelCNN])
@pytest.mark.parametrize(
    ("image_shape", "output"), [((1, 4, 4), Bernoulli()), ((3, 3, 3), Categorical256())]
)
def test_nll_is_the_sum_of_the_per_pixel_conditionals(net, image_shape, output):
    """-log p(x) = -sum_i log p(x_i | x_<i), each factor from a pass that sees only x_<i."""
    model = make_model(image_shape, num_classes=3, net=net, output=output).double().eval()
    c, h, w = image_shape
    x = torch.randint(0, 2 if output.binary else 256, (1, c, h, w)).double()
    x = x if output.binary else x / 255
    y = torch.tensor([2])
    expected = 0.0
    for i in range(h):
        for j in range(w):
            for k in range(c):
                prefix = torch.zeros_like(x)
                prefix[:, :, :i] = x[:, :, :i]
                prefix[:, :, i, :j] = x[:, :, i, :j]
                prefix[:, :k, i, j] = x[:, :k, i, j]
                params = model.net(prefix, y)[0, k, :, i, j]  # (P,)
                if output.binary:
                    p_one = 1 / (1 + math.exp(-params.item()))
                    expected -= math.log(p_one if x[0, k, i, j] == 1 else 1 - p_one)
                else:
                    level = round(x[0, k, i, j].item() * 255)
                    expected -= (params[level] - torch.logsumexp(params, 0)).item()
    assert model.nll(x, y).item() == pytest.approx(expected, rel=1e-9)


def test_the_label_changes_the_distribution():
    model = make_model(num_classes=10).eval()
    x = torch.bernoulli(torch.full((1, 1, 8, 8), 0.3)).repeat(2, 1, 1, 1)
    nll = model.nll(x, torch.tensor([1, 7]))
    assert not torch.isclose(nll[0], nll[1])
    with pytest.raises(ValueError, match="class-conditional"):
        model.sample(2)


def class_templates():
    """One binary 8x8 image per class: top half, bottom half, checkerboard. (3, 1, 8, 8)"""
    top = torch.zeros(8, 8)
    top[:4] = 1
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    checker = ((rows + cols) % 2).float()
    return torch.stack([top, 1 - top, checker]).unsqueeze(1)


def test_samples_show_the_requested_class():
    templates = class_templates()
    model = make_model(num_classes=3, num_layers=3, kernel_size=5)
    optimizer = model.configure_optimizers()
    y = torch.arange(3).repeat(8)  # (24,)
    x = templates[y]  # (24, 1, 8, 8)
    for _ in range(60):
        optimizer.zero_grad()
        model.nll(x, y).mean().backward()
        optimizer.step()
    model.eval()
    for label in range(3):
        images = model.sample(8, y=torch.full((8,), label))  # (8, 1, 8, 8)
        distances = (images.unsqueeze(1) - templates.unsqueeze(0)).abs().mean((2, 3, 4))  # (8, 3)
        assert torch.all(distances.argmin(1) == label)
        assert distances[:, label].mean() < 0.05


def test_nll_falls_when_overfitting_64_binarized_images():
    torch.manual_seed(0)
    images = render(sample_factors(64, torch.Generator().manual_seed(0)), 16)  # uint8
    x = (images > 127).float()  # (64, 1, 16, 16)
    y = torch.zeros(64, dtype=torch.long)
    model = make_model((1, 16, 16), num_layers=3, kernel_size=5)
    optimizer = model.configure_optimizers()
    history = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = model.nll(x, y).mean()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert history[-1] < 0.25 * history[0]  # from ~150 nats, about p = 1/2 everywhere
    assert history[-1] < 0.85 * history[29]  # past the background, the shapes' own pixels


def test_pictures_show_samples_and_one_row_per_class():
    model = make_model(num_classes=3).eval()
    batch = (torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))
    grids = model.pictures(batch)
    assert grids["samples"].images.shape == (64, 1, 8, 8)
    assert grids["class_grid"].images.shape == (3 * 8, 1, 8, 8)
    assert grids["class_grid"].nrow == 8
    assert torch.equal(model.pictures(batch)["samples"].images, grids["samples"].images)
    unconditional = make_model().eval()
    assert set(unconditional.pictures(batch)) == {"samples"}


def test_config_errors_name_the_key_and_the_fix():
    with pytest.raises(ValueError, match=r"data\.channels=3.*Categorical256"):
        make_model((3, 8, 8), output=Bernoulli())
    with pytest.raises(ValueError, match=r"data\.num_classes=0.*model\.conditional=false"):
        PixelCNN(
            net=GatedPixelCNN,
            output=Bernoulli(),
            optimizer=torch.optim.Adam,
            image_shape=(1, 8, 8),
            conditional=True,
            num_classes=0,
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.binarize=false"], r"Bernoulli .*data\.binarize=false: set data\.binarize=true"),
        (
            ["model.output._target_=genlab.objectives.autoregressive.Categorical256"],
            r"Categorical256 .*data\.binarize=true: set data\.binarize=false",
        ),
    ],
)
def test_output_that_does_not_fit_the_data_is_refused_before_training(tmp_path, overrides, message):
    cfg = compose_train_config(
        ["experiment=pixelcnn_shapes", "debug=fast", *overrides], output_dir=tmp_path
    )
    with pytest.raises(ValueError, match=message):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()
