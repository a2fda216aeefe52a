"""One training loop for every eps network: a generator that yields each step's loss.

Randomness is a pure function of (seed, step): the shuffle of epoch e and the t and eps of
step s each come from a generator seeded afresh from them. So a run resumed from a
checkpoint takes exactly the steps the uninterrupted run would have taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from mi_lib.checkpoints import load_checkpoint, save_checkpoint
from mi_lib.checks import check_choice, check_positive, check_positive_int
from mi_lib.diffusion import q_sample
from mi_lib.prediction import PREDICTIONS, training_target
from mi_lib.runtime import progress_bar
from mi_lib.schedules import Schedule


class TrainStep(NamedTuple):
    """The step just taken (1-based) and its loss."""

    step: int
    loss: float


def eps_loss(
    model: nn.Module, x0: torch.Tensor, schedule: Schedule, t: torch.Tensor, eps: torch.Tensor,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """The DDPM objective: || eps - eps_theta(x_t, t) ||^2, averaged (Ho et al. 2020, Eq. 14).
    target: what the network should output instead of eps (v for a v network, see
    mi_lib.prediction); x_t is drawn with eps either way."""
    xt = q_sample(x0, t, schedule, eps)
    return torch.mean((model(xt, schedule.timesteps.to(t.device)[t]) - (eps if target is None else target)) ** 2)


def _backward_in_chunks(
    model: nn.Module, x0: torch.Tensor, schedule: Schedule, t: torch.Tensor, eps: torch.Tensor, chunk: int,
    target: torch.Tensor | None = None,
) -> float:
    """Backpropagate the batch's mean eps loss in slices of `chunk` rows, accumulating the
    gradient: the same gradient as one pass over the batch up to float rounding, but each
    slice's activations stay in the CPU's cache. Returns the batch's loss.

    A network with time_table, first_layer and forward_features (ToyMLP) has its time
    projections (for the batch's distinct t) and its first-layer table computed once per
    batch; each slice back-propagates into detached copies of them, and one last backward
    pass carries their summed gradient into the weights they came from. target: what the
    network should output (None: eps)."""
    target = eps if target is None else target
    if not all(hasattr(model, a) for a in ("time_table", "first_layer", "forward_features")):
        return _accumulate(lambda sl: eps_loss(model, x0[sl], schedule, t[sl], eps[sl], target[sl]), len(x0), chunk)
    uniq, inverse = torch.unique(schedule.timesteps.to(t.device)[t], return_inverse=True)
    table, first = model.time_table(uniq), model.first_layer()
    shared = [*table, *((first.A, first.B) if first is not None else ())]
    leaves = [p.detach().requires_grad_() for p in shared]
    n_time = len(table)
    first_leaves = first._replace(A=leaves[n_time], B=leaves[n_time + 1]) if first is not None else None

    def slice_loss(sl: slice) -> torch.Tensor:
        xt = q_sample(x0[sl], t[sl], schedule, eps[sl])
        projs = [leaf.index_select(0, inverse[sl]) for leaf in leaves[:n_time]]
        return torch.mean((model.forward_features(xt, projs, first_leaves) - target[sl]) ** 2)

    total = _accumulate(slice_loss, len(x0), chunk)
    torch.autograd.backward(shared, [leaf.grad for leaf in leaves])
    return total


def _accumulate(slice_loss, n: int, chunk: int) -> float:
    """Backpropagate slice_loss over slices of `chunk` rows, weighted to the mean over n."""
    total = 0.0
    for i in range(0, n, chunk):
        sl = slice(i, min(i + chunk, n))
        part = slice_loss(sl) * ((sl.stop - sl.start) / n)
        part.backward()
        total += float(part.detach())
    return total


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter; buffers copied."""
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def _seeded(seed: int, stream: int, index: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + stream * 7_919_993 + index) % 2**62)


def train(
    model: nn.Module, x0: torch.Tensor, schedule: Schedule, steps: int, batch_size: int,
    lr: float = 1e-3, seed: int = 0, checkpoint: str | Path | None = None, save_every: int = 1000,
    progress: bool = True, chunk: int | None = None, ema: nn.Module | None = None, ema_decay: float = 0.999,
    prediction: str = "eps",
) -> Iterator[TrainStep]:
    """Train `model` to predict eps (or v: see `prediction`) on data x0 (N, ...) with Adam
    (betas 0.9, 0.999), no warm-up or clipping (the paper's toy set-up). Each epoch visits the data once in a fresh
    shuffled order, in batches of batch_size (the last one may be smaller).

    checkpoint: a file to resume from if it exists, and to save to every save_every steps and
    at the end. Yields TrainStep(step, loss) after each step.

    chunk: rows per forward/backward pass; a larger batch is processed in slices and its
    gradient accumulated (the same gradient up to float rounding). None picks 2,500 rows on
    a CPU, where it is faster for the toy MLP, and whole batches on a GPU.

    ema: a copy of `model` to hold the exponential moving average of its weights (decay
    ema_decay per step), the usual companion of image diffusion models; it is updated after
    every step and saved in, and resumed from, the checkpoint. The toy models use none.

    prediction: 'eps' (the paper's toy models) or 'v'; a v network samples through
    mi_lib.prediction.VPrediction. Both draw the same t, eps and x_t at every step.
    """
    check_choice("prediction", prediction, PREDICTIONS)
    for name, value in (("steps", steps), ("batch_size", batch_size), ("save_every", save_every)):
        check_positive_int(name, value)
    check_positive("lr", lr)
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay!r}")
    if x0.ndim < 2 or x0.shape[0] == 0:
        raise ValueError(f"x0 must have shape (N, ...) with N >= 1, got {tuple(x0.shape)}")
    device = next(model.parameters()).device
    chunk = chunk if chunk is not None else (2_500 if device.type == "cpu" else batch_size)
    check_positive_int("chunk", chunk)
    x0 = x0.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
    n, batch_size = x0.shape[0], min(batch_size, x0.shape[0])
    per_epoch = -(-n // batch_size)
    epoch, perm = -1, None
    model.train()
    bar = progress_bar(range(start, steps), desc="training", initial=start, total=steps, progress=progress)
    for step in bar:
        if step // per_epoch != epoch:
            epoch = step // per_epoch
            perm = torch.randperm(n, generator=_seeded(seed, 0, epoch, device), device=device)
        i = (step % per_epoch) * batch_size
        batch = x0[perm[i : i + batch_size]]
        g = _seeded(seed, 1, step, device)
        t = torch.randint(0, schedule.T, (len(batch),), generator=g, device=device)
        eps = torch.randn(batch.shape, generator=g, device=device, dtype=batch.dtype)
        opt.zero_grad(set_to_none=True)
        target = training_target(prediction, batch, t, schedule, eps)
        value = _backward_in_chunks(model, batch, schedule, t, eps, chunk, target)
        opt.step()
        if ema is not None:
            _ema_update(ema, model, ema_decay)
        done = step + 1
        if checkpoint is not None and (done % save_every == 0 or done == steps):
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": done}
            save_checkpoint(checkpoint, state | ({"ema": ema.state_dict()} if ema is not None else {}))
        if done % 50 == 0:
            bar.set_postfix(loss=f"{value:.4f}")
        yield TrainStep(done, value)
    model.eval()
