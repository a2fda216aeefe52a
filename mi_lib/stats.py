"""Small statistics for reporting rates honestly: counts with confidence intervals."""

from __future__ import annotations

import math


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a rate k / n (95% for z = 1.96). Unlike the normal
    approximation it stays inside [0, 1] and is informative when k = 0."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"k must be an integer in [0, n = {n}], got {k!r}")
    if not z > 0:
        raise ValueError(f"z must be positive, got {z!r}")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def format_rate(k: int, n: int) -> str:
    """'k of n = r% (95% CI lo-hi%)', the book's way to print a rate."""
    lo, hi = wilson_interval(k, n)
    return f"{k:,} of {n:,} = {k / n:.3%} (95% CI {lo:.3%} to {hi:.3%})"
