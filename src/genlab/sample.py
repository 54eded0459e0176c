"""``genlab-sample RUN_DIR --num-samples N --out FILE.npz``: draw images from a trained run.

The model is rebuilt from the run's saved config and its checkpoint (``last.ckpt``; ``--ckpt
best`` the best-of-run model, or a path); ``images`` in the .npz file are uint8 (N, H, W, C),
plus ``labels`` (N,) for class-conditional models.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import lightning as L
import numpy as np

from genlab.errors import run_reporting_user_errors
from genlab.metrics.evaluate import generate
from genlab.runs import checkpoint_path, load_model, load_run_config
from genlab.utils.io import atomic_write_bytes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="genlab-sample", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a genlab-train run directory")
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--out", type=Path, required=True, help="output .npz file")
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
    return args


def sample_run(argv: list[str] | None = None) -> Path:
    """Run genlab-sample on command-line arguments; returns the .npz path."""
    args = parse_args(argv)
    cfg = load_run_config(args.run_dir)
    model = load_model(cfg, checkpoint_path(args.run_dir, args.ckpt), device=args.device)
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
