"""Argument checks shared by mi_lib: each raises a ValueError that names the parameter,
the value given and what is allowed, before any long work starts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mi_lib.schedules import Schedule


def check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def check_t_in_schedule(t: int, T: int, name: str = "t") -> None:
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < T:
        raise ValueError(f"{name} must be an integer step in [0, {T - 1}] of the schedule, got {t!r}")


def check_window(t_lo: int, t_hi: int, schedule: Schedule, where: str = "") -> tuple[int, int]:
    """The window [t_lo, t_hi] of step indices, checked: both ends integer steps of the schedule
    (0 to T - 1) and t_lo <= t_hi (a reversed window holds no step). `where` prefixes the
    error message, to say which window of several failed."""
    check_t_in_schedule(t_lo, schedule.T, f"{where}t_lo")
    check_t_in_schedule(t_hi, schedule.T, f"{where}t_hi")
    if t_lo > t_hi:
        raise ValueError(
            f"{where}t_lo must be at most t_hi (the window [t_lo, t_hi] is empty otherwise), "
            f"got t_lo = {t_lo}, t_hi = {t_hi}"
        )
    return int(t_lo), int(t_hi)
