"""What a trained eps network implies: its score and x0 prediction at any step (paper
Sec. 4.3, Fig. 4), and seeded sample banks drawn from it with the ancestral sampler."""

from __future__ import annotations

import torch
from torch import nn

from mi_lib import compute
from mi_lib.checks import check_t_in_schedule
from mi_lib.diffusion import EpsFn, x0_hat_from_eps
from mi_lib.hal import sample_chunks
from mi_lib.schedules import Schedule


def model_eps_fn(model: nn.Module, rows: int = 2_500) -> EpsFn:
    """The sampler's eps_fn for a network: eval mode, no autograd bookkeeping, computed the way
    its device suits (mi_lib.compute.eps_fn: on a CPU a ToyMLP the fast way, in slices of
    `rows` rows; on a GPU whole chunks)."""
    return compute.eps_fn(model, rows)


def learned_eps(model: nn.Module, x: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
    """eps_theta(x, t) at step t of the schedule, for a batch x (N, d)."""
    check_t_in_schedule(t, schedule.T)
    device = next(model.parameters()).device
    return model_eps_fn(model)(x.to(device), schedule.timesteps[t].to(device)).cpu()


def learned_score(model: nn.Module, x: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
    """The score the network implies: -eps_theta(x, t) / sqrt(1 - alpha_bar_t) (paper Sec. 4.3)."""
    return -learned_eps(model, x, t, schedule) / float(schedule.sqrt_one_minus_alpha_bar[t])


def learned_x0_hat(model: nn.Module, x: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
    """The network's prediction of the clean sample from x_t = x (paper Sec. 5)."""
    return x0_hat_from_eps(x, t, learned_eps(model, x, t, schedule), schedule)


def sample_bank(
    eps_fn: EpsFn, n: int, dim: int | tuple[int, ...], schedule: Schedule, seed: int, *, chunk: int = 2_000,
    first_chunk: int = 0, device: torch.device | str = "cpu", variance: str = "fixed_large",
    clip_x0: float | None = None, progress: bool = True,
) -> torch.Tensor:
    """n samples ``(n, *dim)`` from ancestral DDPM sampling (fixed-large variance by default, as
    the paper's toy code), drawn in chunks of `chunk` rows that can be redrawn alone
    (mi_lib.hal.sample_chunks; chunks of a few thousand rows stay in a CPU's cache). dim is
    an int for vectors or a tuple such as (1, 64, 64) for images."""
    return sample_chunks(eps_fn, n, dim, schedule, seed=seed, chunk=chunk, first_chunk=first_chunk, device=device,
                         variance=variance, clip_x0=clip_x0, progress=progress)[0]
