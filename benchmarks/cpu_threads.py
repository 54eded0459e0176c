"""CPU thread settings: training throughput of one process and of two at once on the same cores.

    /work/tools/heavy python benchmarks/cpu_threads.py [--out results.json]

Workload: training steps of the quickstart model (``experiment=quickstart``'s model on its data
shape, batch 64, Adam), each process in its own interpreter. Cases, each timed over ``--steps``
steps after ``--warmup``:

- ``solo``: one process alone, with 1 or 2 torch threads, OpenMP threads busy-waiting (the
  default, ``OMP_WAIT_POLICY`` unset) or sleeping (``OMP_WAIT_POLICY=PASSIVE``);
- ``pair``: two such processes started together (what a joblib sweep with n_jobs=2 or two runs
  side by side do), each case reporting the two processes' summed throughput;
- ``interop``: 1 inter-op thread instead of torch's default;
- ``sweep``: ``genlab-train -m hydra/launcher=joblib hydra.launcher.n_jobs=2`` with two jobs vs
  the same command with one job, with genlab's default thread setting (``hardware.threads``),
  throughput from each job's metrics.json (images per second of training).

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


def sweep_throughput(jobs: int, args: argparse.Namespace) -> dict[str, object]:
    """A joblib sweep of ``jobs`` quickstart jobs (n_jobs = jobs) with genlab's thread default."""
    with tempfile.TemporaryDirectory() as tmp:
        seeds = ",".join(str(s) for s in range(jobs))
        command = [str(Path(sys.executable).parent / "genlab-train"), "-m"]
        command += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}", f"seed={seeds}"]
        command += [f"hydra.sweep.dir={tmp}/sweep", "logger=none", "test=false"]
        command += [f"trainer.max_steps={args.sweep_steps}", "trainer.limit_val_batches=0"]
        command += ["callbacks.image_grids.every_n_epochs=1000", "optimized_metric=null"]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=_clean_env(), timeout=1800)
        wall = time.perf_counter() - start
        records = [
            json.loads(p.read_text()) for p in sorted(Path(tmp).glob("sweep/*/metrics.json"))
        ]
    rates = [round(r["throughput_img_s"], 1) for r in records]
    total = round(sum(rates), 1)
    return {"jobs": jobs, "job_img_s": rates, "total_img_s": total, "wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/cpu_threads.json")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--sweep-steps", type=int, default=400, help="training steps per job")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--interop", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.threads, args.interop, args.steps, args.warmup)
        return

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
    sweeps = {f"{jobs}_jobs": sweep_throughput(jobs, args) for jobs in (1, 2)}
    print(sweeps, flush=True)
    one, two = sweeps["1_jobs"]["total_img_s"], sweeps["2_jobs"]["total_img_s"]
    atomic_write_json(
        args.out,
        {
            "benchmark": "cpu_threads",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "setup": "quickstart VAE training steps (batch 64, Adam), one process per case "
            "member; images/s after the warmup",
            "note": "run under /work/tools/heavy (no other heavy job), but helpers' light work "
            "(unit tests) may have shared the machine",
            "cpu_count": os.cpu_count(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "torch": torch.__version__,
            "lightning": lightning.__version__,
            "python": platform.python_version(),
            "steps": args.steps,
            "warmup": args.warmup,
            "cases": results,
            "joblib_sweep": {**sweeps, "two_jobs_vs_one": round(two / one, 3)},
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
