"""Speed and memory of mi_lib's toy trainer and sampler against a straightforward baseline.

    python benchmarks/bench_toy.py            # the issue's sizes: N = 10,000, T = 1000, batch 10,000
    python benchmarks/bench_toy.py --quick    # N = 2,000, T = 1000, 10 training steps: a smoke test

Both sides use the paper's 1D MLP (width 128, 3 temporal blocks, separate weights) with the
same weights (the shipped, trained '1d_three' model), the same schedule (linear 0.001-0.2)
and the ancestral sampler of mi_lib.diffusion.

* baseline: what the authors' toy code does. Its network embeds t and computes every block's
  time projection once per *sample* (although t is shared by the batch when sampling, and
  takes at most T values in a training batch), with plain Linear + add; its sampler runs all N
  samples as one batch and records every step's x0_hat (float64, T x N x d) for the Hal metric.
* mi_lib: ToyMLP (time features once per distinct t; for 1D data the first block's
  LayerNorm -> LeakyReLU -> Linear as a table of at most 129 linear pieces in one number per
  row, ToyMLP.first_layer, instead of a 128 x 128 matrix product per row; additions fused into
  addmm, the skip connection added in place when no gradient is recorded); model_eps_fn,
  which keeps the table while the weights do not change and passes the batch through in
  slices of 2,500 rows that stay in cache; Hal accumulated over its window by a running mean
  and variance (WindowVariance, as in sample_with_hal), so memory does not grow with T;
  train(), which computes the batch's time projections and the table once and passes the
  batch forward and backward in slices of 2,500 rows on a CPU, accumulating the gradient (the
  same gradient up to rounding).

What bounds the sampling ratio: per row the baseline does ten 128 x 128 matrix products (six
in the residual blocks, the time embedding's and three time projections) and a sinusoid;
mi_lib does five. LayerNorms (seven against six per row) and the other passes over the
activations make up the rest, so the ratio cannot go far past 2 without fusing kernels.

Timing: the machines we share are noisy (the same run varies by 10-20% from minute to
minute), so the two variants are timed in one process, interleaved: the baseline's step, then
mi_lib's step, and so on to the end, for sampling (all T steps of N samples each) and for
training; each variant's time is the sum of its own steps, and the ratio of those sums is
reported. A slow minute slows both alike. Memory: each variant runs once more alone in a
fresh subprocess so that its peak resident memory (ru_maxrss, Linux reports KiB) is its own;
the script reports that peak minus the process's resident memory just before the loop; the
bytes of the tensors each sampler keeps for Hal come from their sizes in the timed run. Outputs are
compared: the two networks' eps agree to float rounding (printed), and mi_lib's interleaved
samples and Hal are bit for bit those of sample_with_hal in its memory run (asserted).

Allocator: with glibc's defaults, a loop that frees and re-allocates tensors of a megabyte or
more hands the memory back to the OS and faults it in again at every step; on our 2-core
machine that page-fault churn cost a third of mi_lib's sampling time (system time, not
compute). All the measuring runs therefore happen in child processes with
MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ set to 1 GiB, both variants alike;
--plain-malloc keeps the defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Iterator

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
from mi_lib.hal import WindowVariance
from mi_lib.models import timestep_embedding
from mi_lib.runtime import chunk_generator

WINDOW = (0, 14)  # Hal over the last 15 reverse steps, the paper's 1D window (Sec. 5)
SEED = 1


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


def _digest(*tensors: torch.Tensor) -> str:
    return hashlib.sha256(b"".join(t.contiguous().numpy().tobytes() for t in tensors)).hexdigest()[:16]


# Each sampler is a generator that yields after every step, so that the two can be interleaved;
# `out` receives its samples and Hal at the end.
def baseline_sampling(model: ToyMLP, n: int, T: int, out: dict) -> Iterator[None]:
    """All N samples as one batch; every step's x0_hat kept (float64) and Hal computed at the end."""
    model.eval()

    @torch.no_grad()
    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return baseline_eps(model, x, t)

    kept = []
    for step in ddpm_sample(eps_fn, (n, 1), linear_schedule(T), make_generator(SEED)):
        kept.append(step.x0_hat.double())  # every x0_hat, for Hal afterwards
        yield
    traj = torch.stack(kept)  # (T, N, d)
    out["hal"] = traj[-(WINDOW[1] - WINDOW[0] + 1):].var(dim=0, unbiased=False).mean(-1)  # steps t = 14..0
    out["x"], out["kept_bytes"] = step.x_prev, traj.nbytes  # the list of steps holds as much again
    yield


def mi_lib_sampling(model: ToyMLP, n: int, T: int, out: dict) -> Iterator[None]:
    """sample_with_hal(model_eps_fn(model), n, 1, schedule, seed, WINDOW, chunk=n), step by step:
    its one chunk's loop (mi_lib.learned.draw_chunks) with Hal accumulated on the fly."""
    acc = WindowVariance(*WINDOW)
    for step in ddpm_sample(model_eps_fn(model), (n, 1), linear_schedule(T), chunk_generator(SEED, 0)):
        acc.update(step.t, step.x0_hat)
        yield
    out["x"], out["hal"], out["kept_bytes"] = step.x_prev, acc.hal(), acc.mean.nbytes + acc.m2.nbytes


def baseline_training(model: ToyMLP, data: torch.Tensor, steps: int, batch: int) -> Iterator[None]:
    """Adam on the eps loss, the network computed per sample, the batch in one pass."""
    model.train()
    s, g = linear_schedule(1000), make_generator(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
    for _ in range(steps):
        idx = torch.randint(0, len(data), (batch,), generator=g)
        x0, t = data[idx], torch.randint(0, s.T, (batch,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        ab = s.alpha_bar.float()[t][:, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = ((baseline_eps(model, xt, t) - eps) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        yield


def mi_lib_training(model: ToyMLP, data: torch.Tensor, steps: int, batch: int) -> Iterator[None]:
    for _ in train(model, data, linear_schedule(1000), steps=steps, batch_size=batch, progress=False):
        yield


def interleave(loops: dict[str, Iterator[None]], skip: int = 0) -> dict[str, float]:
    """Advance the loops in turn, one step each, until all are done; each loop's wall-clock
    seconds summed over its steps after the first `skip` (a warm-up)."""
    secs, steps = dict.fromkeys(loops, 0.0), dict.fromkeys(loops, 0)
    live = dict(loops)
    while live:
        for name, loop in list(live.items()):
            t0 = time.perf_counter()
            try:
                next(loop)
            except StopIteration:
                del live[name]
                continue
            steps[name] += 1
            if steps[name] > skip:
                secs[name] += time.perf_counter() - t0
    return secs


def time_sampling(n: int, T: int) -> dict:
    outs = {"baseline": {}, "mi_lib": {}}
    secs = interleave({"baseline": baseline_sampling(_model(), n, T, outs["baseline"]),
                       "mi_lib": mi_lib_sampling(_model(), n, T, outs["mi_lib"])})
    return {kind: {"samples_per_s": n / secs[kind], "secs": secs[kind], "kept_bytes": o["kept_bytes"],
                   "hal_finite": bool(o["hal"].isfinite().all()), "digest": _digest(o["x"], o["hal"])}
            for kind, o in outs.items()}


def time_training(steps: int, batch: int) -> dict:
    data = mixture_preset("1d_three").sample(50_000, make_generator(0))
    warm = 3
    secs = interleave({"baseline": baseline_training(_model(), data, steps + warm, batch),
                       "mi_lib": mi_lib_training(_model(), data, steps + warm, batch)}, skip=warm)
    return {kind: {"steps_per_s": steps / s, "secs": s} for kind, s in secs.items()}


def memory(what: str, kind: str, args: argparse.Namespace) -> dict:
    """One variant alone: its peak resident memory above the start of its loop."""
    model, out = _model(), {}
    if what == "sample":
        rss0 = rss_kib()
        if kind == "baseline":
            for _ in baseline_sampling(model, args.n, args.T, out):
                pass
        else:  # the library function itself
            out["x"], out["hal"] = sample_with_hal(model_eps_fn(model), args.n, 1, linear_schedule(args.T), seed=SEED,
                                                   window=WINDOW, chunk=args.n, progress=False)
        return {"peak_minus_start_MiB": (peak_kib() - rss0) / 1024, "digest": _digest(out["x"], out["hal"])}
    data = mixture_preset("1d_three").sample(50_000, make_generator(0))
    loop = (baseline_training if kind == "baseline" else mi_lib_training)(model, data, args.train_steps + 3, args.batch)
    for _ in range(3):
        next(loop)
    rss0 = rss_kib()
    for _ in loop:
        pass
    return {"peak_minus_start_MiB": (peak_kib() - rss0) / 1024}


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
    job, *rest = args.child.split(":")
    if job == "time":
        out = time_sampling(args.n, args.T) if rest == ["sample"] else time_training(args.train_steps, args.batch)
    else:
        out = memory(rest[0], rest[1], args)
    print(json.dumps(out))


def _spawn(child: str, args: argparse.Namespace) -> dict:
    cmd = ["--child", child, "--n", str(args.n), "--T", str(args.T), "--train-steps", str(args.train_steps),
           "--batch", str(args.batch)]
    env = {}
    if not args.plain_malloc:  # the same for both variants: see the module docstring
        env.update(MALLOC_MMAP_THRESHOLD_=str(2**30), MALLOC_TRIM_THRESHOLD_=str(2**30))
    return run_child(__file__, cmd, env)


def _show(label: str, row: dict) -> None:
    print(f"{label:24s} " + "  ".join(f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
          flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="samples drawn (default 10,000)")
    p.add_argument("--T", type=int, default=1_000, help="diffusion steps (default 1000)")
    p.add_argument("--train-steps", type=int, default=30, help="timed training steps (default 30)")
    p.add_argument("--batch", type=int, default=10_000, help="training batch (default 10,000)")
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
    speed = {"train": _spawn("time:train", args), "sample": _spawn("time:sample", args)}
    for what, rows in speed.items():
        for kind, row in rows.items():
            _show(f"{what} {kind} (interleaved)", row)
    mem = {}
    for what in ("train", "sample"):
        for kind in ("baseline", "mi_lib"):
            mem[what, kind] = _spawn(f"mem:{what}:{kind}", args)
            _show(f"{what} {kind} (alone)", mem[what, kind])
    same = speed["sample"]["mi_lib"]["digest"] == mem["sample", "mi_lib"]["digest"]
    assert same, "the interleaved mi_lib sampler must give sample_with_hal's samples and Hal bit for bit"
    tr = speed["train"]["mi_lib"]["steps_per_s"] / speed["train"]["baseline"]["steps_per_s"]
    sa = speed["sample"]["mi_lib"]["samples_per_s"] / speed["sample"]["baseline"]["samples_per_s"]
    kb, km = speed["sample"]["baseline"]["kept_bytes"], speed["sample"]["mi_lib"]["kept_bytes"]
    print("mi_lib's interleaved samples and Hal equal sample_with_hal's bit for bit")
    print(f"training speed-up {tr:.2f}x (target >= 1.4x); sampling speed-up {sa:.2f}x (target >= 2x)")
    print(f"kept for Hal: baseline {kb / 2**20:.1f} MiB (T x N x d float64), "
          f"mi_lib {km / 2**10:.1f} KiB (independent of T)")


if __name__ == "__main__":
    main()
