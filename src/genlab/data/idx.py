"""MNIST and Fashion-MNIST from their official gzipped idx files."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from genlab.data.arrays import ImageArrays, check_split
from genlab.data.download import CorruptFileError, ensure_files

# idx type byte -> big-endian numpy dtype
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# split -> (images file, labels file), the same names for MNIST and Fashion-MNIST
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped idx file into a native-endian array of the shape its header declares.

    Raises CorruptFileError naming the file if the gzip stream is broken, the magic number is
    wrong or the payload size does not match the header.
    """
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise CorruptFileError(path, f"not a readable gzip file ({err})") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise CorruptFileError(path, f"bad idx magic number {data[:4].hex() or '(empty)'}")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptFileError(path, f"header declares {ndim} dims but the file ends early")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise CorruptFileError(
            path, f"header declares shape {dims} ({expected} bytes) but the file has {len(data)}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # a native-endian, writable copy


class IdxSource:
    """A 28x28 gray, 10-class data set stored as four idx files under ``<root>/<folder>/``."""

    fixed_content: ClassVar[bool] = True  # official checksummed files: the root does not matter

    name: str
    folder: str
    mirrors: tuple[str, ...]
    md5s: ClassVar[dict[str, str]]  # file name -> official md5

    def __init__(self, root: str, download: bool = False):
        self.directory = Path(root).expanduser() / self.folder
        self.download = download

    def prepare(self) -> None:
        """Check the four files are present, downloading them first if ``download`` is set."""
        files = {name: ([m + name for m in self.mirrors], md5) for name, md5 in self.md5s.items()}
        ensure_files(self.name, self.directory, files, self.download)

    def load(self, split: str) -> ImageArrays:
        """The split as uint8 (N, 1, 28, 28) images with int64 (N,) labels 0..9."""
        check_split(self.name, split)
        images_file, labels_file = (self.directory / f for f in FILES[split])
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise CorruptFileError(images_file, f"expected uint8 (N, H, W), got {images.shape}")
        if labels.shape != images.shape[:1]:
            raise CorruptFileError(
                labels_file, f"labels of shape {labels.shape} for {images.shape[0]} images"
            )
        return ImageArrays(
            torch.from_numpy(images).unsqueeze(1),  # (N, 1, 28, 28)
            torch.from_numpy(labels).long(),
        )


class MNIST(IdxSource):
    """Handwritten digits: 60,000 train / 10,000 test, 28x28 gray, labels 0..9."""

    name = "mnist"
    folder = "mnist"
    mirrors = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    md5s: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }


class FashionMNIST(IdxSource):
    """Zalando clothing images: 60,000 train / 10,000 test, 28x28 gray, labels 0..9."""

    name = "fashion_mnist"
    folder = "fashion_mnist"
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    md5s: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
