"""Peak memory of the Hal metric while sampling: mi_lib's running variance against storing
every x0_hat.

    python benchmarks/bench_hal.py            # N = 100,000 samples, T = 1000 (takes many minutes on 2 cores)
    python benchmarks/bench_hal.py --quick    # N = 10,000: a smoke test

Hal (paper Sec. 5) is the variance of x0_hat over a window of reverse steps, here the paper's
1D window, the last 15 steps (t = 14 down to 0). Both variants sample the shipped 1D model
(mi_lib.artifacts '1d_three', linear schedule, T = 1000) with the same network function
(model_eps_fn), the same ancestral sampler and the same generator, all N samples in one batch,
so they draw the same samples and must give the same Hal:

* stored: the straightforward way. Record every step's x0_hat in a (T, N, d) tensor (float32,
  as the sampler yields it; preallocated, so no extra copy when stacking), then compute Hal from
  the window's rows with mi_lib.hal.hal_from_trajectory. Memory grows like T x N x d.
* mi_lib: mi_lib.hal.sample_with_hal, whose WindowVariance keeps a running mean and sum of
  squared deviations (two float64 (N, d) tensors) and ignores steps outside the window. Memory
  grows like N x d (a few tensors of the batch's size), whatever T or the window.

Each variant runs in a fresh subprocess (one after the other) so that its peak resident memory
(ru_maxrss; Linux reports KiB) is its own; the script reports that peak minus the process's
resident memory just before sampling starts (after a short warm-up), i.e. what sampling and
Hal add on top of Python, torch and the model. The children run with glibc's
MALLOC_MMAP_THRESHOLD_ fixed at its default 128 KiB: a fixed value turns off glibc's dynamic
threshold, which otherwise moves buffers of up to 32 MiB into the heap once a few have been
freed, where they stay resident after use; with it, every buffer above 128 KiB goes back to the
OS when freed and the peak is that of memory in use. The children save their Hal to a temporary
folder and the parent checks that the two agree.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch
from _procs import peak_kib, rss_kib, run_child

from mi_lib.artifacts import load_artifact
from mi_lib.diffusion import ddpm_sample
from mi_lib.hal import hal_from_trajectory, sample_with_hal
from mi_lib.learned import model_eps_fn
from mi_lib.runtime import chunk_generator
from mi_lib.schedules import linear_schedule

WINDOW = (0, 14)  # Hal over the last 15 reverse steps, the paper's 1D window (Sec. 5)
SEED = 1


def hal_stored(eps_fn, n: int, schedule) -> tuple[torch.Tensor, int]:
    """Sample n 1D points keeping every step's x0_hat, then Hal over WINDOW. Returns Hal and
    the bytes of the stored trajectory."""
    T = schedule.T
    traj = torch.empty(T, n, 1)  # row i holds step t = T - 1 - i
    for i, step in enumerate(ddpm_sample(eps_fn, (n, 1), schedule, chunk_generator(SEED, 0), progress=False)):
        traj[i] = step.x0_hat
    lo, hi = WINDOW
    hal = hal_from_trajectory(traj[T - 1 - hi : T - lo])  # steps t = hi down to lo
    return hal, traj.nbytes


def hal_running(eps_fn, n: int, schedule) -> tuple[torch.Tensor, int]:
    """mi_lib's way: sample_with_hal, one batch of n (the same generator as hal_stored)."""
    _, hal = sample_with_hal(eps_fn, n, 1, schedule, seed=SEED, window=WINDOW, chunk=n, progress=False)
    return hal, 2 * n * 1 * 8  # WindowVariance: running mean and M2, float64 (N, d)


def run(kind: str, n: int, T: int, out: str) -> dict:
    model, schedule = load_artifact("1d_three")["model"], linear_schedule(T)
    eps_fn = model_eps_fn(model)
    # Warm up: the first calls initialise torch's kernels and thread pools (some MiB, the same for
    # any N); a few sampling steps of a small batch do that before the measurement starts.
    for _ in ddpm_sample(eps_fn, (4_000, 1), linear_schedule(3), chunk_generator(SEED, 1), progress=False):
        pass
    rss0, t0 = rss_kib(), time.perf_counter()
    hal, kept_bytes = (hal_stored if kind == "stored" else hal_running)(eps_fn, n, schedule)
    secs = time.perf_counter() - t0
    peak = peak_kib()
    torch.save(hal, out)
    return {"kind": kind, "secs": secs, "kept_for_hal_MiB": kept_bytes / 2**20,
            "peak_minus_start_MiB": (peak - rss0) / 1024, "start_MiB": rss0 / 1024}


def _spawn(kind: str, args: argparse.Namespace, out: str) -> dict:
    cmd = ["--child", kind, "--n", str(args.n), "--T", str(args.T), "--out", out]
    return run_child(__file__, cmd, {"MALLOC_MMAP_THRESHOLD_": "131072"})  # fixed: see the module docstring


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="samples (default 100,000)")
    p.add_argument("--T", type=int, default=1_000, help="diffusion steps (default 1000)")
    p.add_argument("--quick", action="store_true", help="N = 10,000: a smoke test")
    p.add_argument("--child", choices=("stored", "mi_lib"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.n = 10_000
    if args.child:
        print(json.dumps(run(args.child, args.n, args.T, args.out)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; shipped 1D model '1d_three'; "
          f"N = {args.n:,}, T = {args.T}, Hal window t = {WINDOW[1]}..{WINDOW[0]}, one batch of N")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("stored", "mi_lib"):
            r = _spawn(kind, args, os.path.join(tmp, f"{kind}.pt"))
            rows[kind] = r
            print(f"{kind:7s}: peak memory added {r['peak_minus_start_MiB']:9.1f} MiB  (kept for Hal "
                  f"{r['kept_for_hal_MiB']:8.2f} MiB; {r['secs']:.0f} s; process at start {r['start_MiB']:.0f} MiB)",
                  flush=True)
        hs, hm = (torch.load(os.path.join(tmp, f"{k}.pt"), weights_only=True) for k in ("stored", "mi_lib"))
    rel = float(((hs - hm).abs() / hs.abs().clamp_min(1e-300)).max())
    ratio = rows["stored"]["peak_minus_start_MiB"] / max(rows["mi_lib"]["peak_minus_start_MiB"], 1 / 1024)
    print(f"same Hal from both ways: largest relative difference {rel:.1e}")
    print(f"peak memory ratio stored / mi_lib: {ratio:.0f}x")
    if rel > 1e-6:
        raise SystemExit("the two ways disagree on Hal")


if __name__ == "__main__":
    main()
