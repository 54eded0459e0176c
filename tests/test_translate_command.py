"""genlab-sample --input DIR --direction AtoB|BtoA --out DIR2 on a CycleGAN run trained here."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from genlab import sample as genlab_sample
from genlab.data.image_folder import load_images
from genlab.errors import UsageError
from genlab.runs import checkpoint_path, load_model, load_run_config
from tests.test_train import run_cli

SMALL_CYCLEGAN = [
    "experiment=cyclegan_shapes",
    "data.source.num_train=40",
    "data.source.num_test=8",
    "model.generator.base_channels=4",
    "model.generator.num_blocks=1",
    "model.discriminator.base_channels=4",
]


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "cyclegan"
    run_cli(run_dir, "debug=fast", *SMALL_CYCLEGAN)
    return run_dir


@pytest.fixture
def images(tmp_path):
    """Three input images: gray 32 px, colour 48x40 px in a subfolder, gray JPEG 20 px."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
        folder / "sub" / "b.png"
    )
    Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(folder / "c.jpg")
    return folder


def test_a_folder_is_translated_to_pngs_at_the_trained_size(cyclegan_run, images, tmp_path):
    out = tmp_path / "out"
    genlab_sample.sample_run(
        [str(cyclegan_run), "--input", str(images), "--direction", "BtoA", "--out", str(out)]
    )
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["a.png", "c.png", "sub/b.png"]
    model = load_model(load_run_config(cyclegan_run), checkpoint_path(cyclegan_run))
    inputs = sorted(images.rglob("*.*"))  # a.png, c.jpg, sub/b.png
    x = load_images(inputs, 32, 1).float() / 255  # (3, 1, 32, 32)
    expected = (model.translate(x, "BtoA") * 255).round().byte()[:, 0].numpy()  # (3, 32, 32)
    for name, image in zip(["a.png", "c.png", "sub/b.png"], expected, strict=True):
        saved = np.asarray(Image.open(out / name))
        assert saved.shape == (32, 32) and np.array_equal(saved, image), name


def test_the_direction_picks_the_generator(cyclegan_run, images, tmp_path):
    for direction in ("AtoB", "BtoA"):
        out = str(tmp_path / direction)
        args = [str(cyclegan_run), "--input", str(images), "--direction", direction, "--out", out]
        genlab_sample.sample_run(args)
    a, b = (np.asarray(Image.open(tmp_path / d / "a.png")) for d in ("AtoB", "BtoA"))
    assert not np.array_equal(a, b)


def test_translation_runs_need_input_and_input_needs_direction(cyclegan_run, images, tmp_path):
    with pytest.raises(UsageError, match=r"pass --input DIR --direction AtoB\|BtoA"):
        genlab_sample.sample_run([str(cyclegan_run), "--out", str(tmp_path / "s.npz")])
    with pytest.raises(SystemExit):
        genlab_sample.sample_run([str(cyclegan_run), "--input", str(images), "--out", "x"])


def test_input_needs_a_translation_model(tmp_path, images):
    run_dir = tmp_path / "vae"
    run_cli(run_dir, "debug=fast", "data.source.num_train=1500", "data.val_size=200")
    with pytest.raises(UsageError, match="does not translate images"):
        genlab_sample.sample_run(
            [str(run_dir), "--input", str(images), "--direction", "AtoB", "--out", str(tmp_path)]
        )


def test_the_command_exits_cleanly(cyclegan_run, images, tmp_path):
    command = [sys.executable, "-m", "genlab.sample", str(cyclegan_run), "--input", str(images)]
    command += ["--direction", "AtoB", "--out", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote 3 AtoB translations" in result.stdout
    assert torch.tensor(np.asarray(Image.open(tmp_path / "out" / "a.png"))).shape == (32, 32)


def test_a_folder_without_images_is_a_user_error(cyclegan_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    command = [sys.executable, "-m", "genlab.sample", str(cyclegan_run), "--input", str(empty)]
    command += ["--direction", "AtoB", "--out", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"Error: --input {empty}: no " in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
