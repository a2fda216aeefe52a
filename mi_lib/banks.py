"""Reading a compact bank (mi_lib.artifacts.compact) the way one reads all of its draws.

Every hallucination (beyond k sigma) lies beyond keep_sigma, so it is in the bank's tail: rates
over the whole bank are counts in the tail over the bank's size n. In-support Hal comes from the
uniform subsample, which stands for all in-support draws in the ROC and the AUROC.
"""

from __future__ import annotations

import torch

from mi_lib.metrics import Rate, interpolation_direction, wilson_interval
from mi_lib.mixtures import GaussianMixture


def count_rate(count: int, n: int) -> Rate:
    """count of n as a Rate, with its Wilson interval."""
    return Rate(count, n, count / n, *wilson_interval(count, n))


def n_sigma(x: torch.Tensor, mixture: GaussianMixture) -> torch.Tensor:
    """Each draw's distance to its nearest mode, in that mode's sigmas (inf or NaN if it diverged)."""
    dist, idx = mixture.distance_to_nearest_mode(x)
    return dist / mixture.sigmas[idx]


def beyond(x: torch.Tensor, mixture: GaussianMixture, k: float = 6.0) -> torch.Tensor:
    """True where a draw is farther than k sigma from every mode (diverged draws included)."""
    return ~(n_sigma(x, mixture) <= k)


def _check_k(bank: dict, k: float) -> None:
    keep = bank["recipe"].keep_sigma
    if not k >= keep:
        raise ValueError(f"k must be at least the bank's keep_sigma ({keep}): draws nearer are not all kept, got {k!r}")


def bank_rate(bank: dict, mixture: GaussianMixture, k: float = 6.0) -> Rate:
    """The share of the whole bank beyond k sigma (k at least the bank's keep_sigma)."""
    _check_k(bank, k)
    return count_rate(int(beyond(bank["tail_x"], mixture, k).sum()), bank["metrics"]["n"])


def detection_set(bank: dict, window: tuple[int, int], mixture: GaussianMixture, k: float = 6.0,
                  k_in: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(Hal, hallucinated) over `window` for every draw of the bank beyond k sigma and the
    draws of its subsample within k_in sigma (default k): a set whose ROC is the whole bank's,
    in-support draws being represented by a uniform sample of them. k_in < k leaves out the
    draws in between, neither clearly on a mode nor clearly in a gap."""
    _check_k(bank, k)
    k_in = k if k_in is None else k_in
    if not 0 < k_in <= k:
        raise ValueError(f"k_in must lie in (0, k = {k}], got {k_in!r}")
    w = bank["recipe"].windows.index(tuple(window))
    y_tail = beyond(bank["tail_x"], mixture, k)
    near = n_sigma(bank["sub_x"], mixture) <= k_in
    hal = torch.cat([bank["tail_hal"][w][y_tail], bank["sub_hal"][w][near]])
    y = torch.cat([torch.ones(int(y_tail.sum()), dtype=torch.bool), torch.zeros(int(near.sum()), dtype=torch.bool)])
    return hal, y


def bank_gap_rates(bank: dict, mixture: GaussianMixture, k: float = 6.0) -> list[tuple[float, float, Rate]]:
    """For a 1D bank: the hallucinations in each gap between neighbouring modes, as (left mode,
    right mode, Rate over the whole bank) (paper Fig. 15)."""
    _check_k(bank, k)
    x, n = bank["tail_x"], bank["metrics"]["n"]
    y = beyond(x, mixture, k)
    mu = mixture.means[:, 0].sort().values.tolist()
    x1 = x[:, 0].double()
    return [(lo, hi, count_rate(int((y & (x1 > lo) & (x1 < hi)).sum()), n)) for lo, hi in zip(mu[:-1], mu[1:],
                                                                                               strict=True)]


def bank_direction_rates(bank: dict, mixture: GaussianMixture, k: float = 6.0) -> dict[str, Rate]:
    """For a 2D bank: the hallucinations that left their nearest mode along an axis (within 22.5
    degrees of one) and along a diagonal, each a Rate over the whole bank (paper Fig. 3)."""
    _check_k(bank, k)
    x, n = bank["tail_x"], bank["metrics"]["n"]
    y = beyond(x, mixture, k)
    axis = interpolation_direction(x, mixture) < 22.5
    return {"axis": count_rate(int((y & axis).sum()), n), "diagonal": count_rate(int((y & ~axis).sum()), n)}


def survival(bank: dict, mixture: GaussianMixture, r: torch.Tensor) -> torch.Tensor:
    """The share of the whole bank farther than r[i] sigma from its nearest mode, for each
    r[i] >= keep_sigma (the tail holds every such draw)."""
    if not bool((r >= bank["recipe"].keep_sigma).all()):
        raise ValueError(f"r must be at least the bank's keep_sigma ({bank['recipe'].keep_sigma}) everywhere")
    s = n_sigma(bank["tail_x"], mixture)
    s = torch.nan_to_num(s, nan=float("inf"))
    return (s[None, :] > r[:, None]).sum(dim=1).double() / bank["metrics"]["n"]
