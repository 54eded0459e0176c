"""Resume that loses nothing: RNG states, the data position and the W&B run id in every
checkpoint (``ResumeState``); ``last.ckpt`` every N progress steps / M minutes and on SIGTERM or
Ctrl-C (``PeriodicCheckpoint``).

Weights, optimizers, LR schedulers, counters, EMA weights and BEGAN's k_t are module or
optimizer state that Lightning checkpoints itself. Everything stored here is tensors, lists,
ints and strings, as checkpoints are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genlab.data.arrays import derive_seed
from genlab.validation import ConfigError

log = logging.getLogger(__name__)


# ---- RNG states as weights_only-loadable data ------------------------------------------------
def rng_states() -> dict[str, Any]:
    """This process's python, numpy, torch (and CUDA) RNG states, as tensors / lists / ints."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the legacy global RNG is what is saved)
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [str(name), torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore states written by ``rng_states``."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    state = (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)
    np.random.set_state(state)  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ---- reading a checkpoint before the trainer exists -------------------------------------------
def resolve_ckpt_path(ckpt: str | None) -> str | None:
    """A run directory stands for its ``checkpoints/last.ckpt``; other values are kept."""
    if ckpt is None:
        return None
    path = Path(str(ckpt))
    if path.is_dir():
        last = path / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise ConfigError(
                f"ckpt_path={ckpt} is a directory without checkpoints/last.ckpt: pass a genlab "
                "run directory that has saved a checkpoint, or a .ckpt file"
            )
        return str(last)
    return str(ckpt)


def saved_wandb_run_id(ckpt: str | Path) -> str | None:
    """The W&B run id stored by ``ResumeState`` in a checkpoint (None if there is none)."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    for value in (state.get("callbacks") or {}).values():
        if isinstance(value, Mapping) and value.get("wandb_run_id"):
            return str(value["wandb_run_id"])
    return None


# ---- callbacks --------------------------------------------------------------------------------
class ResumeState(Callback):
    """Checkpoints the RNG states, the data position and the W&B run id, and restores them.

    The position is (epoch, batches completed in it), counted at ``on_train_batch_end`` (the
    loader itself runs one batch ahead: Lightning prefetches). On restore it goes to the
    datamodule (``resume_at``), before Lightning builds the train loader; the RNG states are
    set again at the first resumed batch, so that nothing Lightning runs between restore and
    that batch shifts them. Under DDP the RNG states saved are rank 0's.

    RNG states alone are not enough: a checkpoint taken at the last batch of an epoch is
    followed, in the uninterrupted run, by validation and epoch-end pictures that draw random
    numbers, and a resumed run does not repeat them. So, with ``reseed_every_batch`` (default),
    every training batch first reseeds python, numpy and torch from (seed, number of batches
    trained so far, rank): a batch's randomness then depends on its position only.
    """

    def __init__(self, reseed_every_batch: bool = True) -> None:
        self.reseed_every_batch = reseed_every_batch
        self.seed = torch.initial_seed()  # genlab-train seeds before building callbacks
        self._trainer: Trainer | None = None
        self._position = (0, 0)
        self._batches_done = 0  # training batches of the whole run, on this rank
        self._pending_rng: Mapping[str, Any] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._trainer = trainer  # setup runs before Lightning restores callback states

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._batches_done += 1
        done = idx + 1
        if done >= trainer.num_training_batches:
            self._position = (trainer.current_epoch + 1, 0)
        else:
            self._position = (trainer.current_epoch, done)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._position = (trainer.current_epoch + 1, 0)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, idx: int
    ) -> None:
        if self._pending_rng is not None:
            set_rng_states(self._pending_rng)
            self._pending_rng = None
        if self.reseed_every_batch:
            # the batch's random draws depend on (seed, batch count, rank) only, whatever ran
            # in between (validation, pictures at epoch end, a resume)
            seed = derive_seed(self.seed, f"batch/{self._batches_done}/{trainer.global_rank}")
            random.seed(seed)
            np.random.seed(seed % 2**32)  # noqa: NPY002
            torch.manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        epoch, batches = self._position
        state: dict[str, Any] = {"rng": rng_states(), "epoch": epoch, "batches": batches}
        state.update(seed=self.seed, batches_done=self._batches_done)
        wandb = next((x for x in self._loggers() if isinstance(x, WandbLogger)), None)
        if wandb is not None:
            state["wandb_run_id"] = str(wandb.version)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._position = (int(state_dict["epoch"]), int(state_dict["batches"]))
        self.seed = int(state_dict.get("seed", self.seed))
        self._batches_done = int(state_dict.get("batches_done", 0))
        self._pending_rng = state_dict["rng"]
        set_rng_states(self._pending_rng)
        datamodule = getattr(self._trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "resume_at"):
            datamodule.resume_at(*self._position)
        else:
            log.warning("ResumeState: no datamodule with resume_at(); the data order restarts")

    def _loggers(self) -> list[Any]:
        return list(self._trainer.loggers) if self._trainer is not None else []


class PeriodicCheckpoint(Checkpoint):
    """Writes ``<dirpath>/last.ckpt`` every ``every_n_steps`` progress steps
    (``pl_module.progress_steps``: generator steps for GANs, training steps otherwise) and/or
    every ``every_n_minutes`` of wall-clock time (0 turns either off), and when the run is told
    to stop: SIGTERM (Lightning's handler; SLURM pre-emption) or a first Ctrl-C, which this
    callback turns into the same graceful stop (a second Ctrl-C interrupts at once).

    Saves happen at step boundaries (after ``on_train_batch_end``; as a ``Checkpoint`` Lightning
    runs it after the other callbacks). ``stop_signal`` names the signal that stopped the run.
    """

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int = 0,
        every_n_minutes: float = 0.0,
        save_on_signal: bool = True,
        filename: str = "last.ckpt",
    ):
        if every_n_steps < 0 or every_n_minutes < 0:
            raise ValueError(
                f"callbacks.periodic_checkpoint: every_n_steps={every_n_steps} and "
                f"every_n_minutes={every_n_minutes} must be >= 0 (0: off)"
            )
        self.path = Path(dirpath) / filename
        self.every_n_steps = every_n_steps
        self.every_n_minutes = every_n_minutes
        self.save_on_signal = save_on_signal
        self.stop_signal: str | None = None
        self._saved_at: tuple[int, int] | None = None  # (progress step, batch) of the last save
        self._last_time = time.monotonic()
        self._previous_sigint: Any = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._last_time = time.monotonic()
        self._saved_at = None
        if self.save_on_signal and threading.current_thread() is threading.main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._make_sigint(trainer))

    def _make_sigint(self, trainer: Trainer) -> Any:
        def on_sigint(signum: int, frame: Any) -> None:
            if self.stop_signal is None:
                log.warning("Ctrl-C: stopping after this step (again to interrupt at once)")
                self.stop_signal = "SIGINT"
                trainer._signal_connector.received_sigterm = True
                return
            raise KeyboardInterrupt

        return on_sigint

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def _save(self, trainer: Trainer, pl_module: LightningModule) -> None:
        trainer.save_checkpoint(self.path)
        self._saved_at = (pl_module.progress_steps, trainer.fit_loop.total_batch_idx)
        self._last_time = time.monotonic()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        step = int(getattr(pl_module, "progress_steps", trainer.global_step))
        due = bool(
            self.every_n_steps
            and step % self.every_n_steps == 0
            and (self._saved_at is None or self._saved_at[0] != step)  # n_critic batches
        )
        if self.every_n_minutes:
            late = time.monotonic() - self._last_time >= 60 * self.every_n_minutes
            # every rank must take the same decision: saving is collective
            due = due or bool(trainer.strategy.broadcast(late, src=0))
        if due:
            self._save(trainer, pl_module)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self._restore_sigint()
        if not isinstance(exception, SIGTERMException) or not self.save_on_signal:
            return
        self.stop_signal = self.stop_signal or "SIGTERM"
        if self._saved_at != (pl_module.progress_steps, trainer.fit_loop.total_batch_idx):
            self._save(trainer, pl_module)
        log.warning("%s: saved %s; resume with ckpt_path=<run dir>", self.stop_signal, self.path)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore_sigint()
