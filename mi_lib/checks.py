"""Argument checks shared by mi_lib: each raises a ValueError that names the parameter,
the value given and what is allowed, before any long work starts."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from mi_lib.schedules import Schedule


def check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_seed(seed: object, name: str = "seed") -> None:
    """A seed is a non-negative integer (a negative one would be folded silently)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}")


def check_non_negative(name: str, value: object) -> None:
    """A finite real number >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_int_at_least(name: str, value: object, low: int, unit: str = "") -> None:
    """An integer (not a bool) of at least `low`; `unit` names what it counts in the message."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer of at least {low}{f' ({unit})' if unit else ''}, got {value!r}")


def check_positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")


def check_finite_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_finite(name: str, x: torch.Tensor) -> None:
    """Every entry of x is finite (no NaN, no infinity)."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        raise ValueError(f"{name} must be finite, got {int(bad.sum())} non-finite entries, e.g. {x[bad][0].item()!r}")


def check_rows(name: str, x: torch.Tensor, dim: int) -> None:
    """x is a batch of vectors of size dim: shape (N, dim)."""
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}) for a model of dim {dim}, got {tuple(x.shape)}")


def check_times(t: object, x: torch.Tensor) -> torch.Tensor:
    """Network times for the batch x: one t for all rows (0-dim or one entry) or one per row.
    Returns t as a 1D tensor on x's device, of length 1 or len(x)."""
    t = torch.as_tensor(t, device=x.device)
    if t.ndim not in (0, 1) or (t.ndim == 1 and t.shape[0] not in (1, x.shape[0])):
        raise ValueError(f"t must be 0-dim or have shape ({x.shape[0]},), got {tuple(t.shape)}")
    return t.reshape(-1)


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def check_t_in_schedule(t: int, T: int, name: str = "t") -> None:
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < T:
        raise ValueError(f"{name} must be an integer step in [0, {T - 1}] of the schedule, got {t!r}")


def check_window(t_lo: int, t_hi: int, schedule: Schedule | None = None, where: str = "") -> tuple[int, int]:
    """The window [t_lo, t_hi] of step indices, checked: both ends integer steps (of the
    schedule, 0 to T - 1, when one is given; else any step >= 0) and t_lo <= t_hi (a reversed
    window holds no step). `where` prefixes the message, to say which of several windows failed."""
    for name, value in (("t_lo", t_lo), ("t_hi", t_hi)):
        if schedule is not None:
            check_t_in_schedule(value, schedule.T, f"{where}{name}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}{name} must be a non-negative integer step, got {value!r}")
    if t_lo > t_hi:
        raise ValueError(
            f"{where}t_lo must be at most t_hi (the window [t_lo, t_hi] is empty otherwise), "
            f"got t_lo = {t_lo}, t_hi = {t_hi}"
        )
    return int(t_lo), int(t_hi)


def check_windows(windows: object, schedule: Schedule) -> list[tuple[int, int]]:
    """A non-empty list of windows (t_lo, t_hi) of the schedule, each checked (check_window)."""
    if not isinstance(windows, list | tuple) or len(windows) == 0:
        raise ValueError(f"windows must hold at least one (t_lo, t_hi) pair, got {windows!r}")
    for i, w in enumerate(windows):
        if not isinstance(w, tuple | list) or len(w) != 2:
            raise ValueError(f"windows[{i}] must be a pair (t_lo, t_hi) of step indices, got {w!r}")
    return [check_window(*w, schedule, f"windows[{i}]: ") for i, w in enumerate(windows)]
