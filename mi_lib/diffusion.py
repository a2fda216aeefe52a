"""The forward process, the reverse step, and samplers that yield every step.

Notation follows DDPM (Ho et al. 2020) and the paper (Sec. 3): x_t = sqrt(alpha_bar_t) x0 +
sqrt(1 - alpha_bar_t) eps, and the network predicts eps. Step indices t run over the
schedule (0..T-1); the network is called with ``schedule.timesteps[t]``, which differs from t
only for a respaced schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch

from mi_lib.checks import check_choice, check_positive, check_t_in_schedule
from mi_lib.runtime import progress_bar
from mi_lib.schedules import Schedule

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""eps_fn(x_t, t_model) -> predicted eps; t_model is a 0-dim long tensor (one t for the batch)."""

VARIANCES = ("fixed_large", "fixed_small")


class Step(NamedTuple):
    """One reverse step: the step index t, the state x_t it started from, the model's
    prediction of the clean sample x0_hat, and the state x_prev = x_{t-1} it moved to."""

    t: int
    xt: torch.Tensor
    x0_hat: torch.Tensor
    x_prev: torch.Tensor


def coef_at(values: torch.Tensor, t: int | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """values[t] (a float64 buffer) as a Python float for an int t, or as a column of
    `like`'s dtype that broadcasts against it for one t per row. Callers pass square roots
    computed in float64: alpha_bar itself falls below float32's range near t = T."""
    if isinstance(t, int) or (isinstance(t, torch.Tensor) and t.ndim == 0):
        return float(values[int(t)])
    v = values.to(like.device)[t.to(like.device)].to(like.dtype)
    return v.reshape(-1, *([1] * (like.ndim - 1)))


def q_sample(x0: torch.Tensor, t: int | torch.Tensor, schedule: Schedule, eps: torch.Tensor) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x0) = N(sqrt(alpha_bar_t) x0, (1 - alpha_bar_t) I) with the given eps."""
    if eps.shape != x0.shape:
        raise ValueError(f"eps must have the shape of x0 {tuple(x0.shape)}, got {tuple(eps.shape)}")
    return coef_at(schedule.sqrt_alpha_bar, t, x0) * x0 + coef_at(schedule.sqrt_one_minus_alpha_bar, t, x0) * eps


def x0_hat_from_eps(xt: torch.Tensor, t: int | torch.Tensor, eps: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t) (paper, Sec. 5)."""
    return (xt - coef_at(schedule.sqrt_one_minus_alpha_bar, t, xt) * eps) / coef_at(schedule.sqrt_alpha_bar, t, xt)


def eps_from_x0(xt: torch.Tensor, t: int | torch.Tensor, x0: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """The eps that maps x0 to x_t: (x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t)."""
    return (xt - coef_at(schedule.sqrt_alpha_bar, t, xt) * x0) / coef_at(schedule.sqrt_one_minus_alpha_bar, t, xt)


def posterior_variance(schedule: Schedule) -> torch.Tensor:
    """Var of q(x_{t-1} | x_t, x0): beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)."""
    return torch.tensor(schedule.posterior_coefs[2], dtype=torch.float64)


def q_posterior_mean_var(
    x0: torch.Tensor, xt: torch.Tensor, t: int, schedule: Schedule
) -> tuple[torch.Tensor, float]:
    """Mean and variance of q(x_{t-1} | x_t, x0) (Ho et al. 2020, Eq. 6-7)."""
    check_t_in_schedule(t, schedule.T)
    c0, ct, var = schedule.posterior_coefs
    return c0[t] * x0 + ct[t] * xt, var[t]


def reverse_variance(schedule: Schedule, variance: str = "fixed_large") -> torch.Tensor:
    """The variance of each ancestral step. 'fixed_large' is beta_t, with the posterior
    variance of step 1 at t = 0 (the paper's code); 'fixed_small' is the posterior variance."""
    check_choice("variance", variance, VARIANCES)
    post = posterior_variance(schedule)
    if variance == "fixed_small":
        return post
    large = schedule.betas.clone()
    if schedule.T > 1:
        large[0] = post[1]
    return large


def reverse_step(
    xt: torch.Tensor, t: int, eps: torch.Tensor, schedule: Schedule, sigma_t: float,
    z: torch.Tensor | None, clip_x0: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ancestral step x_t -> x_{t-1}: the posterior mean at x0_hat plus sigma_t z.
    No noise is added at t = 0 (z may be None there). Returns (x_prev, x0_hat).

    clip_x0: clamp x0_hat to [-clip_x0, clip_x0] before taking the posterior mean, as image
    samplers do for data in [-1, 1] (Ho et al. 2020's code). Early in a cosine schedule
    sqrt(alpha_bar_t) is tiny and x0_hat amplifies any error in eps; the toy models use none."""
    x0_hat = x0_hat_from_eps(xt, t, eps, schedule)
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
    mean, _ = q_posterior_mean_var(x0_hat, xt, t, schedule)
    if t == 0:
        return mean, x0_hat
    if z is None:
        raise ValueError("z must be a noise tensor for t > 0, got None")
    return mean + sigma_t * z, x0_hat


def _check_sampler_args(shape: tuple[int, ...], x_T: torch.Tensor | None) -> None:
    if x_T is None and (len(shape) == 0 or any(int(s) <= 0 for s in shape)):
        raise ValueError(f"shape must be a non-empty tuple of positive sizes, got {shape!r}")
    if x_T is not None and tuple(x_T.shape) != tuple(shape):
        raise ValueError(f"x_T must have shape {tuple(shape)}, got {tuple(x_T.shape)}")


def _steps(schedule: Schedule, desc: str, progress: bool) -> Iterator[int]:
    """The step indices T-1, ..., 0, behind a progress bar when asked for."""
    return iter(progress_bar(range(schedule.T - 1, -1, -1), desc=desc, progress=progress, leave=False))


def ddpm_sample(
    eps_fn: EpsFn, shape: tuple[int, ...], schedule: Schedule, generator: torch.Generator,
    variance: str = "fixed_large", x_T: torch.Tensor | None = None, dtype: torch.dtype = torch.float32,
    progress: bool = True, clip_x0: float | None = None,
) -> Iterator[Step]:
    """Ancestral DDPM sampling from x_T ~ N(0, I), yielding every Step from t = T-1 down to 0.
    clip_x0 clamps each x0_hat (see reverse_step); the Step then carries the clamped x0_hat.

    All noise comes from `generator` (its device is the sampling device), so a seed fixes the
    run bit for bit. The final sample is the last step's x_prev (see `final`). progress shows
    a tqdm bar over the steps.
    """
    check_choice("variance", variance, VARIANCES)
    _check_sampler_args(shape, x_T)
    if clip_x0 is not None:
        check_positive("clip_x0", clip_x0)
    device = generator.device
    x = torch.randn(shape, generator=generator, device=device, dtype=dtype) if x_T is None else x_T
    sigma = reverse_variance(schedule, variance).sqrt().tolist()
    times = schedule.timesteps.to(device)  # moved once: a copy per step would wait for the device
    for t in _steps(schedule, "DDPM sampling", progress):
        eps = eps_fn(x, times[t])
        z = torch.randn(shape, generator=generator, device=device, dtype=x.dtype) if t > 0 else None
        x_prev, x0_hat = reverse_step(x, t, eps, schedule, sigma[t], z, clip_x0)
        yield Step(t, x, x0_hat, x_prev)
        x = x_prev


def ddim_sample(
    eps_fn: EpsFn, shape: tuple[int, ...], schedule: Schedule, generator: torch.Generator,
    eta: float = 0.0, x_T: torch.Tensor | None = None, dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> Iterator[Step]:
    """DDIM sampling (Song et al. 2021, Eq. 12), deterministic at eta = 0, yielding every Step."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    _check_sampler_args(shape, x_T)
    device = generator.device
    x = torch.randn(shape, generator=generator, device=device, dtype=dtype) if x_T is None else x_T
    ab, ab_prev, times = schedule.alpha_bar, schedule.alpha_bar_prev, schedule.timesteps.to(device)
    for t in _steps(schedule, "DDIM sampling", progress):
        eps = eps_fn(x, times[t])
        x0_hat = x0_hat_from_eps(x, t, eps, schedule)
        sigma = eta * float(((1 - ab_prev[t]) / (1 - ab[t]) * (1 - ab[t] / ab_prev[t])).sqrt())
        x_prev = float(ab_prev[t].sqrt()) * x0_hat + float(1 - ab_prev[t] - sigma**2) ** 0.5 * eps
        if t > 0 and sigma > 0:
            x_prev = x_prev + sigma * torch.randn(shape, generator=generator, device=device, dtype=x.dtype)
        yield Step(t, x, x0_hat, x_prev)
        x = x_prev


def final(steps: Iterator[Step]) -> torch.Tensor:
    """Run a sampler to the end and return its sample x_0."""
    last = None
    for step in steps:
        last = step
    if last is None:
        raise ValueError("steps must yield at least one Step, got an empty sampler")
    return last.x_prev
