import lightning as L
import pytest
import torch

from genlab.data import ImageArrays, ImageDataModule


class ToySource:
    """In-memory source: image i is filled with a per-image gray pattern and labelled i, so a
    batch's labels say exactly which images it holds."""

    name = "toy"

    def __init__(self, n_train: int = 100, n_test: int = 30, channels: int = 1, size: int = 8):
        gen = torch.Generator().manual_seed(0)
        self.arrays = {
            split: ImageArrays(
                torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=gen),
                torch.arange(n),
            )
            for split, n in (("train", n_train), ("test", n_test))
        }
        self.prepared = False

    def prepare(self) -> None:
        self.prepared = True

    def load(self, split: str) -> ImageArrays:
        return self.arrays[split]


def _dm(source=None, **kwargs) -> ImageDataModule:
    config = {"channels": 1, "image_size": 8, "num_classes": 100, "batch_size": 16, "val_size": 20}
    dm = ImageDataModule(source or ToySource(), **{**config, **kwargs})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_batch_contract_and_sizes():
    source = ToySource()
    dm = _dm(source)
    assert source.prepared and dm.image_shape == (1, 8, 8) and dm.num_classes == 100
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (80, 20, 30)
    train = dm.train_dataloader()
    assert len(train) == 80 // 16
    for x, y in train:
        assert x.dtype == torch.float32 and x.shape == (16, 1, 8, 8)
        assert y.dtype == torch.int64 and y.shape == (16,)
        assert x.min() >= 0 and x.max() <= 1
        assert torch.equal(x, source.arrays["train"].images[y].float() / 255)  # x matches y
    x, y = _all(dm.val_dataloader())
    assert torch.equal(y, dm.val_set.labels) and len(x) == 20  # every image, in order
    _, y = _all(dm.test_dataloader())
    assert y.tolist() == list(range(30))


def test_train_shuffles_and_drops_the_partial_batch():
    dm = _dm(batch_size=30, val_size=10)  # 90 train images: 3 full batches
    loader = dm.train_dataloader()
    _, first = _all(loader)
    _, again = _all(dm.train_dataloader())  # the order is a function of (seed, epoch)
    loader.sampler.set_epoch(1)
    _, second = _all(loader)
    assert torch.equal(first, again)
    assert len(first) == 90 and not torch.equal(first, second)
    assert sorted(first.tolist()) == sorted(dm.train_set.labels.tolist())
    keep = _dm(batch_size=32, val_size=10, drop_last=False, eval_batch_size=7)
    assert [len(y) for _, y in keep.train_dataloader()] == [32, 32, 26]
    assert [len(y) for _, y in keep.val_dataloader()] == [7, 3]


def test_split_is_disjoint_and_fixed_by_split_seed():
    dm, again, other = _dm(), _dm(), _dm(split_seed=1)
    train, val = set(dm.train_set.labels.tolist()), set(dm.val_set.labels.tolist())
    assert not train & val and len(train | val) == 100
    assert torch.equal(again.val_set.labels, dm.val_set.labels)
    assert not torch.equal(other.val_set.labels, dm.val_set.labels)
    assert len(_dm(val_size=0).val_set) == 0


def test_setup_is_idempotent():
    dm = _dm()
    val = dm.val_set
    dm.setup("test")
    assert dm.val_set is val


def test_dynamic_binarization_of_train_and_fixed_eval():
    dm = _dm(binarize=True)
    dataset = dm.train_dataloader().dataset
    indices = list(range(16))
    (a, _), (b, _) = dataset[indices], dataset[indices]
    assert set(a.unique().tolist()) == {0.0, 1.0} and not torch.equal(a, b)
    gray = dm.train_set.images[:16].float() / 255
    assert (a - gray).abs().mean() > 0.2  # a real draw, not a rounding of the gray values
    twin = _dm(binarize=True)
    for split in ("val", "test"):
        x, _ = _all(getattr(dm, f"{split}_dataloader")())
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert torch.equal(x, _all(getattr(twin, f"{split}_dataloader")())[0])  # across runs
        assert torch.equal(x, _all(getattr(dm, f"{split}_dataloader")())[0])  # across epochs
    other_seed, _ = _all(_dm(binarize=True, split_seed=5).test_dataloader())
    assert not torch.equal(other_seed, _all(dm.test_dataloader())[0])


def test_sample_batch():
    dm = _dm(binarize=True)
    x, y = dm.sample_batch("val", 5)
    assert x.shape == (5, 1, 8, 8) and torch.equal(y, dm.val_set.labels[:5])
    first_val, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(x, first_val[:5])
    train_x, _ = dm.sample_batch("train", 4)
    assert set(train_x.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(train_x, dm.sample_batch("train", 4)[0])
    assert len(dm.sample_batch("test", 1000)[0]) == 30
    gray, _ = _dm().sample_batch("test", 3)
    assert torch.equal(gray, dm.test_set.images[:3].float() / 255)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        dm.sample_batch("dev", 3)


def test_eval_images_are_the_data_as_the_model_is_trained_on_it():
    dm = _dm(binarize=True)
    for split in ("val", "test"):  # the images the loaders yield
        x, _ = _all(getattr(dm, f"{split}_dataloader")())
        assert torch.equal(dm.eval_images(split), (x * 255).to(torch.uint8))
    train = dm.eval_images("train")  # one fixed draw of the training images
    assert train.dtype == torch.uint8 and train.shape == dm.train_set.images.shape
    assert set(train.unique().tolist()) == {0, 255}
    assert torch.equal(train, _dm(binarize=True).eval_images("train"))
    assert not torch.equal(train, _dm(binarize=True, split_seed=5).eval_images("train"))
    ones = (train == 255).float().mean()  # a Bernoulli(x / 255) draw: share of ones ~ mean gray
    assert abs(ones - dm.train_set.images.float().mean() / 255) < 0.02
    assert torch.equal(dm.sample_batch("train", 4)[0], train[:4].float() / 255)
    gray = _dm()
    for split in ("train", "val", "test"):
        assert torch.equal(gray.eval_images(split), getattr(gray, f"{split}_set").images)


def test_eval_settings_name_every_setting_that_changes_the_pixels():
    base = _dm().eval_settings
    assert base("test") == {}  # the source's own test split
    assert base("train") == base("val") == {"val_size": 20, "split_seed": 0}  # the hold-out
    binarized = _dm(binarize=True).eval_settings
    assert binarized("test") == {"binarize": True, "split_seed": 0}
    assert binarized("train") == {"val_size": 20, "split_seed": 0, "binarize": True}
    assert _dm(binarize=True, split_seed=3).eval_settings("test")["split_seed"] == 3
    assert _dm(val_size=10).eval_settings("train")["val_size"] == 10
    assert _dm(batch_size=8, eval_batch_size=4).eval_settings("train") == base("train")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        _dm().eval_settings("dev")


def test_data_before_setup_is_an_error():
    dm = ImageDataModule(ToySource(), 1, 8, 100)
    assert dm.image_shape == (1, 8, 8)
    with pytest.raises(RuntimeError, match="setup"):
        dm.train_set  # noqa: B018


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"image_size": 28},
            r"toy: train images are \(C, H, W\) = \(1, 8, 8\).*use data.image_size=8",
        ),
        ({"channels": 3}, "use data.channels=1"),
        ({"channels": 3, "image_size": 32}, "use data.channels=1 and data.image_size=8"),
        ({"val_size": 95}, r"data.val_size=95 is too large.*at most 84"),
        ({"batch_size": 200, "val_size": 0}, "data.batch_size=200 is larger than the 100"),
        ({"num_classes": 10}, "labels go up to 99.*set data.num_classes=100"),
    ],
)
def test_config_mismatch_names_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _dm(**kwargs)


def test_unlabelled_data_needs_num_classes_zero():
    source = ToySource()
    source.arrays = {
        k: ImageArrays(v.images, torch.full_like(v.labels, -1)) for k, v in source.arrays.items()
    }
    with pytest.raises(ValueError, match=r"unlabelled.*set data.num_classes=0"):
        _dm(source)
    assert _dm(source, num_classes=0).val_set.labels.eq(-1).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "data.batch_size=0 is invalid: must be >= 1"),
        ({"eval_batch_size": 0}, "data.eval_batch_size=0"),
        ({"val_size": -1}, "data.val_size=-1"),
        ({"num_classes": -1}, "data.num_classes=-1"),
        ({"num_workers": -2}, "data.num_workers=-2"),
        ({"source": {"root": "x"}}, "data.source=.*_target_"),
    ],
)
def test_constructor_validation(kwargs, message):
    config = {"source": ToySource(), "channels": 1, "image_size": 8, "num_classes": 100}
    with pytest.raises(ValueError, match=message):
        ImageDataModule(**{**config, **kwargs})


class _TinyModel(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(64, 100)

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x.flatten(1)), y)

    def training_step(self, batch, batch_idx):
        return self._loss(batch)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_one_epoch():
    dm = ImageDataModule(ToySource(), 1, 8, 100, batch_size=16, val_size=20)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_TinyModel(), datamodule=dm)
    assert trainer.num_training_batches == 80 // 16
    assert trainer.num_val_batches == [2]  # 20 images: 16 + 4
    assert trainer.global_step == 5


def test_lightning_distributed_wrapping_splits_whole_batches():
    """What Lightning does to the train loader under DDP (2 ranks, same global seed on both, as
    after seed_everything): each rank gets full batches, together covering the train set."""
    from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler
    from lightning.pytorch.utilities.data import _update_dataloader

    dm = _dm()  # 80 train images, batches of 16: 5 batches, padded to 3 per rank
    seen = []
    for rank in range(2):
        torch.manual_seed(0)
        loader = dm.train_dataloader()
        sampler = _get_distributed_sampler(
            loader, shuffle=True, overfit_batches=0, num_replicas=2, rank=rank
        )
        batches = [y for _, y in _update_dataloader(loader, sampler)]
        assert len(batches) == 3 and all(len(y) == 16 for y in batches)
        seen += batches
    assert set(torch.cat(seen).tolist()) == set(dm.train_set.labels.tolist())
