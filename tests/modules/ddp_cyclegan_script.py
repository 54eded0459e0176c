"""Trains a small CycleGAN for 5 steps on two gloo processes (the image pools of 16 fill with the
4 fakes of each global batch at step 4 and swap at step 5) and
saves each rank's state_dict to <out>/rank<r>.pt and the counters to <out>/counters.json (used
by test_cyclegan_module.py).

    PYTHONPATH=<repo> python ddp_cyclegan_script.py OUT_DIR [CONFIG_OVERRIDE ...]
"""

import json
import sys
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate

from tests.helpers import compose_train_config
from tests.modules.ddp_gan_script import SaveState


def main(out: Path, overrides: list[str]) -> None:
    cfg = compose_train_config(
        [
            "experiment=cyclegan_shapes",
            "data.source.num_train=40",
            "data.source.num_test=8",
            "data.batch_size=2",
            "model.generator.base_channels=4",
            "model.generator.num_blocks=1",
            "model.discriminator.base_channels=4",
            "model.pool_size=16",
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
        limit_train_batches=5,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[SaveState(out)],
    )
    trainer.fit(model, datamodule=datamodule)
    if trainer.is_global_zero:
        counters = json.loads((out / "counters.json").read_text())
        counters["pool_queries"] = int(model.pools["A"].queries)
        (out / "counters.json").write_text(json.dumps(counters))
    torch.distributed.barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
