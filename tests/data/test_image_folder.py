import numpy as np
import pytest
import torch

from genlab.data.download import DataNotFoundError
from genlab.data.image_folder import ImageFolder


def _flat(value: int, h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def test_resize_crop_channels_and_recursion(tmp_path, write_image):
    write_image(tmp_path / "train" / "wide.png", _flat(10, 20, 40))  # H 20, W 40
    write_image(tmp_path / "train" / "nested" / "tall.JPG", _flat(200, 60, 30))
    (tmp_path / "train" / "notes.txt").write_text("not an image")
    write_image(tmp_path / "test" / "gray.bmp", np.full((16, 16), 99, np.uint8))
    for channels in (1, 3):
        source = ImageFolder(str(tmp_path), image_size=12, channels=channels)
        train, test = source.load("train"), source.load("test")
        assert train.images.shape == (2, channels, 12, 12) and train.images.dtype == torch.uint8
        assert test.images.shape == (1, channels, 12, 12) and (test.images == 99).all()
        assert train.labels.tolist() == [-1, -1] and source.name == tmp_path.name


def test_centre_crop_keeps_the_middle(tmp_path, write_image):
    stripes = np.concatenate([_flat(0, 16, 16), _flat(255, 16, 16), _flat(0, 16, 16)], axis=1)
    write_image(tmp_path / "train" / "a.png", stripes)  # 16 x 48: black | white | black
    write_image(tmp_path / "test" / "b.png", stripes)
    images = ImageFolder(str(tmp_path), image_size=16).load("train").images
    assert images.shape == (1, 3, 16, 16)
    assert (images[..., 2:-2] == 255).all()  # only the white middle survives the crop


def test_train_test_subdirs(tmp_path, write_image):
    for i in range(3):
        write_image(tmp_path / "trainA" / f"{i}.png", _flat(i, 8, 8))
    for i in range(2):
        write_image(tmp_path / "testA" / f"{i}.png", _flat(100 + i, 8, 8))
    source = ImageFolder(str(tmp_path), 8, train_subdir="trainA", test_subdir="testA")
    source.prepare()
    assert source.load("train").images[:, 0, 0, 0].tolist() == [0, 1, 2]
    assert source.load("test").images[:, 0, 0, 0].tolist() == [100, 101]


def test_held_out_split_is_seeded_and_disjoint(tmp_path, write_image):
    for i in range(20):
        write_image(tmp_path / f"{i:02d}.png", _flat(i, 8, 8))

    def ids(seed: int, split: str) -> list[int]:
        source = ImageFolder(str(tmp_path), 8, test_fraction=0.25, seed=seed)
        return source.load(split).images[:, 0, 0, 0].tolist()

    train, test = ids(0, "train"), ids(0, "test")
    assert len(train) == 15 and len(test) == 5
    assert sorted(train + test) == list(range(20))
    assert ids(0, "test") == test and ids(1, "test") != test


def test_unreadable_files_are_all_listed(tmp_path, write_image):
    write_image(tmp_path / "train" / "good.png", _flat(1, 8, 8))
    (tmp_path / "train" / "broken.png").write_bytes(b"\x89PNG garbage")
    write_image(tmp_path / "train" / "cut.jpg", _flat(1, 64, 64))
    (tmp_path / "train" / "cut.jpg").write_bytes(
        (tmp_path / "train" / "cut.jpg").read_bytes()[:100]
    )
    write_image(tmp_path / "test" / "fine.png", _flat(1, 8, 8))
    source = ImageFolder(str(tmp_path), 8)
    with pytest.raises(ValueError, match="2 of 3 files could not be read") as info:
        source.load("train")
    message = str(info.value)
    assert "broken.png" in message and "cut.jpg" in message and "good.png" not in message
    assert len(source.load("test")) == 1


def test_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"found 0 .*png.* files under .*empty"):
        ImageFolder(str(tmp_path / "empty"), 8).prepare()
    with pytest.raises(DataNotFoundError, match="does not exist"):
        ImageFolder(str(tmp_path / "nowhere"), 8).prepare()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 2}, "data.source.channels=2"),
        ({"image_size": 0}, "data.source.image_size=0"),
        ({"test_fraction": 1.0}, "data.source.test_fraction=1.0"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageFolder(str(tmp_path), **{"image_size": 8, **kwargs})


def test_prepare_checks_both_subdirs(tmp_path, write_image):
    write_image(tmp_path / "train" / "a.png", _flat(1, 8, 8))
    (tmp_path / "test").mkdir()
    with pytest.raises(ValueError, match=r"no .*png.* files under .*test"):
        ImageFolder(str(tmp_path), 8).prepare()
