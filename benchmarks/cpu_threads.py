"""CPU thread settings: training throughput of one process and of two at once on the same cores.

    /work/tools/heavy python benchmarks/cpu_threads.py [--parts cases sweep] [--out results.json]

Part ``cases``: training steps of the quickstart model (``experiment=quickstart``'s model on its
data shape, batch 64, Adam), each process in its own interpreter, timed over ``--steps`` steps
after ``--warmup``:

- ``solo``: one process alone, with 1 or 2 torch threads, OpenMP threads busy-waiting (the
  default, ``OMP_WAIT_POLICY`` unset) or sleeping (``OMP_WAIT_POLICY=PASSIVE``);
- ``pair``: two such processes started together (what a joblib sweep with n_jobs=2 or two runs
  side by side do), each case reporting the two processes' summed throughput;
- ``interop``: 1 inter-op thread instead of torch's default.

Part ``sweep``: a study, ``genlab-train -m hydra/launcher=joblib hydra.launcher.n_jobs=2`` of
``--sweep-steps`` quickstart training steps a job, with genlab's default thread setting
(``threads: auto``): its two jobs at once vs one job alone under the same launcher (each job's
share of the cores, 1 thread on 2 cores) and vs one job alone with n_jobs=1 (all the cores);
throughput from each job's metrics.json (training images per second, data loading excluded).

Running some parts keeps the other parts' figures already in ``--out`` (each part has its date).
Needs an otherwise idle machine (run it under /work/tools/heavy); the JSON notes the load.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning
import torch

from genlab.utils.io import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


def worker(threads: int, interop: int | None, steps: int, warmup: int) -> None:
    """Time training steps of the quickstart model; print {"img_s": ...} as JSON."""
    torch.set_num_threads(threads)
    if interop is not None:
        torch.set_num_interop_threads(interop)
    from hydra.utils import instantiate

    from tests.helpers import compose_train_config

    cfg = compose_train_config(["experiment=quickstart"])
    model = instantiate(cfg.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    shape = (cfg.data.batch_size, cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    x = torch.bernoulli(torch.full(shape, 0.3), generator=generator)  # (B, C, H, W)
    y = torch.zeros(shape[0], dtype=torch.long)
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        loss = model.elbo_terms(x, y)["rec_nll"].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    print(json.dumps({"img_s": steps * shape[0] / elapsed, "threads": torch.get_num_threads()}))


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def run_together(count: int, threads: int, args: argparse.Namespace, **env: str) -> list[float]:
    """Start ``count`` workers at once; their images per second."""
    command = [sys.executable, __file__, "--worker", "--threads", str(threads)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    if env.pop("interop", None):
        command += ["--interop", "1"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=_clean_env(**env))
        for _ in range(count)
    ]
    outputs = [p.communicate()[0] for p in procs]
    return [round(json.loads(out.strip().splitlines()[-1])["img_s"], 1) for out in outputs]


def sweep(seeds: int, n_jobs: int, args: argparse.Namespace) -> dict[str, object]:
    """A joblib study of ``seeds`` quickstart jobs, ``n_jobs`` at once, with genlab's default
    thread setting; each job's threads and images per second, their sum and the study's wall
    time (start-up included)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(Path(sys.executable).parent / "genlab-train"), "-m"]
        command += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
        command += ["seed=" + ",".join(str(s) for s in range(seeds))]
        command += [f"hydra.sweep.dir={tmp}/sweep", "logger=none", "test=false"]
        command += [f"trainer.max_steps={args.sweep_steps}", "++trainer.limit_val_batches=0"]
        command += ["callbacks.image_grids.every_n_epochs=1000", "optimized_metric=null"]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=_clean_env())
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
        records = [
            json.loads(p.read_text()) for p in sorted(Path(tmp).glob("sweep/*/metrics.json"))
        ]
    if len(records) != seeds:
        raise RuntimeError(f"expected {seeds} jobs' metrics.json, found {len(records)}")
    rates = [round(r["throughput_img_s"], 1) for r in records]
    return {
        "jobs": seeds,
        "n_jobs": n_jobs,
        "job_threads": [r["threads"] for r in records],
        "job_img_s": rates,
        "total_img_s": round(sum(rates), 1),
        "study_wall_s": round(wall, 1),
    }


def run_cases(args: argparse.Namespace) -> dict[str, object]:
    """Part ``cases``: each case's per-process and total images per second."""
    cases = {
        "solo_1_thread": (1, 1, {}),
        "solo_2_threads": (1, 2, {}),
        "solo_2_threads_passive": (1, 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
        "solo_2_threads_1_interop": (1, 2, {"interop": "1"}),
        "pair_1_thread_each": (2, 1, {}),
        "pair_2_threads_each": (2, 2, {}),
        "pair_2_threads_each_passive": (2, 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    }
    results = {}
    for name, (count, threads, env) in cases.items():
        rates = run_together(count, threads, args, **env)
        results[name] = {"process_img_s": rates, "total_img_s": round(sum(rates), 1)}
        print(name, results[name], flush=True)
    return {
        "date": _now(),
        "setup": "quickstart VAE training steps (batch 64, Adam), one process per case member; "
        "images/s after the warmup",
        "steps": args.steps,
        "warmup": args.warmup,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "cases": results,
    }


def run_sweep(args: argparse.Namespace) -> dict[str, object]:
    """Part ``sweep``: the two-job joblib study against one job alone."""
    studies = {
        "one_job_n_jobs_2": sweep(1, 2, args),
        "two_jobs_n_jobs_2": sweep(2, 2, args),
        "one_job_n_jobs_1": sweep(1, 1, args),
    }
    for name, figures in studies.items():
        print(name, figures, flush=True)
    two = studies["two_jobs_n_jobs_2"]["total_img_s"]
    return {
        "date": _now(),
        "setup": f"genlab-train -m hydra/launcher=joblib, quickstart, {args.sweep_steps} training "
        "steps a job (batch 64), no validation / test / pictures, threads=auto; images/s of "
        "training steps from each job's metrics.json",
        "steps_per_job": args.sweep_steps,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "studies": studies,
        "two_jobs_vs_one_job": round(two / studies["one_job_n_jobs_2"]["total_img_s"], 3),
        "two_jobs_vs_one_job_all_cores": round(two / studies["one_job_n_jobs_1"]["total_img_s"], 3),
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/cpu_threads.json")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--sweep-steps", type=int, default=400, help="training steps per job")
    parser.add_argument(
        "--parts", nargs="+", choices=("cases", "sweep"), default=["cases", "sweep"]
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--interop", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.threads, args.interop, args.steps, args.warmup)
        return

    parts = {"cases": run_cases, "sweep": run_sweep}
    record = json.loads(args.out.read_text()) if args.out.exists() else {}
    record = {k: v for k, v in record.items() if k in parts}  # earlier parts' figures
    for part in args.parts:
        record[part] = parts[part](args)
    atomic_write_json(
        args.out,
        {
            "benchmark": "cpu_threads",
            "note": "run under /work/tools/heavy (no other heavy job), but helpers' light work "
            "(unit tests) may have shared the machine; each part has its date and load",
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "lightning": lightning.__version__,
            "python": platform.python_version(),
            **record,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
