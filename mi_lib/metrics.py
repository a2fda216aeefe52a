"""Measuring hallucinations: rates with confidence intervals, and where between the modes the
interpolated mass lies (paper Sec. 4). The Hal metric is in mi_lib.hal.

A hallucination of a Gaussian mixture is a sample farther than 6 sigma from every mode
(paper Sec. 4.1); `GaussianMixture.hallucinated` labels them. This module counts them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from mi_lib.checks import check_positive
from mi_lib.mixtures import GaussianMixture


class Rate(NamedTuple):
    """count out of n, the rate count / n and its Wilson interval [low, high]."""

    count: int
    n: int
    rate: float
    low: float
    high: float

    def format(self, digits: int = 2) -> str:
        """'rate (count of n; 95% CI low to high)', percentages with `digits` decimals."""
        pct = f".{digits}%"
        return f"{self.rate:{pct}} ({self.count:,} of {self.n:,}; 95% CI {self.low:{pct}} to {self.high:{pct}})"

    def __str__(self) -> str:
        return self.format(4)


def wilson_interval(count: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion count / n (Wilson 1927). Unlike
    the normal approximation it stays inside [0, 1] and is informative at count = 0."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= n:
        raise ValueError(f"count must be an integer in [0, n = {n}], got {count!r}")
    check_positive("z", z)
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if count == 0 else max(0.0, min(p, centre - half))  # exact at the ends, despite rounding
    high = 1.0 if count == n else min(1.0, max(p, centre + half))
    return low, high


def rate(mask: torch.Tensor, z: float = 1.96) -> Rate:
    """The fraction of True entries in a boolean mask, with its Wilson interval."""
    if mask.dtype != torch.bool or mask.ndim != 1 or mask.numel() == 0:
        raise ValueError(f"mask must be a non-empty 1D boolean tensor, got {mask.dtype} of shape {tuple(mask.shape)}")
    count, n = int(mask.sum()), mask.numel()
    return Rate(count, n, count / n, *wilson_interval(count, n, z))


def hallucination_rate(x: torch.Tensor, mixture: GaussianMixture, k: float = 6.0) -> Rate:
    """The share of samples farther than k sigma from every mode (paper Sec. 4.1, k = 6)."""
    return rate(mixture.hallucinated(x, k))


def gap_rates(x: torch.Tensor, mixture: GaussianMixture, k: float = 6.0) -> list[tuple[float, float, Rate]]:
    """For a 1D mixture: the hallucinated samples lying in each gap between neighbouring
    modes, as (left mode, right mode, Rate over all n samples) (paper Fig. 15: 1, 2, 4, 5)."""
    if mixture.dim != 1:
        raise ValueError(f"mixture must be 1D for gap rates, got dim {mixture.dim}")
    hal = mixture.hallucinated(x, k)
    mu = mixture.means[:, 0].sort().values.tolist()
    x1 = x[:, 0].double()
    return [(lo, hi, rate(hal & (x1 > lo) & (x1 < hi))) for lo, hi in zip(mu[:-1], mu[1:], strict=True)]


def interpolation_direction(x: torch.Tensor, mixture: GaussianMixture) -> torch.Tensor:
    """For 2D samples: the direction in which each sample lies from its nearest mode, as an
    angle in degrees folded into [0, 45]: 0 means along an axis, 45 along a diagonal (paper
    Fig. 3: the square grid and its diamond rotation)."""
    if mixture.dim != 2:
        raise ValueError(f"mixture must be 2D, got dim {mixture.dim}")
    _, idx = mixture.distance_to_nearest_mode(x)
    d = x.double() - mixture.means[idx]
    angle = torch.rad2deg(torch.atan2(d[:, 1].abs(), d[:, 0].abs()))  # in [0, 90]
    return torch.minimum(angle, 90 - angle)


def direction_rates(x: torch.Tensor, mixture: GaussianMixture, k: float = 6.0) -> dict[str, Rate]:
    """The hallucinated mass that left its nearest mode along an axis (within 22.5 degrees of
    one) and along a diagonal, each as a Rate over all n samples."""
    hal = mixture.hallucinated(x, k)
    axis = interpolation_direction(x, mixture) < 22.5
    return {"axis": rate(hal & axis), "diagonal": rate(hal & ~axis)}
