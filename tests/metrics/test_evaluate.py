"""Reference caching, data set keys, sample generation, and the evaluation protocol: samples
are scored against the data as the model was trained on it."""

import functools

import pytest
import torch
from omegaconf import OmegaConf

from genlab.data.arrays import ImageArrays
from genlab.metrics.evaluate import dataset_key, evaluate_samples, generate, generate_share
from genlab.metrics.reference import load_or_compute_reference, reference_path, split_key
from genlab.modules.vae import VAE
from genlab.nets.vae import MLPDecoder, MLPEncoder
from genlab.objectives.elbo import BetaKL
from genlab.objectives.likelihoods import Bernoulli
from genlab.utils.precision import full_precision
from tests.metrics import toys


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
    data, extractor = arrays().images, CountingExtractor()
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
        CountingExtractor(), arrays(20).images, "toy", "test", 10**6, tmp_path
    )
    assert len(reference.features) == 20


def test_corrupt_reference_cache_names_the_file(tmp_path):
    path = reference_path(tmp_path, "toy", "test", "counting", 50)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a tensor file")
    with pytest.raises(RuntimeError, match="delete the file"):
        load_or_compute_reference(CountingExtractor(), arrays().images, "toy", "test", 50, tmp_path)


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


def test_processes_draw_disjoint_shares_of_one_sample_set():
    """Under DDP each process draws its own batches; together they are the one-process set,
    whatever the number of processes, and the same on every call."""
    torch.manual_seed(0)
    model = vae(num_classes=3)
    settings = toys.settings(num_samples=70, batch_size=20)  # batches of 20, 20, 20, 10
    whole, positions = generate_share(model, settings)
    assert whole.shape == (70, 1, 8, 8) and torch.equal(positions, torch.arange(70))
    for world_size in (2, 3, 5):
        shares = [generate_share(model, settings, rank, world_size) for rank in range(world_size)]
        images = torch.cat([share[0] for share in shares])
        order = torch.cat([share[1] for share in shares]).argsort()
        assert torch.equal(images[order], whole)
    first, second = (generate_share(model, settings, 1, 2)[0] for _ in range(2))
    assert torch.equal(first, second) and not torch.equal(first[:20], whole[:20])
    torch.manual_seed(123)  # the global RNG does not matter
    assert torch.equal(generate_share(model, settings)[0], whole)


def test_reference_keys_hold_the_preprocessing():
    assert split_key("test", {}) == "test"
    assert split_key("test", {"binarize": True, "split_seed": 0}) == "test-binarize-split_seed0"
    train = toys.datamodule(binarize=True).eval_settings("train")
    assert split_key("train", train) == "train-binarize-split_seed0-val_size20"
    keys = {
        split_key(split, toys.datamodule(**kwargs).eval_settings(split))
        for split in ("train", "test")
        for kwargs in ({}, {"binarize": False}, {"split_seed": 1}, {"val_size": 10})
    }
    assert len(keys) == 2 * 4 - 1  # every change of pixels, but val_size leaves test alone


def test_binarized_data_is_scored_against_its_seeded_binarization(tmp_path):
    """Samples equal to the binarized test split score a perfect FID / precision / recall; the
    same binary samples against the gray split (another cache entry) do not."""
    binarized, gray = toys.datamodule(binarize=True), toys.datamodule(binarize=False)
    real = binarized.eval_images("test")  # (60, 1, 8, 8), 0 / 255
    extractor, settings = toys.ProjectionExtractor(), toys.settings()
    metrics, _ = evaluate_samples(
        toys.Replay(real), binarized, "gray", extractor, settings, tmp_path
    )
    assert metrics["fid"] == pytest.approx(0, abs=1e-2)
    assert metrics["precision"] == metrics["recall"] == metrics["coverage"] == 1
    against_gray, _ = evaluate_samples(
        toys.Replay(real), gray, "gray", extractor, settings, tmp_path
    )
    assert against_gray["fid"] > 10 and against_gray["precision"] < 0.5
    cached = sorted(p.name for p in (tmp_path / "reference").glob("gray-test*"))
    assert cached == [
        "gray-test-binarize-split_seed0-projection-n60.pt",
        "gray-test-projection-n60.pt",
    ]


def test_memorization_looks_for_the_training_images_as_trained_on(tmp_path):
    dm, extractor, settings = toys.datamodule(), toys.ProjectionExtractor(), toys.settings()
    copies = toys.Replay(dm.eval_images("train")[:60])  # copies of binarized training images
    metrics, grid = evaluate_samples(copies, dm, "gray", extractor, settings, tmp_path)
    assert metrics["nn_pixel_mean"] == 0 and metrics["nn_feature_mean"] == pytest.approx(
        0, abs=1e-3
    )
    pairs = grid.images.view(-1, 2, 1, 8, 8)  # (R, 2, C, H, W): sample | nearest training image
    assert len(pairs) == 6 and torch.equal(pairs[:, 0], pairs[:, 1])
    held_out = toys.Replay(dm.eval_images("val")[:20])  # not trained on: no copies found
    metrics, _ = evaluate_samples(held_out, dm, "gray", extractor, toys.settings(20), tmp_path)
    assert metrics["nn_pixel_min"] > 1


def test_evaluation_is_float32_under_autocast(tmp_path):
    torch.manual_seed(0)
    model, dm = vae(), toys.datamodule()
    extractor, settings = toys.ProjectionExtractor(), toys.settings()
    plain, _ = evaluate_samples(model, dm, "gray", extractor, settings, tmp_path / "a")
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as a bf16-mixed trainer runs its steps
        assert torch.nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.bfloat16
        mixed, _ = evaluate_samples(model, dm, "gray", extractor, settings, tmp_path / "b")
        with full_precision():
            assert torch.nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.float32
    assert mixed == pytest.approx(plain, rel=1e-6, abs=1e-9)


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
