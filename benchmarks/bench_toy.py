"""Speed and memory of mi_lib's toy trainer and sampler against a straightforward baseline.

    python benchmarks/bench_toy.py            # the issue's sizes: N = 10,000, T = 1000, batch 10,000
    python benchmarks/bench_toy.py --quick    # N = 2,000, 10 training steps: a smoke test

Both sides use the paper's 1D MLP (width 128, 3 temporal blocks, separate weights) with the
same weights (the shipped, trained '1d_three' model), the same schedule (linear 0.001-0.2)
and the ancestral sampler of mi_lib.diffusion.

* baseline: what the authors' toy code does. Its network embeds t and computes every block's
  time projection once per *sample* (although t is shared by the batch when sampling, and
  takes at most T values in a training batch), with plain Linear + add; its sampler runs all N
  samples as one batch and records every step's x0_hat (float64, T x N x d) for the Hal metric.
* mi_lib: ToyMLP (time features once per distinct t, additions fused into addmm, activations
  in place on the LayerNorm outputs they consume);
  model_eps_fn, which computes a step's time features once and passes the batch through in
  slices of 2,000 rows that stay in cache; sample_with_hal with Hal accumulated over its window
  by a running mean and variance (WindowVariance), so memory does not grow with T; train(),
  which computes the batch's time projections once and passes it forward and backward in
  slices of 2,500 rows on a CPU, accumulating the gradient (the same gradient up to rounding).

What bounds the sampling ratio: both sides do the same six 128 x 128 matrix products per row
in the residual blocks; the baseline adds four more (the time embedding's and three block time
projections) plus the sinusoid, per row. At equal matrix-product speed that caps the ratio
near 10 / 6 ~ 1.7; slicing for the cache adds the rest.

The machine may be shared, so the variants alternate for --rounds rounds (default 2) and each
one's fastest round counts, as timeit does. Each variant runs in a fresh subprocess (the same
machine and torch, one after the other) so that its peak resident memory (ru_maxrss, Linux
reports KiB) is its own; the script reports that peak minus the process's resident memory just
before the timed loop, and the bytes of the tensors each sampler keeps for Hal (exact, from
tensor sizes). Timings are wall clock after a warm-up. Outputs are compared: the two networks'
eps agree to float rounding (printed).

Allocator: with glibc's defaults, a loop that frees and re-allocates tensors of a megabyte or
more hands the memory back to the OS and faults it in again at every step; on our 2-core
machine that page-fault churn cost a third of mi_lib's sampling time (system time, not
compute). The children therefore run with MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_
set to 1 GiB, both variants alike; --plain-malloc keeps the defaults.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from _procs import peak_kib, rss_kib, run_child

from mi_lib import (
    ToyMLP,
    ddpm_sample,
    linear_schedule,
    make_generator,
    mixture_preset,
    model_eps_fn,
    sample_with_hal,
    train,
)
from mi_lib.artifacts import load_artifact
from mi_lib.models import timestep_embedding

WINDOW = (0, 14)  # Hal over the last 15 reverse steps, the paper's 1D window (Sec. 5)


def baseline_eps(model: ToyMLP, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The network computed per sample, as in the authors' code: every row embeds its own t,
    and activations allocate new tensors (nn.LeakyReLU without inplace)."""
    t = torch.as_tensor(t).reshape(-1).expand(x.shape[0])
    emb = F.leaky_relu(model.temb[0](timestep_embedding(t, model.width)), 0.02)
    h = model.inp(x)
    for blk in model.blocks:
        u = blk.fc1(F.leaky_relu(blk.norm1(h), 0.02)) + blk.time(emb)
        h = h + blk.fc2(F.leaky_relu(blk.norm2(u), 0.02))
    return model.out(h)


def _model() -> ToyMLP:
    """The shipped 1D model (mi_lib.artifacts '1d_three'): trained weights keep the sampler's
    states finite, as in real use (random weights make them overflow over 1000 steps)."""
    return load_artifact("1d_three")["model"]


def run_sample(kind: str, n: int, T: int) -> dict:
    model, s = _model().eval(), linear_schedule(T)
    rss0, t0 = rss_kib(), time.perf_counter()
    if kind == "baseline":
        kept = []
        with torch.no_grad():
            eps_fn = lambda x, t: baseline_eps(model, x, t)  # noqa: E731
            for step in ddpm_sample(eps_fn, (n, 1), s, make_generator(1)):
                kept.append(step.x0_hat.double())  # every x0_hat, for Hal afterwards
        traj = torch.stack(kept)  # (T, N, d)
        hal = traj[-(WINDOW[1] - WINDOW[0] + 1):].var(dim=0, unbiased=False).mean(-1)  # steps t = 14..0
        kept_bytes = traj.nbytes  # the trajectory kept for Hal (the list of steps holds as much again)
    else:
        _, hal = sample_with_hal(model_eps_fn(model), n, 1, s, seed=1, window=WINDOW, chunk=n, progress=False)
        kept_bytes = 2 * n * 1 * 8  # WindowVariance: running mean and M2, float64
    secs = time.perf_counter() - t0
    return {"samples_per_s": n / secs, "secs": secs, "kept_bytes": kept_bytes, "hal_finite": bool(hal.isfinite().all()),
            "peak_minus_start_MiB": (peak_kib() - rss0) / 1024}


def run_train(kind: str, steps: int, batch: int) -> dict:
    model, s = _model().train(), linear_schedule(1000)
    data = mixture_preset("1d_three").sample(50_000, make_generator(0))
    warm = 3
    if kind == "baseline":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
        g = make_generator(0)

        def one_step() -> None:
            idx = torch.randint(0, len(data), (batch,), generator=g)
            x0, t = data[idx], torch.randint(0, s.T, (batch,), generator=g)
            eps = torch.randn(x0.shape, generator=g)
            ab = s.alpha_bar.float()[t][:, None]
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
            loss = ((baseline_eps(model, xt, t) - eps) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(warm):
            one_step()
        rss0, t0 = rss_kib(), time.perf_counter()
        for _ in range(steps):
            one_step()
    else:
        run = train(model, data, s, steps=steps + warm, batch_size=batch, progress=False)
        for _ in range(warm):
            next(run)
        rss0, t0 = rss_kib(), time.perf_counter()
        for _ in run:
            pass
    secs = time.perf_counter() - t0
    return {"steps_per_s": steps / secs, "secs": secs, "peak_minus_start_MiB": (peak_kib() - rss0) / 1024}


def check_equal() -> float:
    """Largest |eps_mi_lib - eps_baseline| over a batch, at several shared and per-row t."""
    model = _model().eval()
    x = torch.randn(4_096, 1, generator=make_generator(2))
    with torch.no_grad():
        diffs = [(model(x, torch.tensor(t)) - baseline_eps(model, x, torch.tensor(t))).abs().max() for t in (0, 7, 500)]
        t = torch.randint(0, 1000, (4_096,), generator=make_generator(3))
        diffs.append((model(x, t) - baseline_eps(model, x, t)).abs().max())
    return float(max(diffs))


def _child(args: argparse.Namespace) -> None:
    what, kind = args.child.split(":")
    out = run_sample(kind, args.n, args.T) if what == "sample" else run_train(kind, args.train_steps, args.batch)
    print(json.dumps(out))


def _spawn(child: str, args: argparse.Namespace) -> dict:
    cmd = ["--child", child, "--n", str(args.n), "--T", str(args.T), "--train-steps", str(args.train_steps),
           "--batch", str(args.batch)]
    env = {}
    if not args.plain_malloc:  # the same for both variants: see the module docstring
        env.update(MALLOC_MMAP_THRESHOLD_=str(2**30), MALLOC_TRIM_THRESHOLD_=str(2**30))
    return run_child(__file__, cmd, env)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="samples drawn (default 10,000)")
    p.add_argument("--T", type=int, default=1_000, help="diffusion steps (default 1000)")
    p.add_argument("--train-steps", type=int, default=30, help="timed training steps (default 30)")
    p.add_argument("--batch", type=int, default=10_000, help="training batch (default 10,000)")
    p.add_argument("--rounds", type=int, default=2, help="alternating runs of each variant; the fastest counts")
    p.add_argument("--plain-malloc", action="store_true", help="keep glibc's default heap trimming (see above)")
    p.add_argument("--quick", action="store_true", help="N = 2,000 and 10 training steps")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.n, args.train_steps = 2_000, 10
    if args.child:
        _child(args)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; glibc heap trimming "
          f"{'default' if args.plain_malloc else 'off'}; ToyMLP(1D, width 128, 3 blocks); "
          f"N = {args.n:,}, T = {args.T}, training batch {args.batch:,}, {args.train_steps} timed steps")
    print(f"max |eps_mi_lib - eps_baseline| = {check_equal():.2e}  (same weights; float rounding only)")
    rows = {}
    for what in ("train", "sample"):
        for round_ in range(args.rounds):  # alternate the two, keep each one's fastest round
            for kind in ("baseline", "mi_lib"):
                r = _spawn(f"{what}:{kind}", args)
                print(f"{what:6s} {kind:8s} round {round_ + 1}: " + "  ".join(
                    f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()), flush=True)
                if (what, kind) not in rows or r["secs"] < rows[what, kind]["secs"]:
                    rows[what, kind] = r
    tr = rows["train", "mi_lib"]["steps_per_s"] / rows["train", "baseline"]["steps_per_s"]
    sa = rows["sample", "mi_lib"]["samples_per_s"] / rows["sample", "baseline"]["samples_per_s"]
    kb, km = rows["sample", "baseline"]["kept_bytes"], rows["sample", "mi_lib"]["kept_bytes"]
    print(f"best of {args.rounds} rounds each:")
    print(f"training speed-up {tr:.2f}x (target >= 1.4x); sampling speed-up {sa:.2f}x (target >= 2x)")
    print(f"kept for Hal: baseline {kb / 2**20:.1f} MiB (T x N x d float64), "
          f"mi_lib {km / 2**10:.1f} KiB (independent of T)")


if __name__ == "__main__":
    main()
