"""The Hal metric (paper Sec. 5): the variance of the x0_hat trajectory over a window of
reverse steps, computed while sampling and after the fact.

At each reverse step the network predicts the clean sample,
x0_hat(t) = (x_t - sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) / sqrt(alpha_bar_t). For a sample
that ends on a mode this prediction settles in the last steps; for a hallucination it keeps
swinging between the modes it interpolates. The paper's metric is

    Hal(x) = mean over dimensions of Var_{t in [t_lo, t_hi]} x0_hat(t),

the population variance over the steps of a window, per dimension. Windows are step indices
of the schedule, inclusive (0 is the last reverse step); for a respaced schedule convert
original times with `mi_lib.schedules.window_steps`. Scoring a threshold on Hal is in
mi_lib.detection.
"""

from __future__ import annotations

from collections.abc import Collection

import torch

from mi_lib.checks import check_finite, check_positive_int, check_seed, check_window, check_windows
from mi_lib.diffusion import EpsFn, ddpm_sample, q_sample, x0_hat_from_eps
from mi_lib.runtime import chunk_generator, progress_bar
from mi_lib.schedules import Schedule


class WindowVariance:
    """Hal computed while sampling: Welford's running mean and sum of squares of x0_hat over
    the steps t in [t_lo, t_hi] keep two (N, ...) tensors, whatever the window length or T,
    instead of every step's x0_hat. The variance is the population one."""

    def __init__(self, t_lo: int, t_hi: int) -> None:
        self.t_lo, self.t_hi = check_window(t_lo, t_hi)
        self.count, self.mean, self.m2 = 0, None, None

    def update(self, t: int, x0_hat: torch.Tensor) -> None:
        """Add one step's x0_hat (N, ...) when t lies in the window; ignore it otherwise."""
        if not self.t_lo <= t <= self.t_hi:
            return
        x = x0_hat.detach().double()
        if self.mean is None:
            self.mean, self.m2 = torch.zeros_like(x), torch.zeros_like(x)
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    def hal(self) -> torch.Tensor:
        """Hal for each sample, shape (N,)."""
        if self.count == 0:
            raise ValueError(f"no step in the window [{self.t_lo}, {self.t_hi}] was seen; update() first")
        return (self.m2 / self.count).reshape(self.m2.shape[0], -1).mean(dim=1)


def hal_from_trajectory(x0_hats: torch.Tensor) -> torch.Tensor:
    """Hal from a stored window of x0_hat, shape (W, N, d): the plain computation that
    WindowVariance reproduces without storing the window."""
    if x0_hats.ndim != 3 or x0_hats.shape[0] == 0:
        raise ValueError(f"x0_hats must have shape (W, N, d) with W >= 1, got {tuple(x0_hats.shape)}")
    return x0_hats.double().var(dim=0, unbiased=False).mean(dim=-1)


def sample_chunks(
    eps_fn: EpsFn, n: int, dim: int | tuple[int, ...], schedule: Schedule, *, seed: int, chunk: int = 2_000,
    windows: Collection[tuple[int, int]] = (), keep_steps: Collection[int] = (), first_chunk: int = 0,
    device: torch.device | str = "cpu", variance: str = "fixed_large", clip_x0: float | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
    """n samples ``(n, *dim)`` of ancestral DDPM sampling (ddpm_sample with variance, clip_x0),
    drawn in chunks of `chunk` rows, chunk i with chunk_generator(seed, i) from i = first_chunk,
    so that any chunk can be redrawn alone. Returns the samples, their Hal over each of
    `windows` (checked by the caller; one WindowVariance per window and chunk), and the x0_hat
    of the steps in keep_steps, stacked from the noisiest step down (None if none asked for)."""
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    for name, value in (("n", n), ("chunk", chunk), *((f"dim[{i}]", d) for i, d in enumerate(dims))):
        check_positive_int(name, value)
    check_seed(seed)
    sizes = [min(chunk, n - i) for i in range(0, n, chunk)]
    bar = progress_bar(total=len(sizes) * schedule.T, desc="sampling", progress=progress, mininterval=1.0)
    out, hals, kept = [], [[] for _ in windows], []
    for i, size in enumerate(sizes, start=first_chunk):
        accs, chunk_kept = [WindowVariance(*w) for w in windows], []
        gen = chunk_generator(seed, i, device)
        for step in ddpm_sample(eps_fn, (size, *dims), schedule, gen, variance, progress=False, clip_x0=clip_x0):
            for acc in accs:
                acc.update(step.t, step.x0_hat)
            if step.t in keep_steps:
                chunk_kept.append(step.x0_hat.cpu())
            bar.update(1)
        out.append(step.x_prev.cpu())
        for h, acc in zip(hals, accs, strict=True):
            h.append(acc.hal().cpu())
        if chunk_kept:
            kept.append(torch.stack(chunk_kept))
    bar.close()
    return torch.cat(out), [torch.cat(h) for h in hals], torch.cat(kept, dim=1) if kept else None


def sample_with_hal(
    eps_fn: EpsFn, n: int, dim: int | tuple[int, ...], schedule: Schedule, seed: int, window: tuple[int, int], *,
    chunk: int = 2_000, first_chunk: int = 0, device: torch.device | str = "cpu", variance: str = "fixed_large",
    clip_x0: float | None = None, progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples of mi_lib.learned.sample_bank with the same arguments (see sample_chunks),
    and each one's Hal over the window of steps (t_lo, t_hi), accumulated on the fly (paper
    Sec. 5): the memory it needs does not grow with T or with the window."""
    (window,) = check_windows([window], schedule)  # a bad window fails here, before any sampling
    x, (hal,), _ = sample_chunks(eps_fn, n, dim, schedule, seed=seed, chunk=chunk, windows=[window],
                                 first_chunk=first_chunk, device=device, variance=variance, clip_x0=clip_x0,
                                 progress=progress)
    return x, hal


def sample_with_window_hals(
    eps_fn: EpsFn, n: int, dim: int | tuple[int, ...], schedule: Schedule, seed: int,
    windows: list[tuple[int, int]], *, chunk: int = 2_000, device: torch.device | str = "cpu",
    variance: str = "fixed_large", clip_x0: float | None = None, progress: bool = True,
) -> tuple[torch.Tensor, dict[tuple[int, int], torch.Tensor]]:
    """The samples of sample_with_hal with the same arguments, and Hal over each of several
    windows in one sampling pass, as {window: Hal (n,)}: a window sweep (paper Sec. 5). Memory
    grows with the number of windows, not with T or a window's length."""
    windows = check_windows(windows, schedule)
    x, hals, _ = sample_chunks(eps_fn, n, dim, schedule, seed=seed, chunk=chunk, windows=windows, device=device,
                               variance=variance, clip_x0=clip_x0, progress=progress)
    return x, dict(zip(windows, hals, strict=True))


def window_times(t_lo: int, t_hi: int, n_t: int) -> list[int]:
    """n_t distinct step indices spread evenly over [t_lo, t_hi], both ends included
    (rounded to the nearest step). n_t must lie in [2, t_hi - t_lo + 1]."""
    steps = t_hi - t_lo + 1
    if isinstance(n_t, bool) or not isinstance(n_t, int) or not 2 <= n_t <= steps:
        raise ValueError(
            f"n_t must be an integer from 2 to the window's {steps} steps ([{t_lo}, {t_hi}]), got {n_t!r}"
        )
    span = t_hi - t_lo
    return [t_lo + (2 * i * span + n_t - 1) // (2 * (n_t - 1)) for i in range(n_t)]


def hal_after_the_fact(
    eps_fn: EpsFn, x0: torch.Tensor, schedule: Schedule, t_lo: int, t_hi: int, n_t: int, seed: int,
    chunk: int = 10_000, progress: bool = False,
) -> torch.Tensor:
    """Hal of finished samples x0 (N, d) or (N, C, H, W) without their trajectory (paper Sec. 5
    and 6, MNIST): re-noise each sample with q_sample to the n_t steps window_times(t_lo, t_hi,
    n_t), predict x0_hat at each, and take Hal over them. Rows go in chunks of `chunk`; chunk i
    draws one eps per t, in increasing t, from chunk_generator(seed, i). Float64, on the CPU."""
    check_window(t_lo, t_hi, schedule)
    times = window_times(t_lo, t_hi, n_t)
    check_positive_int("chunk", chunk)
    check_seed(seed)
    if x0.ndim < 2 or x0.shape[0] == 0:
        raise ValueError(f"x0 must have shape (N, d) or (N, C, H, W) with N >= 1, got {tuple(x0.shape)}")
    check_finite("x0", x0)
    out = []
    starts = range(0, x0.shape[0], chunk)
    for i, start in enumerate(progress_bar(starts, desc="Hal after the fact", progress=progress, leave=False)):
        rows, gen, acc = x0[start : start + chunk], chunk_generator(seed, i, x0.device), WindowVariance(t_lo, t_hi)
        for t in times:
            eps = torch.randn(rows.shape, generator=gen, device=x0.device, dtype=rows.dtype)
            xt = q_sample(rows, t, schedule, eps)
            with torch.no_grad():  # a plain nn.Module as eps_fn builds no graph either
                eps_hat = eps_fn(xt, schedule.timesteps[t].to(x0.device))
            acc.update(t, x0_hat_from_eps(xt, t, eps_hat, schedule))
        out.append(acc.hal().cpu())
    return torch.cat(out)
