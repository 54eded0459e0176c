"""CIFAR-10 from the official python-pickle batches."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from genlab.data.arrays import ImageArrays, check_split
from genlab.data.download import CorruptFileError, download_file, extract_tar, require_files

ARCHIVE = "cifar-10-python.tar.gz"
URL = f"https://www.cs.toronto.edu/~kriz/{ARCHIVE}"
MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
# the only globals a batch file may name: how numpy arrays (and Python 2 byte strings) pickle
_PICKLE_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts and strings only: a file that names any other
    callable (which could run code) is refused."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One official batch file -> (uint8 (N, 3, 32, 32) images, int64 (N,) labels).

    Each row of b"data" holds the 1024 red, then 1024 green, then 1024 blue values of a
    32x32 image in row-major order, so a reshape to (N, 3, 32, 32) is exact.
    """
    with open(path, "rb") as f:
        try:
            batch = _BatchUnpickler(f, encoding="bytes").load()
        except Exception as err:  # whatever breaks the unpickling, the file is not a batch
            raise CorruptFileError(
                path, f"cannot unpickle it ({type(err).__name__}: {err})"
            ) from err
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise CorruptFileError(path, 'expected a dict with b"data" as a uint8 (N, 3072) array')
    if data.shape[1] != 3 * 32 * 32 or labels is None or len(labels) != data.shape[0]:
        raise CorruptFileError(
            path, f'b"data" has shape {data.shape} and b"labels" does not match (N, 3072) / (N,)'
        )
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)  # (N, 3, 32, 32)


class CIFAR10:
    """60,000 32x32 colour images in 10 classes (50,000 train / 10,000 test), read from
    ``<root>/cifar10/cifar-10-batches-py/``."""

    fixed_content = True  # official checksummed files: the root does not matter
    name = "cifar10"

    def __init__(self, root: str, download: bool = False):
        self.directory = Path(root).expanduser() / "cifar10"
        self.download = download

    def _paths(self, split: str) -> list[Path]:
        return [self.directory / "cifar-10-batches-py" / name for name in BATCHES[split]]

    def prepare(self) -> None:
        """Check the six batch files are present; download and extract the archive first if
        ``download`` is set and any is missing."""
        paths = self._paths("train") + self._paths("test")
        if self.download and not all(p.is_file() for p in paths):
            archive = download_file([URL], self.directory / ARCHIVE, MD5)
            extract_tar(archive, self.directory)
            archive.unlink()  # the extracted batches are all that is read
        require_files(self.name, paths)

    def load(self, split: str) -> ImageArrays:
        """The split as uint8 (N, 3, 32, 32) images with int64 (N,) labels 0..9."""
        check_split(self.name, split)
        images, labels = zip(*(read_batch(p) for p in self._paths(split)), strict=True)
        return ImageArrays(
            torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))
        )
