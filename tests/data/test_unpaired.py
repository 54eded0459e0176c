"""Unpaired two-domain data: crops and flips, the independent seeded epoch order (and its
resume), the CycleGAN folder layout (gray files, unreadable files, missing folders, the decoded
cache), the procedural filled / outlined pair and the DataModule."""

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import unpaired_sources
from genlab.data.download import DataNotFoundError
from genlab.data.shapes import render
from genlab.data.unpaired import (
    UnpairedDataModule,
    UnpairedEpochBatches,
    centre_crop,
    crop_and_flip,
)
from genlab.data.unpaired_sources import ShapesPair, UnpairedFolder


# ---- crops and flips ------------------------------------------------------------------------
def windows(image: np.ndarray, size: int) -> list[np.ndarray]:
    """Every size x size window of a (C, L, L) image, and its mirror image."""
    span = image.shape[-1] - size + 1
    found = []
    for top in range(span):
        for left in range(span):
            window = image[:, top : top + size, left : left + size]
            found += [window, window[..., ::-1]]
    return found


def test_crop_and_flip_takes_windows_of_each_image_and_mirrors_about_half():
    images = np.random.default_rng(0).integers(0, 256, (400, 1, 6, 6), dtype=np.uint8)
    out = crop_and_flip(images, 4, flip=True, seed=3)
    assert out.shape == (400, 1, 4, 4) and out.dtype == np.float32
    mirrored = 0
    for image, crop in zip(images, out, strict=True):
        as_uint8 = np.round(crop * 255).astype(np.uint8)
        matches = [i for i, w in enumerate(windows(image, 4)) if np.array_equal(w, as_uint8)]
        assert matches, "each crop is a window of its own image"
        mirrored += matches[0] % 2
    assert 140 < mirrored < 260  # Binomial(400, 1/2): 10 standard deviations
    torch.testing.assert_close(out, crop_and_flip(images, 4, flip=True, seed=3))
    no_flip = crop_and_flip(images, 4, flip=False, seed=3)
    for image, crop in zip(images[:50], no_flip[:50], strict=True):
        as_uint8 = np.round(crop * 255).astype(np.uint8)
        assert any(np.array_equal(w, as_uint8) for w in windows(image, 4)[::2])


def test_centre_crop_takes_the_middle():
    images = torch.arange(36).view(1, 1, 6, 6)
    assert centre_crop(images, 2).flatten().tolist() == [14, 15, 20, 21]


# ---- the epoch order ------------------------------------------------------------------------
def test_each_epoch_covers_the_larger_domain_once_and_the_smaller_at_least_once():
    order = UnpairedEpochBatches(7, 10, batch_size=2, drop_last=False, seed=0)
    batches = [b.indices for b in order]
    assert len(order) == len(batches) == 5
    a = [i for batch in batches for i in batch.a]
    b = [i for batch in batches for i in batch.b]
    assert sorted(b) == list(range(10))
    assert set(a) == set(range(7)) and len(a) == 10
    assert all(len(batch.a) == len(batch.b) for batch in batches)


def test_the_domains_are_ordered_independently():
    """Domain A's order does not depend on domain B (its size), nor B's on A."""
    first = [b.indices for b in UnpairedEpochBatches(8, 8, 2, True, seed=5)]
    other_b = [b.indices for b in UnpairedEpochBatches(8, 3, 2, True, seed=5)]
    assert [b.a for b in first] == [b.a for b in other_b]
    assert [b.b for b in first] != [b.a for b in first]
    next_epoch = UnpairedEpochBatches(8, 8, 2, True, seed=5)
    next_epoch.set_epoch(1)
    assert [b.indices for b in next_epoch] != first


def test_the_order_resumes_mid_epoch_and_shards_over_ranks():
    order = UnpairedEpochBatches(9, 12, 2, True, seed=1)
    full = [tuple(b) for b in order]
    order.resume(0, 4)
    assert [tuple(b) for b in order] == full[4:]
    ranks = [UnpairedEpochBatches(9, 12, 2, True, seed=1, rank=r, world_size=2) for r in (0, 1)]
    shards = [[b.indices.b for b in r] for r in ranks]
    assert len(shards[0]) == len(shards[1]) == 3
    assert not {i for x in shards[0] for i in x} & {i for x in shards[1] for i in x}


# ---- the CycleGAN folder layout -------------------------------------------------------------
def write_layout(root, sizes=(3, 4, 2, 2), size=10, gray_in="trainB"):
    """<root>/toy/{trainA, trainB, testA, testB} with sizes[i] images each; one gray image in
    ``gray_in``. Image k of folder f is uniform with a value that names it."""
    folders = ["trainA", "trainB", "testA", "testB"]
    for f, (folder, n) in enumerate(zip(folders, sizes, strict=True)):
        (root / "toy" / folder).mkdir(parents=True)
        for k in range(n):
            value = 10 * f + k
            if folder == gray_in and k == 0:
                Image.new("L", (size, size), value).save(root / "toy" / folder / f"{k}.png")
            else:
                colour = (value, value + 100, value + 150)
                Image.new("RGB", (size, size), colour).save(root / "toy" / folder / f"{k}.jpg")


def test_the_folder_layout_loads_with_gray_files_as_rgb(tmp_path):
    write_layout(tmp_path)
    source = UnpairedFolder(str(tmp_path), "toy", load_size=8, crop_size=6)
    source.prepare()
    train_b = source.load_domain("train", "B")
    assert train_b.shape == (4, 3, 8, 8) and train_b.dtype == torch.uint8
    gray = train_b[0]  # the gray file: three equal channels
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert int(gray[0, 4, 4]) == 10
    test = source.load("test")
    assert test.images.shape == (4, 3, 6, 6) and test.labels.tolist() == [0, 0, 1, 1]


def test_unreadable_files_are_all_listed(tmp_path):
    write_layout(tmp_path)
    for name in ("bad1.jpg", "bad2.png"):
        (tmp_path / "toy" / "trainA" / name).write_bytes(b"not an image")
    source = UnpairedFolder(str(tmp_path), "toy", load_size=8, crop_size=6)
    with pytest.raises(ValueError, match="2 of 5 files could not be read") as info:
        source.load_domain("train", "A")
    assert "bad1.jpg" in str(info.value) and "bad2.png" in str(info.value)


def test_missing_folders_are_named_with_the_fix(tmp_path):
    write_layout(tmp_path)
    (tmp_path / "toy" / "testB").rename(tmp_path / "toy" / "elsewhere")
    with pytest.raises(DataNotFoundError, match="1 of 4 folders") as info:
        UnpairedFolder(str(tmp_path), "toy", 8, 6).prepare()
    assert str(tmp_path / "toy" / "testB") in str(info.value) and "GENLAB_DATA" in str(info.value)
    with pytest.raises(DataNotFoundError, match=r"data\.source\.download=true"):
        UnpairedFolder(str(tmp_path), "horse2zebra", 8, 6).prepare()


def test_decoded_images_are_cached_on_disk_and_renewed_when_a_file_changes(tmp_path, monkeypatch):
    write_layout(tmp_path)
    cache = tmp_path / "cache"
    first = UnpairedFolder(str(tmp_path), "toy", 8, 6, cache_dir=str(cache)).load_domain(
        "test", "A"
    )
    assert len(list((cache / "decoded").iterdir())) == 1

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(unpaired_sources, "load_images", no_decoding)
    again = UnpairedFolder(str(tmp_path), "toy", 8, 6, cache_dir=str(cache)).load_domain(
        "test", "A"
    )
    assert torch.equal(first, again)
    monkeypatch.undo()
    Image.new("RGB", (10, 10), (1, 2, 3)).save(tmp_path / "toy" / "testA" / "0.jpg")
    changed = UnpairedFolder(str(tmp_path), "toy", 8, 6, cache_dir=str(cache))
    assert not torch.equal(changed.load_domain("test", "A"), first)
    assert len(list((cache / "decoded").iterdir())) == 2


# ---- the procedural pair --------------------------------------------------------------------
def test_shapes_pair_draws_filled_and_outlined_shapes():
    centre_square = torch.tensor([[0.0, 1.0, 0.0, 0.5, 0.5]])  # shape, scale, rotation, x, y
    filled, outlined = render(centre_square, 32), render(centre_square, 32, outline_px=2.0)
    assert int(filled[0, 0, 16, 16]) == 255 and int(outlined[0, 0, 16, 16]) == 0
    assert 0 < int((outlined > 127).sum()) < int((filled > 127).sum())
    # the outline runs along the filled square's edge
    edge = (filled[0, 0] > 0) & (filled[0, 0] < 255)
    assert bool((outlined[0, 0][edge] > 0).all())
    source = ShapesPair(num_train=50, num_test=10, image_size=32)
    a, b = source.load_domain("train", "A"), source.load_domain("train", "B")
    assert a.shape == b.shape == (50, 1, 32, 32)
    assert float(b.float().mean()) < 0.8 * float(a.float().mean())
    assert torch.equal(a, ShapesPair(num_train=50, num_test=10).load_domain("train", "A"))
    assert source.load("test").labels.tolist() == [0] * 10 + [1] * 10


# ---- the DataModule -------------------------------------------------------------------------
def make_datamodule(**kwargs) -> UnpairedDataModule:
    defaults = dict(
        source=ShapesPair(num_train=30, num_test=6, image_size=32),
        channels=1,
        image_size=32,
        batch_size=4,
        order_seed=0,
    )
    datamodule = UnpairedDataModule(**{**defaults, **kwargs})
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def test_train_batches_are_pairs_of_float_images_and_resume_exactly():
    datamodule = make_datamodule()
    batches = list(datamodule.train_dataloader())
    assert len(batches) == 7
    a, b = batches[0]
    assert a.shape == b.shape == (4, 1, 32, 32) and a.dtype == torch.float32
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    again = make_datamodule()
    again.resume_at(0, 5)
    resumed = list(again.train_dataloader())
    assert len(resumed) == 2
    for (x, y), (u, v) in zip(batches[5:], resumed, strict=True):
        assert torch.equal(x, u) and torch.equal(y, v)


def test_random_crops_come_from_the_load_size_and_test_images_are_centre_crops(tmp_path):
    write_layout(tmp_path, sizes=(4, 4, 2, 3))
    source = UnpairedFolder(str(tmp_path), "toy", load_size=10, crop_size=8)
    datamodule = make_datamodule(
        source=source, channels=3, image_size=8, load_size=10, batch_size=2
    )
    a, _ = next(iter(datamodule.train_dataloader()))
    assert a.shape == (2, 3, 8, 8)
    test_b = datamodule.test_images("B")
    assert test_b.shape == (3, 3, 8, 8)
    loaded = datamodule.domain("test", "B")
    torch.testing.assert_close(test_b, loaded[:, :, 1:9, 1:9].float() / 255)
    pictures_a, pictures_b = datamodule.sample_batch("test", 2)
    assert pictures_a.shape == pictures_b.shape == (2, 3, 8, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"load_size": 16}, r"data\.load_size=16 is invalid: must be >= data\.image_size=32"),
        ({"channels": 2}, r"data\.channels=2"),
        ({"channels": 3}, r"data\.channels=3"),
        ({"batch_size": 31}, r"data\.batch_size=31"),
    ],
)
def test_bad_settings_are_refused_with_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_datamodule(**kwargs)


def test_the_real_horse2zebra_loads(shared_data_dir, tmp_path):
    if not (shared_data_dir / "horse2zebra").is_dir():
        pytest.skip("horse2zebra is absent")
    source = UnpairedFolder(str(shared_data_dir), "horse2zebra", load_size=32, crop_size=32)
    source.prepare()
    counts = {f"{s}{d}": len(source.load_domain(s, d)) for s in ("test", "train") for d in "AB"}
    assert counts == {"testA": 120, "testB": 140, "trainA": 1067, "trainB": 1334}
    train_b = source.load_domain("train", "B")
    assert train_b.shape[1] == 3
    gray = (train_b[:, 0] == train_b[:, 1]).all(dim=(1, 2)) & (train_b[:, 1] == train_b[:, 2]).all(
        dim=(1, 2)
    )
    assert int(gray.sum()) >= 7  # the seven gray files, converted to RGB
