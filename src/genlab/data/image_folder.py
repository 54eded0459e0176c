"""Any folder of image files, resized and centre-cropped into memory once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from genlab.data.arrays import SPLITS, ImageArrays, check_split, holdout_split
from genlab.data.download import DataNotFoundError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def find_images(directory: Path) -> list[Path]:
    """Image files (by EXTENSIONS, any case) anywhere under ``directory``, sorted by path."""
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def load_images(paths: list[Path], image_size: int, channels: int) -> torch.Tensor:
    """Decode, resize the shorter side to image_size, centre-crop and convert to L (1 channel)
    or RGB (3 channels): uint8 (N, C, S, S). Raises one ValueError listing every file that
    could not be read."""
    mode = "L" if channels == 1 else "RGB"
    size = (image_size, image_size)
    out = np.empty((len(paths), image_size, image_size, channels), dtype=np.uint8)
    failures = []
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img.draft(mode, size)  # JPEG: decode at a reduced scale
                fitted = ImageOps.fit(img.convert(mode), size, Image.Resampling.BICUBIC)
                out[i] = np.asarray(fitted).reshape(image_size, image_size, channels)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            failures.append(f"  {path}: {err}")
    if failures:
        raise ValueError(
            f"{len(failures)} of {len(paths)} files could not be read as images "
            "(delete or fix them):\n" + "\n".join(failures)
        )
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (N, C, S, S)


class ImageFolder:
    """Unlabelled images from ``root``: ``root/train_subdir`` and ``root/test_subdir`` when both
    exist, otherwise every image under ``root`` with ``test_fraction`` of them (chosen by
    ``seed``) held out as the test split. Labels are -1."""

    def __init__(
        self,
        root: str,
        image_size: int,
        channels: int = 3,
        train_subdir: str | None = "train",
        test_subdir: str | None = "test",
        test_fraction: float = 0.1,
        seed: int = 0,
    ):
        if channels not in (1, 3):
            raise ValueError(f"data.source.channels={channels} must be 1 (gray) or 3 (RGB)")
        if image_size < 1:
            raise ValueError(f"data.source.image_size={image_size} must be >= 1")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"data.source.test_fraction={test_fraction} must be in (0, 1)")
        self.root = Path(root).expanduser()
        self.name = self.root.name or "image_folder"
        self.image_size = image_size
        self.channels = channels
        self.subdirs = {"train": train_subdir, "test": test_subdir}
        self.test_fraction = test_fraction
        self.seed = seed

    def prepare(self) -> None:
        """Check that the folder holds images for both splits."""
        for split in SPLITS:
            self._files(split)

    def load(self, split: str) -> ImageArrays:
        """The split as uint8 (N, C, S, S) images, labels -1."""
        check_split(self.name, split)
        images = load_images(self._files(split), self.image_size, self.channels)
        return ImageArrays(images, torch.full((images.shape[0],), -1, dtype=torch.int64))

    def _files(self, split: str) -> list[Path]:
        if not self.root.is_dir():
            raise DataNotFoundError(
                f"{self.name}: image folder {self.root} does not exist; point data.source.root "
                "(or paths.data_dir / the GENLAB_DATA environment variable) at a folder of images"
            )
        dirs = {k: self.root / d for k, d in self.subdirs.items() if d is not None}
        if len(dirs) == 2 and all(d.is_dir() for d in dirs.values()):
            files = find_images(dirs[split])
            if not files:
                raise ValueError(
                    f"{self.name}: no {'/'.join(EXTENSIONS)} files under {dirs[split]}"
                )
            return files
        files = find_images(self.root)
        if len(files) < 2:
            raise ValueError(
                f"{self.name}: found {len(files)} {'/'.join(EXTENSIONS)} files under {self.root}; "
                "need at least 2 to hold out a test split"
            )
        holdout = min(max(1, round(self.test_fraction * len(files))), len(files) - 1)
        train, test = holdout_split(len(files), holdout, self.seed)
        return [files[i] for i in (train if split == "train" else test).tolist()]
