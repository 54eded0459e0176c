"""Resume that loses nothing: SIGKILL a run at a random step, resume it from its last.ckpt, and
end with the parameters of the same run left alone; SIGTERM; divergence; W&B run id."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genlab.callbacks import DivergenceError, DivergenceGuard
from genlab.callbacks.divergence import first_non_finite
from genlab.callbacks.resume import rng_states, set_rng_states
from genlab.data.order import EpochBatches
from tests.test_train import run_cli, run_fast

TOLERANCE = 1e-6
COMMON = [
    "logger=none",
    "test=false",
    "optimized_metric=null",
    "trainer.deterministic=true",
    "callbacks.progress_bar.refresh_rate=1000",
    "callbacks.sample_quality.at_end=false",
    "callbacks.periodic_checkpoint.every_n_steps=1",
]
# 6 batches of 16 per epoch, 3 epochs: 18 steps, two epoch boundaries
GAN = [
    "experiment=gan_shapes_quick",
    "data.source.num_train=100",
    "data.source.num_test=16",
    "data.batch_size=16",
    "model=dcgan",
    "model.latent_dim=16",
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
    "model.ema_decay=0.9",
    "trainer.max_epochs=3",
]
# 6 pairs of batches of 4 per epoch, 3 epochs; pools of 10 fakes start swapping at step 3; the
# LR decays after epoch 1
CYCLEGAN = [
    "experiment=cyclegan_shapes",
    "data.source.num_train=24",
    "data.source.num_test=8",
    "data.batch_size=4",
    "model.generator.base_channels=4",
    "model.generator.num_blocks=1",
    "model.discriminator.base_channels=4",
    "model.pool_size=10",
    "model.n_epochs=1",
    "model.n_epochs_decay=2",
    "trainer.max_epochs=3",
]
VAE = [
    "experiment=quickstart",
    "data.source.num_train=132",
    "data.val_size=32",
    "data.batch_size=16",
    "data.eval_batch_size=32",
    "trainer.max_epochs=3",
]


def launch(run_dir: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "genlab.train", *overrides, f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"},
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def load(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def tensors(tree, prefix=""):
    """Every tensor in a nested dict / list, by path."""
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from tensors(v, f"{prefix}/{k}")
    elif isinstance(tree, list | tuple):
        for i, v in enumerate(tree):
            yield from tensors(v, f"{prefix}/{i}")


def largest_difference(a: dict, b: dict) -> float:
    """Max |a - b| over the weights, buffers (counters, EMA, k_t), optimizer and scheduler
    states of two checkpoints; fails if their structure differs."""
    parts = ("state_dict", "optimizer_states", "lr_schedulers")
    ta = dict(tensors({k: a.get(k) for k in parts}))
    tb = dict(tensors({k: b.get(k) for k in parts}))
    assert ta.keys() == tb.keys()
    return max(float((x.double() - tb[k].double()).abs().max()) for k, x in ta.items())


def kill_and_resume(tmp_path: Path, overrides: list[str], kill_step: int) -> float:
    full, killed, resumed = tmp_path / "full", tmp_path / "killed", tmp_path / "resumed"
    launch(full, *COMMON, *overrides)
    result = launch(
        killed,
        *COMMON,
        *overrides,
        "+callbacks.kill._target_=tests.resume_callbacks.KillAt",
        f"+callbacks.kill.step={kill_step}",
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    launch(resumed, *COMMON, *overrides, f"ckpt_path={killed}")  # a run dir: its last.ckpt
    a, c = load(full), load(resumed)
    assert a["epoch"] == c["epoch"] and a["global_step"] == c["global_step"]
    done = json.loads((resumed / "metrics.json").read_text())
    assert done["status"] == "completed"
    assert done == {
        **done,
        **{
            k: v
            for k, v in json.loads((full / "metrics.json").read_text()).items()
            if k in ("d_steps", "g_steps", "train_steps", "images_seen")
        },
    }
    difference = largest_difference(a, c)
    print(f"largest difference after a kill at step {kill_step}: {difference:.3g}")
    return difference


@pytest.mark.parametrize("loss", ["ns", "began"])
def test_gan_killed_at_a_random_step_resumes_to_the_same_parameters(tmp_path, loss):
    step = random.Random(f"gan-{loss}").randint(2, 16)
    # BEGAN needs its autoencoder discriminator: the Lucic nets, not the narrow DCGAN ones
    gan = [o for o in GAN if "model=dcgan" not in o and "base_channels" not in o]
    gan = [*gan, "model=gan", "model.latent_dim=16"] if loss == "began" else GAN
    assert kill_and_resume(tmp_path, [*gan, f"loss={loss}"], step) <= TOLERANCE


def test_cyclegan_killed_at_a_random_step_resumes_pools_schedule_and_parameters(tmp_path):
    step = random.Random("cyclegan").randint(2, 16)
    assert step == 6  # the last step of epoch 0: its checkpoint precedes the epoch-end LR step
    assert kill_and_resume(tmp_path, CYCLEGAN, step) <= TOLERANCE
    full, resumed = load(tmp_path / "full"), load(tmp_path / "resumed")
    assert int(resumed["state_dict"]["pools.A.count"]) == 10  # full, so swaps were resumed too
    lrs = [
        [g["lr"] for s in c["optimizer_states"] for g in s["param_groups"]] for c in (full, resumed)
    ]
    assert lrs[0] == lrs[1] == pytest.approx([2e-4 / 3] * 2)  # the last epoch's decayed LR


def test_vae_killed_at_a_random_step_resumes_to_the_same_parameters(tmp_path):
    step = random.Random("vae").randint(2, 16)
    assert kill_and_resume(tmp_path, VAE, step) <= TOLERANCE


# ---- the training order -------------------------------------------------------------------
def test_epoch_batches_depend_on_seed_and_epoch_and_resume_skips_done_batches():
    order = EpochBatches(50, 8, drop_last=True, seed=3)
    assert len(order) == 6 and len(list(order)) == 6
    first = [b.indices for b in order]
    assert first == [b.indices for b in EpochBatches(50, 8, True, seed=3)]
    order.set_epoch(1)
    assert [b.indices for b in order] != first
    order.resume(0, 4)
    assert [b.indices for b in order] == first[4:]
    assert [b.indices for b in order] == first  # the skip applies once


def test_epoch_batches_shard_over_ranks_without_overlap():
    ranks = [EpochBatches(50, 4, True, seed=0, rank=r, world_size=2) for r in (0, 1)]
    seen = [[i for b in r for i in b.indices] for r in ranks]
    assert len(ranks[0]) == len(ranks[1]) == 6
    assert not set(seen[0]) & set(seen[1])


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.save({"rng": rng_states()}, tmp_path / "s.pt")
    expected = (random.random(), torch.rand(3), __import__("numpy").random.rand())
    set_rng_states(torch.load(tmp_path / "s.pt", weights_only=True)["rng"])
    again = (random.random(), torch.rand(3), __import__("numpy").random.rand())
    assert expected[0] == again[0] and torch.equal(expected[1], again[1])
    assert expected[2] == again[2]


# ---- divergence ---------------------------------------------------------------------------
def test_first_non_finite_names_the_quantity():
    net = torch.nn.Linear(2, 2)
    assert first_non_finite(net, {"train/loss": torch.tensor(1.0)}) is None
    assert first_non_finite(net, {"train/loss": torch.tensor(float("inf"))}) == "train/loss"
    net.weight.grad = torch.full((2, 2), float("nan"))
    assert first_non_finite(net, {}) == "gradient weight"
    with torch.no_grad():
        net.bias.fill_(float("nan"))
    assert first_non_finite(net, {}) == "parameter bias"
    assert DivergenceGuard  # default callback


NAN_AT = "+callbacks.nan._target_=tests.resume_callbacks.InjectNaN"


@pytest.mark.parametrize("family", ["gan", "vae"])
def test_a_nan_stops_the_run_as_diverged_and_keeps_the_last_good_checkpoint(tmp_path, family):
    overrides = GAN if family == "gan" else VAE
    record = run_fast(
        tmp_path,
        *overrides,
        *COMMON,
        "trainer.limit_train_batches=6",
        NAN_AT,
        "+callbacks.nan.at_batch=8",
    )
    assert record["status"] == "diverged"
    assert record["diverged_at"]["step"]["progress_steps"] == 9
    assert record["diverged_at"]["quantity"].startswith("train/")
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["status"] == "diverged" and written["diverged_at"] == record["diverged_at"]
    state = load(tmp_path)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    counter = "g_steps" if family == "gan" else "train_steps"
    assert int(state[counter]) == 8  # the last good step


def test_a_sweep_moves_on_after_a_diverged_job(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        sweep,
        "-m",
        "debug=fast",
        NAN_AT,
        "+callbacks.nan.at_batch=1,1000",
        "optimized_metric=val/neg_elbo",
        dir_key="hydra.sweep.dir",
    )
    statuses = [json.loads((sweep / j / "metrics.json").read_text())["status"] for j in "01"]
    assert statuses == ["diverged", "completed"]


def test_divergence_error_names_step_and_quantity():
    error = DivergenceError({"progress_steps": 3, "d_steps": 3}, "train/d_loss")
    assert "train/d_loss" in str(error) and "d_steps=3" in str(error)


# ---- SIGTERM, W&B ---------------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_saves_last_ckpt_writes_interrupted_and_exits_0_and_resume_finishes(tmp_path):
    run_dir = tmp_path / "run"
    overrides = [*COMMON, *GAN, "trainer.max_epochs=200"]
    process = subprocess.Popen(
        [sys.executable, "-m", "genlab.train", *overrides, f"hydra.run.dir={run_dir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WANDB_MODE": "offline"},
    )
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not ckpt.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["stop_signal"] == "SIGTERM"
    state = load(run_dir)
    assert int(state["state_dict"]["g_steps"]) == record["g_steps"] > 0
    resumed = tmp_path / "resumed"
    epochs = int(state["epoch"]) + 2
    launch(resumed, *COMMON, *GAN, f"trainer.max_epochs={epochs}", f"ckpt_path={run_dir}")
    done = json.loads((resumed / "metrics.json").read_text())
    assert done["status"] == "completed" and done["g_steps"] == 6 * epochs


def test_resumed_run_continues_the_same_wandb_run(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    launch(first, "debug=fast", "logger=wandb")
    launch(second, "debug=fast", "logger=wandb", f"ckpt_path={first}", "trainer.max_epochs=2")
    ids = [
        {p.name.rsplit("-", 1)[-1] for p in (run / "wandb").glob("offline-run-*")}
        for run in (first, second)
    ]
    assert len(ids[0]) == 1 and ids[0] == ids[1]
