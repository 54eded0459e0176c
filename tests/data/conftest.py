"""Tiny data sets in the official on-disk layouts, written by the tests themselves.

The writers are handed to tests as fixtures (``write_idx(path, array)`` and so on).
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.data.idx import FILES


def _write_idx(path: Path, array: np.ndarray, type_byte: int = 0x08) -> None:
    """Write ``array`` as a gzipped idx file (big-endian payload)."""
    dtypes = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(dtypes[type_byte]).tobytes())


def _write_idx_dataset(directory: Path, sizes: dict[str, int], seed: int) -> dict[str, tuple]:
    """Four idx files (28x28 images, labels 0..9) as MNIST names them; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in sizes.items():
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        images_file, labels_file = FILES[split]
        _write_idx(directory / images_file, images)
        _write_idx(directory / labels_file, labels)
        arrays[split] = (images, labels)
    return arrays


def _cifar_rows(hwc: np.ndarray) -> np.ndarray:
    """Official row layout from (N, 32, 32, 3) images: 1024 red, 1024 green, 1024 blue values,
    each plane row-major."""
    planes = [hwc[..., c].reshape(len(hwc), 1024) for c in range(3)]
    return np.concatenate(planes, axis=1)  # (N, 3072)


def _write_cifar(directory: Path, per_batch: int, seed: int) -> dict[str, np.ndarray]:
    """The six official batch files (python dicts with bytes keys, pickle protocol 2) in
    ``directory``; returns {batch name: (N, 32, 32, 3) images} with labels i % 10."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        hwc = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        batch = {
            b"batch_label": name.encode(),
            b"labels": [i % 10 for i in range(per_batch)],
            b"data": _cifar_rows(hwc),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)],
        }
        with open(directory / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        written[name] = hwc
    return written


def _write_image(path: Path, array: np.ndarray) -> None:
    """Save an (H, W) or (H, W, 3) uint8 array with PIL, format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A data root holding tiny mnist/, fashion_mnist/, cifar10/ and images/ (6 PNGs)."""
    _write_idx_dataset(tmp_path / "mnist", {"train": 40, "test": 12}, seed=0)
    _write_idx_dataset(tmp_path / "fashion_mnist", {"train": 40, "test": 12}, seed=1)
    _write_cifar(tmp_path / "cifar10" / "cifar-10-batches-py", per_batch=8, seed=2)
    rng = np.random.default_rng(3)
    for i in range(6):
        _write_image(tmp_path / "images" / f"{i}.png", rng.integers(0, 256, (20, 24, 3), np.uint8))
    return tmp_path


@pytest.fixture
def write_idx():
    return _write_idx


@pytest.fixture
def write_idx_dataset():
    return _write_idx_dataset


@pytest.fixture
def write_cifar():
    return _write_cifar


@pytest.fixture
def write_image():
    return _write_image
