import os
import pickle

import numpy as np
import pytest
import torch

from genlab.data.cifar10 import CIFAR10, read_batch
from genlab.data.download import CorruptFileError


def test_channel_order_is_exact(tmp_path, write_cifar):
    written = write_cifar(tmp_path / "cifar10" / "cifar-10-batches-py", per_batch=3, seed=0)
    images, labels = read_batch(tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch")
    hwc = written["test_batch"]
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8
    assert (images == hwc.transpose(0, 3, 1, 2)).all()  # [n, c, i, j] == hwc[n, i, j, c]
    assert images[1, 2, 5, 7] == hwc[1, 5, 7, 2]  # blue plane, row 5, column 7
    assert labels.tolist() == [0, 1, 2]


def test_load_concatenates_batches_in_order(tmp_path, write_cifar):
    written = write_cifar(tmp_path / "cifar10" / "cifar-10-batches-py", per_batch=4, seed=1)
    source = CIFAR10(str(tmp_path))
    source.prepare()
    train, test = source.load("train"), source.load("test")
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    expected = np.concatenate([written[f"data_batch_{i}"] for i in range(1, 6)])
    assert torch.equal(train.images, torch.from_numpy(expected).permute(0, 3, 1, 2))
    assert train.labels.dtype == torch.int64 and train.labels.tolist() == [0, 1, 2, 3] * 5


def test_truncated_or_wrong_batch_names_the_file(tmp_path, write_cifar):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    write_cifar(folder, per_batch=4, seed=0)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CorruptFileError, match="cannot unpickle it") as info:
        CIFAR10(str(tmp_path)).load("train")
    assert str(path) in str(info.value)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(CorruptFileError, match=r"\(2, 100\)"):
        read_batch(path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CorruptFileError, match="uint8 \\(N, 3072\\)"):
        read_batch(path)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_batch_that_would_run_code_is_refused(tmp_path):
    path, marker = tmp_path / "data_batch_1", tmp_path / "pwned"
    path.write_bytes(pickle.dumps({b"data": _RunsCode(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(CorruptFileError, match=r"refusing to load posix\.system") as info:
        read_batch(path)
    assert str(path) in str(info.value) and not marker.exists()
