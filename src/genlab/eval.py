"""``genlab-eval RUN_DIR [overrides]``: every metric that applies to a trained run, written to
``RUN_DIR/eval.json`` and printed as a table.

Samplers get FID / IS / KID / precision / recall / density / coverage and the memorization
check (``eval.*`` settings, e.g. ``eval.num_samples=2000`` or ``eval/extractor=inception``),
against the data as the model was trained on it (binarized data: the split's seeded
binarization); models with a test step (VAE: -ELBO and IWAE NLL) are also run over the test
split. Other overrides (e.g. ``paths.data_dir=...``, ``model.sample_mode=mean``) apply to the
run's saved config. ``--ckpt best`` evaluates the run's best-of-run model (``--ckpt last``, the
default, its last checkpoint; or a path).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import OmegaConf, open_dict
from rich.console import Console

from genlab.errors import run_reporting_user_errors
from genlab.metrics.evaluate import (
    LoadedSplits,
    dataset_key,
    evaluate_samples,
    settings_from_config,
)
from genlab.runs import checkpoint_path, load_model, load_run_config
from genlab.train import CONFIG_DIR
from genlab.utils.images import make_grid, save_png
from genlab.utils.io import atomic_write_json
from genlab.utils.summary import metrics_table
from genlab.validation import ConfigError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="genlab-eval", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a genlab-train run directory")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. eval.num_samples=2000")
    parser.add_argument(
        "--ckpt", default="last", help="last (default), best (the best-of-run model) or a path"
    )
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def eval_config(run_dir: Path, overrides: list[str]):
    """The run's config, with the ``eval`` node composed afresh from conf/ and the overrides."""
    eval_overrides = [o for o in overrides if o.startswith(("eval.", "eval/", "+eval"))]
    other = [o for o in overrides if o not in eval_overrides]
    for override in other:
        if "=" not in override or "." not in override.partition("=")[0]:
            raise ConfigError(
                f"override {override!r}: genlab-eval takes eval settings (eval.KEY=VALUE, "
                "eval/extractor=NAME) and KEY.SUB=VALUE changes to the run's saved config; "
                "other config groups are fixed by the trained run"
            )
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        composed = compose(config_name="train", overrides=eval_overrides)
    cfg = load_run_config(run_dir)
    with open_dict(cfg):
        cfg.eval = composed.eval
        for override in other:
            key, _, value = override.partition("=")
            OmegaConf.update(cfg, key, OmegaConf.from_dotlist([f"v={value}"]).v, merge=True)
    return cfg


def likelihood_metrics(model: L.LightningModule, datamodule: Any) -> dict[str, float]:
    """The model's own test metrics (e.g. test/neg_elbo, test/iwae_nll) when it has a test step."""
    if not is_overridden("test_step", model):
        return {}
    trainer = L.Trainer(
        accelerator="auto", devices=1, logger=False, enable_checkpointing=False, callbacks=[]
    )
    (results,) = trainer.test(model, datamodule=datamodule, verbose=False)
    return {k: float(v) for k, v in results.items()}


def evaluate_run(argv: list[str] | None = None) -> dict[str, Any]:
    """Run genlab-eval on command-line arguments; returns what it writes to eval.json."""
    args = parse_args(argv)
    start = time.perf_counter()
    cfg = eval_config(args.run_dir, args.overrides)
    ckpt = checkpoint_path(args.run_dir, args.ckpt)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("test")
    model = load_model(cfg, ckpt, device=args.device)
    source = LoadedSplits(datamodule.source)  # each split read once, whoever asks
    extractor = instantiate(cfg.eval.extractor)(
        source=source,
        dataset_key=dataset_key(cfg.data),
        num_classes=cfg.data.num_classes,
        cache_dir=cfg.paths.cache_dir,
    )
    settings = settings_from_config(cfg.eval)
    quality, pairs = evaluate_samples(
        model, datamodule, dataset_key(cfg.data), extractor, settings, cfg.paths.cache_dir
    )
    grid_path = save_png(
        args.run_dir / "samples" / "nearest_neighbours.png", make_grid(pairs.images, pairs.nrow), 2
    )
    record: dict[str, Any] = {
        "run_dir": str(args.run_dir),
        "checkpoint": str(ckpt),
        "extractor": extractor.key,
        "extractor_test_accuracy": getattr(extractor, "test_accuracy", None),
        "num_samples": settings.num_samples,
        "split": settings.split,
        "split_settings": datamodule.eval_settings(settings.split),  # e.g. binarize
        "sample_mode": getattr(model, "sample_mode", None),  # VAE: mean or draw
        "seed": settings.seed,
        **{f"eval/{k}": v for k, v in quality.items()},
        **likelihood_metrics(model, datamodule),
        "nearest_neighbours_png": str(grid_path),
    }
    record["wall_time_s"] = round(time.perf_counter() - start, 3)
    atomic_write_json(args.run_dir / "eval.json", record)
    Console().print(metrics_table(f"genlab-eval {args.run_dir}", record))
    print(f"wrote {args.run_dir / 'eval.json'}")
    return record


def main() -> None:
    run_reporting_user_errors(evaluate_run)


if __name__ == "__main__":
    main()
