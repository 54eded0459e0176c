"""``genlab-sample RUN_DIR --num-samples N --out FILE.npz``: draw images from a trained run;
``genlab-sample RUN_DIR --input DIR --direction AtoB --out DIR2``: translate a folder of images
with a translation model (CycleGAN).

The model is rebuilt from the run's saved config and its checkpoint (``last.ckpt``; ``--ckpt
best`` the best-of-run model, or a path). Samples: ``images`` in the .npz file are uint8
(N, H, W, C), plus ``labels`` (N,) for class-conditional models. Translations: every image file
under DIR (any depth) is resized (shorter side) and centre-cropped to the trained size,
translated, and written to DIR2 as a PNG at the same relative path.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import lightning as L
import numpy as np

from genlab.data.image_folder import EXTENSIONS, find_images, load_images
from genlab.errors import UsageError, run_reporting_user_errors
from genlab.metrics.evaluate import generate
from genlab.metrics.translation import DIRECTIONS, Translator, translate_images
from genlab.runs import checkpoint_path, load_model, load_run_config
from genlab.utils.images import save_png
from genlab.utils.io import atomic_write_bytes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="genlab-sample", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a genlab-train run directory")
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument(
        "--out", type=Path, required=True, help="output .npz file (a folder with --input)"
    )
    parser.add_argument("--input", type=Path, default=None, help="images to translate (folder)")
    parser.add_argument(
        "--direction", choices=DIRECTIONS, default=None, help="with --input: AtoB or BtoA"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ckpt", default="last", help="last (default), best (the best-of-run model) or a path"
    )
    parser.add_argument("--label", type=int, default=None, help="class, for conditional models")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.num_samples < 1:
        parser.error(f"--num-samples={args.num_samples} must be >= 1")
    if (args.input is None) != (args.direction is None):
        parser.error("--input DIR and --direction AtoB|BtoA go together (translation)")
    if args.input is not None and not args.input.is_dir():
        parser.error(f"--input {args.input} is not a folder")
    return args


def translate_folder(
    model: Translator, source: Path, out: Path, direction: str, batch_size: int
) -> list[Path]:
    """Translate every image under ``source`` (resized / centre-cropped to the model's size) and
    write PNGs under ``out`` at the same relative paths; returns the paths written."""
    files = find_images(source)
    if not files:
        raise UsageError(f"--input {source}: no {'/'.join(EXTENSIONS)} files")
    targets = [out / f.relative_to(source).with_suffix(".png") for f in files]
    clashes = sorted({str(t) for t in targets if targets.count(t) > 1})
    if clashes:
        raise UsageError(f"--input {source}: several files would be written to {clashes[0]}")
    channels, size, _ = model.image_shape
    written = []
    for start in range(0, len(files), batch_size):
        chunk = load_images(files[start : start + batch_size], size, channels).float() / 255
        translated = translate_images(model, chunk, direction, batch_size)  # (B, C, S, S)
        for image, target in zip(translated, targets[start : start + batch_size], strict=True):
            grid = (image * 255).round().byte().permute(1, 2, 0).numpy()  # (S, S, C)
            written.append(save_png(target, grid))
    return written


def sample_run(argv: list[str] | None = None) -> Path:
    """Run genlab-sample on command-line arguments; returns the .npz path (the output folder of
    translations)."""
    args = parse_args(argv)
    cfg = load_run_config(args.run_dir)
    model = load_model(cfg, checkpoint_path(args.run_dir, args.ckpt), device=args.device)
    translates = callable(getattr(model, "translate", None))
    if args.input is not None:
        if not translates:
            raise UsageError(
                f"--input: the model of {args.run_dir} ({type(model).__name__}) does not "
                "translate images; --input / --direction need a translation run (model=cyclegan)"
            )
        written = translate_folder(model, args.input, args.out, args.direction, args.batch_size)
        print(f"wrote {len(written)} {args.direction} translations to {args.out}")
        return args.out
    if translates:
        raise UsageError(
            f"the model of {args.run_dir} ({type(model).__name__}) translates images rather than "
            "sampling them: pass --input DIR --direction AtoB|BtoA --out DIR2"
        )
    L.seed_everything(args.seed, verbose=False)
    images, labels = generate(model, args.num_samples, args.batch_size, label=args.label)
    arrays = {"images": (images * 255).round().byte().permute(0, 2, 3, 1).numpy()}  # (N, H, W, C)
    if labels is not None:
        arrays["labels"] = labels.numpy()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"wrote {args.num_samples} samples to {args.out}")
    return args.out


def main() -> None:
    run_reporting_user_errors(sample_run)


if __name__ == "__main__":
    main()
