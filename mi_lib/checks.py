"""Argument checks shared by mi_lib: each raises a ValueError that names the parameter,
the value given and what is allowed, before any long work starts."""

from __future__ import annotations

from collections.abc import Iterable


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
