"""Trains a small GAN for 6 steps on two gloo processes and saves each rank's state_dict to
<out>/rank<r>.pt and the counters to <out>/counters.json (used by test_gan_module.py).

    PYTHONPATH=<repo> python ddp_gan_script.py OUT_DIR [CONFIG_OVERRIDE ...]
"""

import json
import sys
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning import Callback

from tests.helpers import compose_train_config


class SaveState(Callback):
    def __init__(self, out: Path):
        self.out = out

    def on_train_end(self, trainer, pl_module):
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        torch.save(state, self.out / f"rank{trainer.global_rank}.pt")
        if trainer.is_global_zero:
            counters = {k: int(getattr(pl_module, k)) for k in pl_module.counter_names}
            (self.out / "counters.json").write_text(json.dumps(counters))


def main(out: Path, overrides: list[str]) -> None:
    cfg = compose_train_config(
        [
            "experiment=gan_shapes_quick",
            "data.source.num_train=600",
            "data.source.num_test=50",
            "data.batch_size=8",
            *overrides,
        ]
    )
    L.seed_everything(0)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_find_unused_parameters_true",
        max_epochs=1,
        limit_train_batches=6,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[SaveState(out)],
    )
    trainer.fit(model, datamodule=datamodule)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
