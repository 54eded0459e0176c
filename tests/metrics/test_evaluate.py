"""Reference caching, data set keys and sample generation."""

import functools

import pytest
import torch
from omegaconf import OmegaConf

from genlab.data.arrays import ImageArrays
from genlab.metrics.evaluate import dataset_key, generate
from genlab.metrics.reference import load_or_compute_reference, reference_path
from genlab.modules.vae import VAE
from genlab.nets.vae import MLPDecoder, MLPEncoder
from genlab.objectives.elbo import BetaKL
from genlab.objectives.likelihoods import Bernoulli


class CountingExtractor:
    """Mean pixel and its square as 'features'; counts the images it featurises."""

    key = "counting"

    def __init__(self):
        self.images_seen = 0

    def features(self, x):
        self.images_seen += len(x)
        m = x.flatten(1).mean(1, keepdim=True)
        return torch.cat([m, m**2], 1)

    def logits(self, x):
        return torch.zeros(len(x), 3)


def arrays(n=50):
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8)
    return ImageArrays(images, torch.zeros(n, dtype=torch.long))


def test_reference_is_computed_once_then_read_from_the_cache(tmp_path):
    data, extractor = arrays(), CountingExtractor()
    first = load_or_compute_reference(extractor, data, "toy", "test", 30, tmp_path)
    assert extractor.images_seen == 30
    second = load_or_compute_reference(extractor, data, "toy", "test", 30, tmp_path)
    assert extractor.images_seen == 30  # no real image touched again
    torch.testing.assert_close(first.features, second.features)
    assert reference_path(tmp_path, "toy", "test", "counting", 30).is_file()
    assert first.features.shape == (30, 2) and first.covariance.shape == (2, 2)
    load_or_compute_reference(extractor, data, "toy", "test", 40, tmp_path)  # another count
    assert extractor.images_seen == 30 + 40


def test_count_is_capped_by_the_split_size(tmp_path):
    reference = load_or_compute_reference(
        CountingExtractor(), arrays(20), "toy", "test", 10**6, tmp_path
    )
    assert len(reference.features) == 20


def test_corrupt_reference_cache_names_the_file(tmp_path):
    path = reference_path(tmp_path, "toy", "test", "counting", 50)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a tensor file")
    with pytest.raises(RuntimeError, match="delete the file"):
        load_or_compute_reference(CountingExtractor(), arrays(), "toy", "test", 50, tmp_path)


def test_dataset_key_ignores_location_and_follows_content():
    base = {"channels": 1, "image_size": 28, "source": {"_target_": "genlab.data.sources.MNIST"}}
    a = OmegaConf.create({**base, "source": {**base["source"], "root": "/a", "download": False}})
    b = OmegaConf.create({**base, "source": {**base["source"], "root": "/b", "download": True}})
    assert dataset_key(a) == dataset_key(b) and dataset_key(a).startswith("mnist-1x28x28-")
    shapes = {"_target_": "genlab.data.sources.Shapes", "seed": 0}
    c = OmegaConf.create({**base, "source": shapes})
    d = OmegaConf.create({**base, "source": {**shapes, "seed": 1}})
    assert dataset_key(c) != dataset_key(d)


def vae(num_classes=0, image_shape=(1, 8, 8)):
    return VAE(
        encoder=functools.partial(MLPEncoder),
        decoder=functools.partial(MLPDecoder),
        likelihood=Bernoulli(),
        kl_weighting=BetaKL(),
        optimizer=functools.partial(torch.optim.Adam),
        image_shape=image_shape,
        latent_dim=3,
        conditional=num_classes > 0,
        num_classes=num_classes,
    )


def test_generate_gives_quantized_images_in_batches():
    images, labels = generate(vae(), 25, batch_size=10)
    assert images.shape == (25, 1, 8, 8) and labels is None
    torch.testing.assert_close(images * 255, (images * 255).round())


def test_generate_cycles_classes_or_holds_one_label(monkeypatch):
    model, seen = vae(num_classes=4), []
    original = model.sample
    monkeypatch.setattr(
        model, "sample", lambda n, y=None: seen.append(y.clone()) or original(n, y=y)
    )
    _, labels = generate(model, 6, batch_size=4)
    assert torch.cat(seen).tolist() == labels.tolist() == [0, 1, 2, 3, 0, 1]
    seen.clear()
    generate(model, 3, batch_size=4, label=2)
    assert torch.cat(seen).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="label=4 is not a class"):
        generate(model, 3, batch_size=4, label=4)
    with pytest.raises(ValueError, match="unconditional"):
        generate(vae(), 3, batch_size=4, label=0)


def test_each_process_generates_its_own_samples(monkeypatch, tmp_path):
    """Under DDP every process evaluates its share: the shares must differ (no duplicates)."""
    from genlab.data.sources import Shapes
    from genlab.metrics import evaluate

    captured = []

    def capture(real, fake, logits, settings):
        captured.append(fake)
        return {}

    monkeypatch.setattr(evaluate, "sample_quality", capture)
    data_cfg = OmegaConf.create(
        {"channels": 1, "image_size": 32, "source": {"_target_": "genlab.data.sources.Shapes"}}
    )
    source = Shapes(num_train=40, num_test=20)
    model = vae(image_shape=(1, 32, 32))
    settings = evaluate.EvalSettings(num_samples=20, memorization_samples=5)
    for rank in (0, 1, 0):
        torch.manual_seed(0)  # as seed_everything leaves every process
        evaluate.evaluate_samples(
            model, source, data_cfg, CountingExtractor(), settings, tmp_path, rank, 2
        )
    assert captured[0].shape == (10, 2)
    assert not torch.allclose(captured[0], captured[1])
    torch.testing.assert_close(captured[0], captured[2])  # and reproducible


def test_loaded_splits_reads_each_split_once():
    from genlab.metrics.evaluate import LoadedSplits

    class CountingSource:
        def __init__(self):
            self.loads = []

        def load(self, split):
            self.loads.append(split)
            return arrays(5)

    source = CountingSource()
    splits = LoadedSplits(source)
    first = splits.load("train")
    assert splits.load("train") is first
    splits.load("test")
    splits.load("test")
    assert source.loads == ["train", "test"]
