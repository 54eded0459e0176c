import gzip

import numpy as np
import pytest
import torch

from genlab.data.download import CorruptFileError
from genlab.data.idx import MNIST, FashionMNIST, read_idx


def test_round_trip_exact(tmp_path, write_idx_dataset):
    written = write_idx_dataset(tmp_path / "mnist", {"train": 5, "test": 3}, seed=7)
    source = MNIST(str(tmp_path))
    source.prepare()
    for split, (images, labels) in written.items():
        arrays = source.load(split)
        assert arrays.images.shape == (len(images), 1, 28, 28)
        assert torch.equal(arrays.images[:, 0], torch.from_numpy(images))
        assert arrays.labels.dtype == torch.int64
        assert arrays.labels.tolist() == labels.tolist()


def test_fashion_reads_its_own_folder(tmp_path, write_idx_dataset):
    written = write_idx_dataset(tmp_path / "fashion_mnist", {"train": 4, "test": 2}, seed=1)
    arrays = FashionMNIST(str(tmp_path)).load("test")
    assert torch.equal(arrays.images[:, 0], torch.from_numpy(written["test"][0]))


@pytest.mark.parametrize("type_byte", [0x08, 0x0C, 0x0D])
def test_read_idx_dtypes_come_back_native(tmp_path, write_idx, type_byte):
    array = np.arange(24).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array, type_byte)
    result = read_idx(tmp_path / "a.gz")
    assert result.shape == (2, 3, 4) and result.dtype.isnative
    assert (result == array).all()


def _write_raw(path, payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(payload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(4), r"shape \(5,\)"),  # truncated
        (bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes(4), r"shape \(3,\)"),  # extra byte
        (bytes([0, 0, 7, 1]) + (3).to_bytes(4, "big") + bytes(3), "magic number 00000701"),
        (bytes([0, 0, 8, 3]) + bytes(4), "file ends early"),
        (b"", "magic number"),
    ],
)
def test_corrupt_payload_names_the_file(tmp_path, payload, reason):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    _write_raw(path, payload)
    with pytest.raises(CorruptFileError, match=reason) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "download=true" in str(info.value)


def test_broken_gzip_names_the_file(tmp_path, write_idx):
    path = tmp_path / "images.gz"
    write_idx(path, np.zeros((50, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-20])  # cut the gzip stream
    with pytest.raises(CorruptFileError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(CorruptFileError, match="gzip"):
        read_idx(path)


def test_label_count_mismatch(tmp_path, write_idx_dataset, write_idx):
    write_idx_dataset(tmp_path / "mnist", {"train": 5, "test": 3}, seed=0)
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    with pytest.raises(CorruptFileError, match=r"t10k-labels.*labels of shape \(2,\) for 3 images"):
        MNIST(str(tmp_path)).load("test")
