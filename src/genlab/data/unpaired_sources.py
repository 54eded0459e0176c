"""Two-domain sources for ``genlab.data.unpaired``: the CycleGAN folder layout (horse2zebra and
the other official sets, downloadable) and a procedural pair made by genlab (filled vs outlined
shapes)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data.arrays import ImageArrays, check_split, derive_seed
from genlab.data.download import DataNotFoundError, download_file, extract_zip
from genlab.data.image_folder import EXTENSIONS, find_images, load_images
from genlab.data.shapes import IMAGE_SIZES, render, sample_factors
from genlab.data.unpaired import DOMAINS, check_domain, labelled_domains
from genlab.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)

# The official CycleGAN archives (Zhu et al.), with the sha256 and size recorded by
# tensorflow_datasets (url_checksums/cycle_gan.txt); the Berkeley server moved from
# people.eecs.berkeley.edu/~taesung_park to efrosgans.eecs.berkeley.edu.
MIRRORS = (
    "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/",
    "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/",
)
ARCHIVES = {
    "apple2orange": "845a191e9af8926408ea597001cd03a452e3300a1f44a79fe329b3d59f6e3eb8",
    "cezanne2photo": "3a6c10ca21f9485862f1cbd707744b9dc258954a04631271d23a3605eeb63cff",
    "facades": "9a31ebf3a31b9b5cd195dd5bf62e9308e00cb94604d1019e3889ac84248695c0",
    "horse2zebra": "a74d9d392eecca9966b51287a76ca126af473d9de4f3e8fc0e9cda08fa1730a1",
    "iphone2dslr_flower": "8fcb5e374d631b107e1d961b8c4cd0a186aa2a4ff3e279923f4c426128de7113",
    "monet2photo": "88f91b00fc228f97c9411fbf1880ec1d119c98f1722e4cfcfaa2fb35fac05b04",
    "summer2winter_yosemite": "167fe1726807a9d22bd106b4a6c0bd7953b688af924ac1bf967439c4961e49f9",
    "ukiyoe2photo": "02a2a2fb5ecf425ca1bf86aca7304377da64a2a1d3b86df54eb65e4068bf3b08",
    "vangogh2photo": "362c3473e70be0944bda08d49d660eafdc2854df55d697835b8186d1d79caaff",
}
DECODE_VERSION = 1  # part of the decoded-cache key: bump when load_images changes its output


def decoded_cache_path(
    cache_dir: str | Path, name: str, folder: Path, files: list[Path], size: int, channels: int
) -> Path:
    """Where the decoded images of ``files`` live: the key hashes every file's name, size and
    modification time, so an edited or replaced file makes a new cache entry."""
    stats = [
        (p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    ]
    text = json.dumps([DECODE_VERSION, size, channels, stats])
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Path(cache_dir) / "decoded" / f"{name}-{folder.name}-{channels}x{size}-{digest}.npy"


def load_folder(folder: Path, name: str, size: int, channels: int, cache_dir: str | None) -> Tensor:
    """Every image under ``folder`` resized / centre-cropped to size x size: uint8 (N, C, S, S),
    decoded once and kept in ``<cache_dir>/decoded/`` (no disk cache when cache_dir is None)."""
    files = find_images(folder)
    if not files:
        raise ValueError(f"{name}: no {'/'.join(EXTENSIONS)} files under {folder}")
    path = (
        None
        if cache_dir is None
        else decoded_cache_path(cache_dir, name, folder, files, size, channels)
    )
    if path is not None and path.is_file():
        try:
            images = np.load(path, allow_pickle=False)
            if images.shape == (len(files), channels, size, size) and images.dtype == np.uint8:
                return torch.from_numpy(images)
        except (OSError, ValueError) as error:
            log.warning("decoded-image cache %s is unreadable (%s): decoding again", path, error)
    images = load_images(files, size, channels)  # (N, C, S, S)
    if path is not None:
        buffer = io.BytesIO()
        np.save(buffer, images.numpy(), allow_pickle=False)
        atomic_write_bytes(path, buffer.getvalue())
    return images


class UnpairedFolder:
    """The CycleGAN data set layout: ``<root>/<name>/{trainA, trainB, testA, testB}``, any image
    files (gray ones converted to RGB for 3 channels), resized (shorter side) and centre-cropped
    to ``load_size`` once; ``download=true`` fetches the official zip of a known ``name``
    (``ARCHIVES``). ``crop_size`` is the centre crop of ``load`` (the evaluation view)."""

    def __init__(
        self,
        root: str,
        name: str,
        load_size: int,
        crop_size: int,
        channels: int = 3,
        download: bool = False,
        cache_dir: str | None = None,
    ):
        if channels not in (1, 3):
            raise ValueError(f"data.source.channels={channels} must be 1 (gray) or 3 (RGB)")
        if not 1 <= crop_size <= load_size:
            raise ValueError(
                f"data.source.crop_size={crop_size} must be in [1, load_size={load_size}]"
            )
        if download and name not in ARCHIVES:
            raise ValueError(
                f"data.source.download=true: no official archive is known for name={name!r}; "
                f"known: {', '.join(ARCHIVES)} (or put the folders there yourself)"
            )
        self.root = Path(root).expanduser()
        self.name = name
        self.directory = self.root / name
        self.load_size = load_size
        self.crop_size = crop_size
        self.channels = channels
        self.download = download
        self.cache_dir = cache_dir
        self._loaded: dict[tuple[str, str], Tensor] = {}

    def _folders(self) -> dict[tuple[str, str], Path]:
        return {(s, d): self.directory / f"{s}{d}" for s in ("train", "test") for d in DOMAINS}

    def prepare(self) -> None:
        """Check the four folders exist, downloading and extracting the archive first if
        ``download`` is set and any is missing."""
        folders = self._folders()
        if self.download and not all(f.is_dir() for f in folders.values()):
            archive = download_file(
                [m + f"{self.name}.zip" for m in MIRRORS],
                self.root / f"{self.name}.zip",
                ARCHIVES[self.name],
            )
            extract_zip(archive, self.root)  # the zip holds <name>/trainA/... itself
            archive.unlink()
        missing = [str(f) for f in folders.values() if not f.is_dir()]
        if missing:
            fix = (
                f"pass data.source.download=true to download {self.name}"
                if self.name in ARCHIVES
                else "create them (the CycleGAN layout)"
            )
            raise DataNotFoundError(
                f"{self.name} data not found: {len(missing)} of 4 folders are missing:\n  "
                + "\n  ".join(missing)
                + "\nSet paths.data_dir (or the GENLAB_DATA environment variable) to the folder "
                f"that holds {self.name}/, or {fix}."
            )

    def load_domain(self, split: str, domain: str) -> Tensor:
        """uint8 (N, C, L, L) images of ``<split><domain>`` at the load size (read once)."""
        check_split(self.name, split)
        check_domain(self.name, domain)
        if (split, domain) not in self._loaded:
            folder = self._folders()[split, domain]
            if not folder.is_dir():
                self.prepare()
            self._loaded[split, domain] = load_folder(
                folder, self.name, self.load_size, self.channels, self.cache_dir
            )
        return self._loaded[split, domain]

    def load(self, split: str) -> ImageArrays:
        """Both domains centre-cropped to crop_size, labelled 0 (A) and 1 (B)."""
        return labelled_domains(*(self.load_domain(split, d) for d in DOMAINS), self.crop_size)


class ShapesPair:
    """Procedural unpaired domains made by genlab: A = the dSprites-like shapes of
    ``genlab.data.shapes`` filled, B = the same kind of shapes drawn as outlines
    ``outline_px`` wide. The two domains come from independent factor draws (no pairs).
    1 channel, ``image_size`` 32 or 64, loaded at that size (no crop margin)."""

    def __init__(
        self,
        num_train: int = 2000,
        num_test: int = 200,
        image_size: int = 32,
        outline_px: float = 1.0,
        seed: int = 0,
    ):
        if image_size not in IMAGE_SIZES:
            raise ValueError(
                f"data.source.image_size={image_size} is not supported by shapes_pair; use one "
                f"of {IMAGE_SIZES}"
            )
        for key, value in (("num_train", num_train), ("num_test", num_test)):
            if value < 1:
                raise ValueError(f"data.source.{key}={value} must be >= 1")
        if not outline_px > 0:
            raise ValueError(f"data.source.outline_px={outline_px} must be > 0")
        self.name = "shapes_pair"
        self.sizes = {"train": num_train, "test": num_test}
        self.image_size = image_size
        self.outline_px = outline_px
        self.seed = seed

    def prepare(self) -> None:
        """Nothing to fetch: the images are generated when loaded."""

    def load_domain(self, split: str, domain: str) -> Tensor:
        """uint8 (N, 1, S, S): filled (A) or outlined (B) shapes."""
        check_split(self.name, split)
        check_domain(self.name, domain)
        stream = derive_seed(self.seed, f"shapes_pair/{split}{domain}")
        factors = sample_factors(self.sizes[split], torch.Generator().manual_seed(stream))
        outline = None if domain == "A" else self.outline_px
        return render(factors, self.image_size, outline_px=outline)

    def load(self, split: str) -> ImageArrays:
        """Both domains, labelled 0 (filled) and 1 (outlined)."""
        return labelled_domains(*(self.load_domain(split, d) for d in DOMAINS), self.image_size)
