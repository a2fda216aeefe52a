"""Noise schedules: beta_t, alpha_t and alpha_bar_t, and respacing to fewer steps.

Time is indexed 0..T-1 as in DDPM code: alpha_bar[t] = prod_{s <= t} (1 - beta_s), so
x_t = sqrt(alpha_bar[t]) x0 + sqrt(1 - alpha_bar[t]) eps. Buffers are float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

from mi_lib.checks import check_positive_int, check_t_in_schedule, check_window

SCHEDULE_KINDS = ("linear", "cosine")


@dataclass(frozen=True)
class Schedule:
    """A discrete noise schedule.

    betas: beta_t for each of the schedule's steps (float64).
    timesteps: the time index the *network* is called with at each step. It equals
    arange(T) for a full schedule; a respaced schedule keeps the original indices.
    """

    betas: torch.Tensor
    timesteps: torch.Tensor

    def __post_init__(self) -> None:
        b = self.betas
        if b.ndim != 1 or len(b) == 0:
            raise ValueError(f"betas must be a non-empty 1D tensor, got shape {tuple(b.shape)}")
        if not bool(((b > 0) & (b < 1)).all()):
            raise ValueError(
                f"betas must lie in (0, 1); got min {b.min().item():.3g}, max {b.max().item():.3g}"
            )
        if self.timesteps.shape != b.shape:
            raise ValueError(
                f"timesteps must have the shape of betas {tuple(b.shape)}, "
                f"got {tuple(self.timesteps.shape)}"
            )

    @property
    def T(self) -> int:
        return len(self.betas)

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @cached_property
    def alpha_bar(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)

    @cached_property
    def sqrt_alpha_bar(self) -> torch.Tensor:
        return self.alpha_bar.sqrt()

    @cached_property
    def sqrt_one_minus_alpha_bar(self) -> torch.Tensor:
        return (1.0 - self.alpha_bar).sqrt()

    @cached_property
    def alpha_bar_prev(self) -> torch.Tensor:
        """alpha_bar[t - 1], with alpha_bar[-1] = 1 (no noise before the first step)."""
        return torch.cat([torch.ones(1, dtype=self.betas.dtype, device=self.betas.device), self.alpha_bar[:-1]])

    @cached_property
    def posterior_coefs(self) -> tuple[list[float], list[float], list[float]]:
        """Per step, as Python floats: the posterior mean's coefficients of x0 and of x_t,
        and the posterior variance of q(x_{t-1} | x_t, x0) (Ho et al. 2020, Eq. 7). Samplers
        read these once per step instead of doing tensor arithmetic on scalars."""
        ab, ab_prev, beta = self.alpha_bar, self.alpha_bar_prev, self.betas
        c0 = beta * ab_prev.sqrt() / (1 - ab)
        ct = (1 - ab_prev) * (1 - beta).sqrt() / (1 - ab)
        return c0.tolist(), ct.tolist(), (beta * (1 - ab_prev) / (1 - ab)).tolist()

    def to(self, device: torch.device | str) -> Schedule:
        """The schedule with its buffers on `device` (itself if they are there already), for
        training steps that index it by a device tensor of t without a host transfer."""
        device = torch.device(device)
        if self.betas.device == device:
            return self
        return Schedule(self.betas.to(device), self.timesteps.to(device))

    def at(self, t: int) -> float:
        """alpha_bar at step t, checked against the schedule's range."""
        check_t_in_schedule(t, self.T)
        return float(self.alpha_bar[t])


def linear_schedule(T: int = 1000, beta_start: float = 1e-3, beta_end: float = 0.2) -> Schedule:
    """Betas spaced linearly from beta_start to beta_end (the paper's toy set-up, Sec. 4)."""
    check_positive_int("T", T)
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {value}")
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return Schedule(betas, torch.arange(T))


def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Cosine schedule of Nichol & Dhariwal (2021): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2)."""
    check_positive_int("T", T)
    if not (0.0 <= s and math.isfinite(s)):
        raise ValueError(f"s must be a non-negative finite offset, got {s!r}")
    if not 0.0 < max_beta < 1.0:
        raise ValueError(f"max_beta must lie in (0, 1), got {max_beta}")

    def f(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)]
    return Schedule(torch.tensor(betas, dtype=torch.float64), torch.arange(T))


def make_schedule(kind: str, T: int = 1000) -> Schedule:
    """A schedule by name: 'linear' (the paper's 0.001 to 0.2) or 'cosine'."""
    if kind == "linear":
        return linear_schedule(T)
    if kind == "cosine":
        return cosine_schedule(T)
    raise ValueError(f"kind must be one of {SCHEDULE_KINDS}, got {kind!r}")


def respace(schedule: Schedule, n_steps: int) -> Schedule:
    """Keep n_steps evenly spaced steps of a schedule (Nichol & Dhariwal 2021, Sec. 4).

    The kept steps keep their alpha_bar; new betas are 1 - alpha_bar[s_i] / alpha_bar[s_{i-1}],
    and the network is still called with the original time index s_i.
    """
    check_positive_int("n_steps", n_steps)
    if n_steps > schedule.T:
        raise ValueError(f"n_steps must be at most the schedule's T = {schedule.T}, got {n_steps}")
    keep = torch.linspace(0, schedule.T - 1, n_steps).round().long()
    ab = schedule.alpha_bar[keep]
    ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    return Schedule(1.0 - ab / ab_prev, schedule.timesteps[keep])


def window_steps(schedule: Schedule, t_lo: int, t_hi: int) -> tuple[int, int]:
    """The step indices (i_lo, i_hi) of a (possibly respaced) schedule whose network times lie
    in [t_lo, t_hi] of the original schedule. The paper states Hal windows in original time
    (Simple Shapes: t = 850 down to 700 while sampling with 250 respaced steps, Sec. 5)."""
    check_window(t_lo, t_hi)  # in the original schedule's times, which this one may not reach
    ts = schedule.timesteps
    inside = ((ts >= t_lo) & (ts <= t_hi)).nonzero().flatten()
    if len(inside) == 0:
        raise ValueError(
            f"no step of the schedule has its time in [{t_lo}, {t_hi}]; its times run from "
            f"{int(ts[0])} to {int(ts[-1])}"
        )
    return int(inside[0]), int(inside[-1])
