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
from tqdm.auto import tqdm

from mi_lib.checkpoints import load_checkpoint, save_checkpoint
from mi_lib.checks import check_positive, check_positive_int
from mi_lib.diffusion import q_sample
from mi_lib.schedules import Schedule


class TrainStep(NamedTuple):
    """The step just taken (1-based) and its loss."""

    step: int
    loss: float


def eps_loss(
    model: nn.Module, x0: torch.Tensor, schedule: Schedule, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """The DDPM objective: || eps - eps_theta(x_t, t) ||^2, averaged (Ho et al. 2020, Eq. 14)."""
    xt = q_sample(x0, t, schedule, eps)
    return torch.mean((model(xt, schedule.timesteps.to(t.device)[t]) - eps) ** 2)


def _seeded(seed: int, stream: int, index: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + stream * 7_919_993 + index) % 2**62)


def train(
    model: nn.Module, x0: torch.Tensor, schedule: Schedule, steps: int, batch_size: int,
    lr: float = 1e-3, seed: int = 0, checkpoint: str | Path | None = None, save_every: int = 1000,
    progress: bool = True,
) -> Iterator[TrainStep]:
    """Train `model` to predict eps on data x0 (N, ...) with Adam (betas 0.9, 0.999), no EMA,
    warm-up or clipping (the paper's toy set-up). Each epoch visits the data once in a fresh
    shuffled order, in batches of batch_size (the last one may be smaller).

    checkpoint: a file to resume from if it exists, and to save to every save_every steps and
    at the end. Yields TrainStep(step, loss) after each step.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size), ("save_every", save_every)):
        check_positive_int(name, value)
    check_positive("lr", lr)
    if x0.ndim < 2 or x0.shape[0] == 0:
        raise ValueError(f"x0 must have shape (N, ...) with N >= 1, got {tuple(x0.shape)}")
    device = next(model.parameters()).device
    x0 = x0.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
    n, batch_size = x0.shape[0], min(batch_size, x0.shape[0])
    per_epoch = -(-n // batch_size)
    epoch, perm = -1, None
    model.train()
    bar = tqdm(range(start, steps), desc="training", initial=start, total=steps, disable=not progress)
    for step in bar:
        if step // per_epoch != epoch:
            epoch = step // per_epoch
            perm = torch.randperm(n, generator=_seeded(seed, 0, epoch, device), device=device)
        i = (step % per_epoch) * batch_size
        batch = x0[perm[i : i + batch_size]]
        g = _seeded(seed, 1, step, device)
        t = torch.randint(0, schedule.T, (len(batch),), generator=g, device=device)
        eps = torch.randn(batch.shape, generator=g, device=device, dtype=batch.dtype)
        loss = eps_loss(model, batch, schedule, t, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = step + 1
        if checkpoint is not None and (done % save_every == 0 or done == steps):
            save_checkpoint(checkpoint, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": done})
        value = float(loss.detach())
        if done % 50 == 0:
            bar.set_postfix(loss=f"{value:.4f}")
        yield TrainStep(done, value)
    model.eval()
