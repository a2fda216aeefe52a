"""The filters of recursive training (paper Sec. 6): which of a generation's drawn samples
become the next generation's training data. "hal" keeps the lowest-Hal samples (the paper's
pre-emptive filter), "random" a random subset of the same size (the baseline), "none" all.
A generation's samples are independent draws, so "random" has the law of "none" with fewer
samples: it exists so that the comparison with "hal" spends the same samples. The kept samples
are shuffled with a seeded generator (the authors' code keeps them sorted by Hal).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

KeepFn = Callable[[torch.Tensor, "torch.Tensor | None", int, torch.Generator], torch.Tensor]


# --- filters: keep(samples, hal, n_keep, generator) -> indices of the kept samples -----------


def keep_all(
    samples: torch.Tensor, hal: torch.Tensor | None, n_keep: int, generator: torch.Generator
) -> torch.Tensor:
    """Filter "none": every sample (requires n_keep = len(samples))."""
    if n_keep != len(samples):
        raise ValueError(f"n_keep must equal the number of samples ({len(samples)}) for filter 'none', got {n_keep!r}")
    return torch.arange(len(samples))


def keep_random(
    samples: torch.Tensor, hal: torch.Tensor | None, n_keep: int, generator: torch.Generator
) -> torch.Tensor:
    """Filter "random": n_keep samples chosen uniformly without replacement (the baseline)."""
    return torch.randperm(len(samples), generator=generator)[:n_keep]


def keep_lowest_hal(
    samples: torch.Tensor, hal: torch.Tensor | None, n_keep: int, generator: torch.Generator
) -> torch.Tensor:
    """Filter "hal": the n_keep samples with the lowest Hal (paper Sec. 6); ties go to the
    earlier sample, a NaN Hal counts as the highest."""
    if hal is None:
        raise ValueError("hal must be given for filter 'hal': sample_fn must return (samples, hal), got hal None")
    hal = torch.nan_to_num(hal.double(), nan=math.inf)
    return torch.argsort(hal, stable=True)[:n_keep]


FILTERS: dict[str, KeepFn] = {"none": keep_all, "random": keep_random, "hal": keep_lowest_hal}


def _check_indices(idx: object, n: int, n_keep: int) -> torch.Tensor:
    """A filter's answer, checked: n_keep distinct integer indices into n samples."""
    ok = isinstance(idx, torch.Tensor) and idx.ndim == 1 and not idx.is_floating_point() and idx.dtype != torch.bool
    if ok:
        idx = idx.long().cpu()
        ok = len(idx) == n_keep and len(torch.unique(idx)) == n_keep and bool(((idx >= 0) & (idx < n)).all())
    if not ok:
        raise ValueError(f"filter must return {n_keep} distinct integer indices in [0, {n}), got {idx!r}")
    return idx


def select(
    samples: torch.Tensor, hal: torch.Tensor | None, n_keep: int, filter: str | KeepFn, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a filter (a name in FILTERS or a keep function) and shuffle what it keeps with
    `generator`. Returns (kept samples in shuffled order, their indices into `samples`)."""
    keep = FILTERS[filter] if isinstance(filter, str) else filter
    idx = _check_indices(keep(samples, hal, n_keep, generator), len(samples), n_keep)
    idx = idx[torch.randperm(n_keep, generator=generator)]
    return samples[idx.to(samples.device)], idx
