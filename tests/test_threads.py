"""threads=auto gives each process its share of the cores: cores / (jobs at once x CPU DDP
processes), at most OMP_NUM_THREADS; an integer sets the count."""

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from genlab import threads
from genlab.validation import ConfigError, validate_config
from tests.helpers import compose_train_config

CPU = OmegaConf.create({"accelerator": "cpu", "devices": 1})


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    HydraConfig.instance().cfg = None  # no Hydra run unless a test composes one


def test_a_lone_run_gets_every_core(four_cores):
    assert threads.thread_count("auto", CPU) == 4


def test_omp_num_threads_caps_auto(four_cores, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.thread_count("auto", CPU) == 1


@pytest.mark.parametrize(("n_jobs", "expected"), [(2, 2), (3, 1), (4, 1), (8, 1), (-1, 1), (-3, 2)])
def test_joblib_jobs_share_the_cores(four_cores, n_jobs, expected):
    compose_train_config(["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"])
    assert threads.thread_count("auto", CPU) == expected


def test_cpu_ddp_processes_share_the_cores(four_cores):
    ddp = compose_train_config(["hardware=ddp_cpu"]).trainer
    assert threads.thread_count("auto", ddp) == 2
    gpu = compose_train_config(["hardware=gpu"]).trainer
    assert threads.thread_count("auto", gpu) == 4  # GPU processes: one per device, not cores


def test_an_integer_is_taken_as_it_is(four_cores, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.thread_count(3, CPU) == 3


def test_configure_threads_sets_torch(four_cores):
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(1, CPU) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value", [0, -2, "many", 1.5])
def test_bad_values_are_named(value):
    cfg = compose_train_config([])
    cfg.threads = value
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    shown = repr(value) if isinstance(value, str) else value
    assert str(error.value) == f"threads={shown} is invalid: must be auto or an integer >= 1"
