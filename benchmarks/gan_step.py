"""One NS-GAN training step on the Lucic MNIST networks (batch 64): genlab's GAN module under a
Lightning Trainer vs the same nets, objective and data in a hand-written plain-PyTorch loop.

    GENLAB_DATA=/path/to/data python benchmarks/gan_step.py [--out results.json]

Both loops read the same genlab data loader and make the same updates (D on a fresh batch,
then G, with D frozen during the G update). Steps are timed after ``--warmup`` untimed steps;
the two loops alternate ``--rounds`` times in one process and each reports the median of its
per-round mean step times. Goal: genlab at >= 0.95 of the plain loop's throughput.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import lightning
import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning import Callback

from genlab.data.download import DataNotFoundError
from genlab.train import CONFIG_DIR
from genlab.utils.io import atomic_write_json

GOAL = 0.95


class StepTimer(Callback):
    """Wall time of every training step (batch fetch included), after the warmup."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.times: list[float] = []
        self._last = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        if batch_idx >= self.warmup:
            self.times.append(now - self._last)
        self._last = now


def genlab_round(cfg, datamodule, steps: int, warmup: int) -> float:
    """Mean seconds per step of genlab's GAN module in a Lightning Trainer."""
    model = instantiate(cfg.model)
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=warmup + steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=datamodule)
    return statistics.mean(timer.times)


def plain_round(cfg, datamodule, steps: int, warmup: int) -> float:
    """Mean seconds per step of the same GAN in a hand-written loop."""
    model = instantiate(cfg.model)  # only to get identically built nets
    generator, discriminator = model.generator, model.discriminator
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=5e-5, betas=(0.0, 0.999))
    g_opt = torch.optim.Adam(generator.parameters(), lr=5e-5, betas=(0.0, 0.999))
    times = []
    last = time.perf_counter()
    for i, (real, _) in enumerate(datamodule.train_dataloader()):
        if i >= warmup + steps:
            break
        b = real.shape[0]
        with torch.no_grad():
            fake = generator(torch.rand(b, 64) * 2 - 1)
        d_loss = F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake)).mean()
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        discriminator.requires_grad_(False)
        g_loss = F.softplus(-discriminator(generator(torch.rand(b, 64) * 2 - 1))).mean()
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        discriminator.requires_grad_(True)
        now = time.perf_counter()
        if i >= warmup:
            times.append(now - last)
        last = now
    return statistics.mean(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GENLAB_DATA"))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "gan_step.json"
    )
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.data_dir:
        sys.exit("set GENLAB_DATA or --data-dir to the folder holding mnist/")
    os.environ["GENLAB_DATA"] = args.data_dir
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=lucic_mnist", "loss=ns"])
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    try:
        datamodule.prepare_data()
    except DataNotFoundError as error:
        sys.exit(str(error))
    datamodule.setup("fit")
    rounds: dict[str, list[float]] = {"genlab": [], "plain": []}
    for _ in range(args.rounds):
        rounds["plain"].append(plain_round(cfg, datamodule, args.steps, args.warmup))
        rounds["genlab"].append(genlab_round(cfg, datamodule, args.steps, args.warmup))
    step_s = {name: statistics.median(times) for name, times in rounds.items()}
    ratio = step_s["plain"] / step_s["genlab"]  # genlab throughput / plain throughput
    result = {
        "benchmark": "gan_step",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "setup": "Lucic MNIST nets, NS objective, batch 64, one D and one G update per step",
        "num_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "step_s": {k: round(v, 4) for k, v in step_s.items()},
        "round_step_s": {k: [round(t, 4) for t in v] for k, v in rounds.items()},
        "images_per_s": {k: round(64 / v, 1) for k, v in step_s.items()},
        "throughput_ratio_genlab_over_plain": round(ratio, 3),
        "goal_ratio": GOAL,
        "meets_goal": ratio >= GOAL,
    }
    atomic_write_json(args.out, result)
    print(
        f"step: genlab {step_s['genlab'] * 1e3:.1f} ms, plain {step_s['plain'] * 1e3:.1f} ms; "
        f"throughput ratio {ratio:.3f} (goal >= {GOAL}) -> {args.out}"
    )


if __name__ == "__main__":
    main()
