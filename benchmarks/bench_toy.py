"""Speed of mi_lib's toy trainer and sampler against the paper authors' own code.

    python benchmarks/bench_toy.py            # N = 10,000 draws, T = 1000, training batch 10,000
    python benchmarks/bench_toy.py --quick    # N = 1,000 draws, 5 timed training steps: a smoke test
    python benchmarks/bench_toy.py --device cuda --n 200000 --train-steps 200 --million --unet

The authors' side is their released toy package (`ddpm_torch.toy`, MIT), read from
/work/shared/reference/authors-toy, or the folder given by --authors or $MI_AUTHORS_TOY:
Decoder(1, 128, 3) with GaussianDiffusion(linear betas 0.001-0.2, T = 1000, eps, fixed-large,
mse). Training is their Trainer.step (Adam 1e-3, one pass over the batch); sampling is their
p_sample, and p_sample_save_all, which keeps every step's x0 prediction for their Hal. Both
samplers are driven one step at a time through their own p_sample_step, exactly as their loops
do (checked equal to p_sample and p_sample_save_all bit for bit before timing). Their network
gets the trained weights of mi_lib's shipped '1d_three' model (their blocks are one module
repeated, so it gets the first block), which keeps the sampler's states finite.
When that folder is missing, the baseline is mi_lib's own plain path instead: ToyMLP called
directly (every row embeds its own t), the whole batch at once, every x0_hat stored for Hal.

mi_lib's side is the shipped '1d_three' ToyMLP: train() and the samplers behind sample_bank and
sample_with_hal (model_eps_fn, i.e. mi_lib.fast; Hal accumulated by WindowVariance), checked
equal to sample_with_hal bit for bit before timing.

Timing: the machines we share are noisy, so all variants run in one process, interleaved step by
step (one training step, or one reverse step of all N draws, of each variant in turn), with
glibc's default allocator; each variant's time is the sum of its own steps, and ratios of those
sums are reported: a slow minute slows every variant alike. On a shared machine the absolute
numbers still move by a factor of two or more with the load, and the ratios by 10-30%.

On a GPU (--device cuda) both sides run there (their code as written: their Trainer and p_sample
given the device), and the turns are blocks of steps (sampling: --block, default 25 there, 1 on
a CPU; training: 50, as mi_lib reads its losses every 50 steps there) closed by a device
synchronisation, so that each block's time is its own work and a variant
that queues work without waiting keeps that advantage inside its block. --million also times
sample_with_hal on 1,000,000 draws in one chunk; --unet times training steps of the Simple
Shapes U-Net (batch 64): eager in float32 and under bf16 autocast, and as a CUDA graph.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import torch

from mi_lib import (
    WindowVariance,
    chunk_generator,
    ddpm_sample,
    hal_from_trajectory,
    linear_schedule,
    make_generator,
    mixture_preset,
    model_eps_fn,
    sample_with_hal,
    train,
)
from mi_lib.artifacts import load_artifact
from mi_lib.compute import READ_EVERY

AUTHORS = Path(os.environ.get("MI_AUTHORS_TOY", "/work/shared/reference/authors-toy"))
WINDOW = (0, 14)  # Hal over the last 15 reverse steps, the paper's 1D window (Sec. 5)
SEED = 1
Loop = Iterator[None]
DEVICE = torch.device("cpu")  # set by --device
T_STEPS = 1000  # the paper's T; --T changes it for the fallback baseline only (a smoke test)


def _mi_lib_model():
    return load_artifact("1d_three")["model"].to(DEVICE)


def import_authors(folder: Path) -> types.ModuleType:
    """Their ddpm_torch.toy, with the wandb and torchvision imports it does not need stubbed."""
    sys.modules.setdefault("wandb", types.ModuleType("wandb"))
    tv, tvu = types.ModuleType("torchvision"), types.ModuleType("torchvision.utils")
    tvu.save_image = tvu.make_grid = lambda *a, **k: None
    tv.utils = tvu
    sys.modules.setdefault("torchvision", tv)
    sys.modules.setdefault("torchvision.utils", tvu)
    sys.path.insert(0, str(folder))
    import ddpm_torch.toy as toy

    return toy


class Authors:
    """The authors' network, diffusion and trainer, with mi_lib's trained weights."""

    def __init__(self, toy: types.ModuleType) -> None:
        self.toy = toy
        betas = toy.get_beta_schedule("linear", beta_start=0.001, beta_end=0.2, timesteps=1000)
        self.diffusion = toy.GaussianDiffusion(betas=betas, model_mean_type="eps", model_var_type="fixed-large",
                                               loss_type="mse")
        self.state = None
        self.model()  # the short training run, outside the samplers' inference mode

    def model(self):
        """Their Decoder with the weights of a short run of their own trainer (300 steps of 1,000
        draws of the 1D mixture), enough to keep their sampler's states finite."""
        dec = self.toy.Decoder(1, 128, 3)
        if self.state is None:
            torch.manual_seed(0)  # their init and their trainer's t and eps draw from the global generator
            dec = self.toy.Decoder(1, 128, 3)
            for _ in self.training(mixture_preset("1d_three").sample(50_000, make_generator(0)), 300, 1_000, dec):
                pass
            self.state = dec.state_dict()
        dec.load_state_dict(self.state)
        return dec.to(DEVICE)

    def training(self, data: torch.Tensor, steps: int, batch: int, model: torch.nn.Module | None = None) -> Loop:
        model = (self.model() if model is None else model).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
        device = next(model.parameters()).device
        trainer = self.toy.Trainer(model, opt, self.diffusion, epochs=1, trainloader=None, shape=(1,),
                                   args=types.SimpleNamespace(log_results=False), device=device)
        g, data = make_generator(0), data.to(device)
        for _ in range(steps):
            trainer.step(data[torch.randperm(len(data), generator=g)[:batch].to(data.device)])
            yield

    @torch.inference_mode()
    def sampling(self, n: int, save_all: bool, out: dict) -> Loop:
        """Their p_sample (save_all: p_sample_save_all) one step at a time: the same lines."""
        model, d = self.model().eval(), self.diffusion
        t, rng = torch.empty((n,), dtype=torch.int64, device=DEVICE), torch.Generator(DEVICE).manual_seed(SEED)
        x_t = torch.empty((n, 1), device=DEVICE).normal_(generator=rng)
        pred_x0_all, xt_all = [], []
        for ti in range(d.timesteps - 1, -1, -1):
            t.fill_(ti)
            if save_all:
                x_t, pred_x0 = d.p_sample_step(model, x_t, t, generator=rng, return_pred=True)
                pred_x0_all.append(pred_x0.clone().detach().cpu())
                xt_all.append(x_t.clone().detach().cpu())
            else:
                x_t = d.p_sample_step(model, x_t, t, generator=rng)
            yield
        if save_all:  # their Hal: the variance of the window's x0 predictions
            window = torch.stack(pred_x0_all[len(pred_x0_all) - 1 - WINDOW[1]:len(pred_x0_all) - WINDOW[0]])
            out["hal"], out["kept_bytes"] = hal_from_trajectory(window), 2 * sum(p.nbytes for p in pred_x0_all)
        out["x"] = x_t

    def check(self, n: int) -> None:
        """The step-by-step loops give p_sample's and p_sample_save_all's results bit for bit."""
        for save_all, run in ((False, self.diffusion.p_sample), (True, self.diffusion.p_sample_save_all)):
            out = {}
            for _ in self.sampling(n, save_all, out):
                pass
            want = run(self.model().eval(), shape=(n, 1), seed=SEED, device=DEVICE)
            assert torch.equal(out["x"], want[0] if save_all else want), "not the authors' sampler"


class Plain:
    """The fallback baseline: mi_lib's ToyMLP called plainly, the whole batch in one pass."""

    def training(self, data: torch.Tensor, steps: int, batch: int) -> Loop:
        from mi_lib.training import eps_loss

        model, s, g = _mi_lib_model().train(), linear_schedule(T_STEPS), make_generator(0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
        for _ in range(steps):
            x0 = data[torch.randperm(len(data), generator=g)[:batch]].to(DEVICE)
            t = torch.randint(0, s.T, (batch,), generator=g).to(DEVICE)
            loss = eps_loss(model, x0, s, t, torch.randn(x0.shape, generator=g).to(DEVICE))
            opt.zero_grad()
            loss.backward()
            opt.step()
            yield

    @torch.inference_mode()
    def sampling(self, n: int, save_all: bool, out: dict) -> Loop:
        model = _mi_lib_model().eval()
        kept = []
        for step in ddpm_sample(model, (n, 1), linear_schedule(T_STEPS), make_generator(SEED, DEVICE), progress=False):
            if save_all:
                kept.append(step.x0_hat.clone())
            yield
        if save_all:
            out["hal"], out["kept_bytes"] = hal_from_trajectory(torch.stack(kept[-WINDOW[1] - 1:])), sum(
                k.nbytes for k in kept)
        out["x"] = step.x_prev

    def check(self, n: int) -> None:
        pass


def mi_lib_training(data: torch.Tensor, steps: int, batch: int) -> Loop:
    for _ in train(_mi_lib_model(), data.to(DEVICE), linear_schedule(T_STEPS), steps=steps, batch_size=batch,
                   progress=False):
        yield


def mi_lib_sampling(n: int, hal: bool, out: dict) -> Loop:
    """sample_with_hal(model_eps_fn(model), n, 1, schedule, SEED, WINDOW, chunk=n) step by step
    (hal=False: sample_bank, the same loop without the accumulator)."""
    acc = WindowVariance(*WINDOW)
    for step in ddpm_sample(model_eps_fn(_mi_lib_model()), (n, 1), linear_schedule(T_STEPS),
                            chunk_generator(SEED, 0, DEVICE), progress=False):
        if hal:
            acc.update(step.t, step.x0_hat)
        yield
    out["x"] = step.x_prev
    if hal:
        out["hal"], out["kept_bytes"] = acc.hal(), acc.mean.nbytes + acc.m2.nbytes


def check_mi_lib(n: int) -> None:
    out = {}
    for _ in mi_lib_sampling(n, True, out):
        pass
    x, hal = sample_with_hal(model_eps_fn(_mi_lib_model()), n, 1, linear_schedule(T_STEPS), SEED, WINDOW, chunk=n,
                             device=DEVICE, progress=False)
    assert torch.equal(out["x"].cpu(), x) and torch.equal(out["hal"].cpu(), hal), "not sample_with_hal"


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def interleave(loops: dict[str, Loop], skip: int = 0, block: int = 1) -> dict[str, float]:
    """Advance the loops in turn, `block` steps each (then wait for the device), until all are
    done; each loop's seconds summed over its blocks after the first `skip` steps (a warm-up)."""
    secs, steps, live = dict.fromkeys(loops, 0.0), dict.fromkeys(loops, 0), dict(loops)
    while live:
        for name, loop in list(live.items()):
            _sync()
            t0, done = time.perf_counter(), 0
            for _ in range(block):
                try:
                    next(loop)
                except StopIteration:
                    del live[name]
                    break
                done += 1
            _sync()
            if done and steps[name] >= skip:
                secs[name] += time.perf_counter() - t0
            steps[name] += done
    return secs


def time_million(n: int = 1_000_000) -> float:
    """Seconds for sample_with_hal on n draws in one chunk (T = 1000, Hal over the 1D window)."""
    eps_fn = model_eps_fn(_mi_lib_model())
    sample_with_hal(eps_fn, 1_000, 1, linear_schedule(1000), SEED, WINDOW, chunk=1_000, device=DEVICE, progress=False)
    _sync()
    t0 = time.perf_counter()
    x, hal = sample_with_hal(eps_fn, n, 1, linear_schedule(1000), SEED, WINDOW, chunk=n, device=DEVICE,
                             progress=False)
    _sync()
    assert len(x) == n and bool(torch.isfinite(hal).all())
    return time.perf_counter() - t0


def unet_rates(steps: int = 300, warm: int = 50) -> dict[str, float]:
    """Training steps per second of the Simple Shapes recipe's U-Net (batch 64, v prediction,
    EMA): eager in float32, eager under bf16 autocast, and (on CUDA) replayed as a CUDA graph."""
    from mi_lib.artifacts.shapes import RECIPE

    data = RECIPE.data().to(DEVICE)
    variants = [("eager float32", None, False), ("eager bf16 autocast", "bfloat16", False)]
    if DEVICE.type == "cuda":
        variants.append(("CUDA graph float32", None, True))
    rates = {}
    for label, autocast, graphs in variants:
        model, ema = RECIPE.model().to(DEVICE), RECIPE.model().to(DEVICE)
        loop = train(model, data, RECIPE.schedule(), steps=steps, batch_size=64, lr=RECIPE.lr, ema=ema,
                     prediction="v", progress=False, autocast=autocast, graphs=graphs)
        t0 = None
        for s in loop:
            if s.step == warm:
                _sync()
                t0 = time.perf_counter()
        _sync()
        rates[label] = (steps - warm) / (time.perf_counter() - t0)
    return rates


def main() -> None:
    global DEVICE, T_STEPS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=None, help="draws per sampler (default 10,000)")
    p.add_argument("--train-steps", type=int, default=None, help="timed training steps (default 30)")
    p.add_argument("--batch", type=int, default=10_000, help="training batch (default 10,000)")
    p.add_argument("--authors", type=Path, default=AUTHORS, help="the authors' toy package's folder")
    p.add_argument("--quick", action="store_true", help="N = 1,000 and 5 training steps (unless given)")
    p.add_argument("--device", default="cpu", help="where both sides run (cpu, cuda)")
    p.add_argument("--block", type=int, default=None,
                   help="sampling steps per turn (default 1 on a CPU, 25 elsewhere; training turns are 50 there)")
    p.add_argument("--T", type=int, default=1000, help="diffusion steps (default 1000; others only without the "
                   "authors' code, for a smoke test)")
    p.add_argument("--million", action="store_true", help="also time sample_with_hal on 1,000,000 draws")
    p.add_argument("--unet", action="store_true", help="also time the Simple Shapes U-Net's training steps")
    args = p.parse_args()
    args.n = args.n or (1_000 if args.quick else 10_000)
    args.train_steps = args.train_steps or (5 if args.quick else 30)
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA device")
    block = args.block or (1 if DEVICE.type == "cpu" else 25)
    base = Authors(import_authors(args.authors)) if (args.authors / "ddpm_torch").is_dir() else Plain()
    if args.T != 1000 and isinstance(base, Authors):
        p.error(f"--T {args.T}: the authors' code runs T = 1000 only")
    T_STEPS = args.T
    who = "the authors' code" if isinstance(base, Authors) else "mi_lib's plain path (authors' code not found)"
    name = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {name}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}; "
          f"baseline: {who}; N = {args.n:,}, T = {T_STEPS}, batch {args.batch:,}, {args.train_steps} timed training "
          f"steps, turns of {block} step(s)")
    base.check(200)
    check_mi_lib(200)
    # On a device, train() reads its losses every READ_EVERY steps: training turns and the warm-up
    # are whole multiples of that, so each turn holds its own steps' work.
    train_block = 1 if DEVICE.type == "cpu" else READ_EVERY
    data, warm = mixture_preset("1d_three").sample(50_000, make_generator(0)), max(3, train_block)
    tr = interleave({"baseline": base.training(data, args.train_steps + warm, args.batch),
                     "mi_lib": mi_lib_training(data, args.train_steps + warm, args.batch)}, skip=warm,
                    block=train_block)
    for k, s in tr.items():
        print(f"train  {k:13s} {args.train_steps / s:8.2f} steps/s", flush=True)
    outs = {k: {} for k in ("baseline", "baseline+Hal", "mi_lib", "mi_lib+Hal")}
    runs: dict[str, Callable[[dict], Loop]] = {
        "baseline": lambda o: base.sampling(args.n, False, o), "baseline+Hal": lambda o: base.sampling(args.n, True, o),
        "mi_lib": lambda o: mi_lib_sampling(args.n, False, o), "mi_lib+Hal": lambda o: mi_lib_sampling(args.n, True, o)}
    with torch.inference_mode() if DEVICE.type != "cpu" else nullcontext():
        sa = interleave({k: run(outs[k]) for k, run in runs.items()}, block=block)
    for k, s in sa.items():
        kept = f"  kept for Hal {outs[k]['kept_bytes'] / 2**20:8.3f} MiB" if "kept_bytes" in outs[k] else ""
        print(f"sample {k:13s} {args.n / s:8.1f} draws/s{kept}")
    print(f"training speed-up {tr['baseline'] / tr['mi_lib']:.2f}x; sampling speed-up: sample_with_hal against the "
          f"baseline without Hal (the authors' p_sample) {sa['baseline'] / sa['mi_lib+Hal']:.2f}x, with Hal on both "
          f"{sa['baseline+Hal'] / sa['mi_lib+Hal']:.2f}x, without Hal on both {sa['baseline'] / sa['mi_lib']:.2f}x",
          flush=True)
    if args.million:
        print(f"sample_with_hal, 1,000,000 draws at T = 1000 in one chunk: {time_million():.1f} s", flush=True)
    if args.unet:
        rates = unet_rates()
        print("U-Net training (Simple Shapes recipe, batch 64): " +
              ", ".join(f"{k} {v:.1f} steps/s" for k, v in rates.items()))


if __name__ == "__main__":
    main()
