"""The real MNIST and Fashion-MNIST files (skipped where the shared data folder is absent)."""

import pytest
import torch

from genlab.data.download import md5sum
from genlab.data.idx import MNIST, FashionMNIST

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize(
    ("source", "counts", "train_mean"),
    [
        (MNIST, (MNIST_TRAIN_COUNTS, MNIST_TEST_COUNTS), 0.1307),
        (FashionMNIST, ([6000] * 10, [1000] * 10), 0.2860),
    ],
)
def test_real_idx_data(shared_data_dir, source, counts, train_mean):
    if not (shared_data_dir / source.folder).is_dir():
        pytest.skip(f"{shared_data_dir / source.folder} is absent")
    data = source(str(shared_data_dir))
    data.prepare()
    for name, md5 in source.md5s.items():
        assert md5sum(shared_data_dir / source.folder / name) == md5
    for split, n, expected in zip(("train", "test"), (60000, 10000), counts, strict=True):
        arrays = data.load(split)
        assert arrays.images.shape == (n, 1, 28, 28)
        assert torch.bincount(arrays.labels, minlength=10).tolist() == expected
        if split == "train":  # the well-known normalisation mean
            assert arrays.images.float().mean() / 255 == pytest.approx(train_mean, abs=5e-4)
