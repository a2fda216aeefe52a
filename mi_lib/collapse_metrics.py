"""What recursive training is measured by (paper Sec. 6, Fig. 8, 9, 16): the hallucinated
fraction, and how many modes (2D mixture), shape combinations (Simple Shapes) or digit
classes are still covered and how evenly (`Coverage`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from mi_lib.checks import check_positive, check_positive_int
from mi_lib.mixtures import GaussianMixture
from mi_lib.shapes import KINDS, Reading, read_image

MetricsFn = Callable[[torch.Tensor], dict]


# --- coverage: how many modes, combinations or classes are still there, and how evenly ---------


class Coverage(NamedTuple):
    """covered: categories (modes, shape combinations, classes) holding at least min_share of
    the counted samples; total: how many there are; evenness: the entropy of the shares over
    all categories divided by log(total) (1: all equal, 0: one category; 1 when total = 1 and
    it is covered); shares (total,): each category's share of the counted samples; counted:
    the samples that fall in some category (in support)."""

    covered: int
    total: int
    evenness: float
    shares: torch.Tensor
    counted: int


def coverage_from_counts(counts: torch.Tensor | np.ndarray | Sequence[int], min_share: float | None = None) -> Coverage:
    """Coverage from the number of samples in each category. min_share defaults to a tenth of
    the fair share, 0.1 / total."""
    c = torch.as_tensor(np.asarray(counts), dtype=torch.float64)
    if c.ndim != 1 or len(c) == 0 or bool((c < 0).any()):
        raise ValueError(f"counts must be a non-empty 1D array of non-negative counts, got {counts!r}")
    total = len(c)
    min_share = 0.1 / total if min_share is None else min_share
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must lie in (0, 1], got {min_share!r}")
    n = float(c.sum())
    if n == 0:
        return Coverage(0, total, 0.0, torch.zeros(total, dtype=torch.float64), 0)
    shares = c / n
    covered = int((shares >= min_share).sum())
    nz = shares[shares > 0]
    entropy = float(-(nz * nz.log()).sum())
    evenness = entropy / math.log(total) if total > 1 else 1.0
    return Coverage(covered, total, min(1.0, max(0.0, evenness)), shares, int(n))


def _nearest_mode_inside(x: torch.Tensor, mixture: GaussianMixture, k: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) each sample's nearest mode, and (N,) whether it lies within k sigma of it."""
    check_positive("k", k)
    dist, idx = mixture.distance_to_nearest_mode(x)
    return idx, dist <= k * mixture.sigmas[idx]


def mode_coverage(
    x: torch.Tensor, mixture: GaussianMixture, k: float = 6.0, min_share: float | None = None
) -> Coverage:
    """Coverage of a mixture's modes: each sample within k sigma of its nearest mode counts for
    that mode (hallucinations count for none; paper Sec. 4.1, k = 6)."""
    idx, inside = _nearest_mode_inside(x, mixture, k)
    return coverage_from_counts(torch.bincount(idx[inside], minlength=mixture.n_modes), min_share)


def mixture_metrics(mixture: GaussianMixture, k: float = 6.0) -> MetricsFn:
    """A metrics_fn for mixture samples: 'hallucinated' (the fraction farther than k sigma from
    every mode), 'modes_covered' and 'mode_evenness' (mode_coverage)."""
    check_positive("k", k)

    def metrics_fn(x: torch.Tensor) -> dict:
        x = x.detach().cpu()
        cov = mode_coverage(x, mixture, k)
        return {"hallucinated": float(mixture.hallucinated(x, k).double().mean()),
                "modes_covered": cov.covered, "mode_evenness": cov.evenness}

    return metrics_fn


def corner_modes(mixture: GaussianMixture) -> list[int]:
    """The modes of a 2D grid at its corners: both coordinates at their extremes. Each has two
    nearest neighbours, where a mode on an edge has three and an inner one four."""
    if mixture.dim != 2:
        raise ValueError(f"mixture must be 2D, got dim {mixture.dim}")
    m = mixture.means
    lo, hi = m.min(dim=0).values, m.max(dim=0).values
    at_end = (m == lo) | (m == hi)
    return [int(i) for i in torch.nonzero(at_end.all(dim=1)).flatten()]


def mode_share(x: torch.Tensor, mixture: GaussianMixture, modes: Sequence[int], k: float = 6.0) -> float:
    """The share of the in-support samples of x (within k sigma of a mode) that belong to `modes`
    (nan when none is in support)."""
    cov = mode_coverage(x, mixture, k)
    return float(cov.shares[list(modes)].sum()) if cov.counted else math.nan


def mode_median_hal(x: torch.Tensor, hal: torch.Tensor, mixture: GaussianMixture, k: float = 6.0) -> torch.Tensor:
    """(n_modes,): the median Hal of each mode's in-support samples (within k sigma of it; nan
    for a mode with none). x (N, d) and hal (N,) are one draw and its Hal."""
    if hal.shape != (len(x),):
        raise ValueError(f"hal must have shape ({len(x)},) to match x, got {tuple(hal.shape)}")
    idx, inside = _nearest_mode_inside(x, mixture, k)
    out = torch.full((mixture.n_modes,), math.nan)
    for m in range(mixture.n_modes):
        sel = inside & (idx == m)
        if sel.any():
            out[m] = hal[sel].float().median()
    return out


def mode_width(x: torch.Tensor, mixture: GaussianMixture, k: float = 6.0) -> float:
    """The root-mean-square distance of the in-support samples of x (within k sigma of their
    nearest mode) from that mode, in units of its sigma: sqrt(d) for the mixture's own samples
    in d dimensions (about 1.41 in 2D), larger as recursive training blurs the modes (paper
    Sec. 6, Fig. 9)."""
    dist, idx = mixture.distance_to_nearest_mode(x)
    z = dist / mixture.sigmas[idx]
    return float(z[z <= k].double().pow(2).mean().sqrt())


def half_split_distance(real: torch.Tensor, classifier: torch.nn.Module, seed: int) -> float:
    """The Frechet distance between two halves of the images `real`, split at random (seeded),
    on the features of `classifier`: the score's floor, what two finite samples of the same
    distribution already measure (the paper's FID scale, Sec. 6)."""
    from mi_lib.digits import digits_features, frechet_distance  # digits imports this module

    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
    half = len(real) // 2
    return frechet_distance(digits_features(classifier, real[perm[:half]]),
                            digits_features(classifier, real[perm[half:]]))


#: The seven shape combinations Simple Shapes holds: each non-empty set of kinds, each once.
COMBINATIONS: tuple[tuple[str, ...], ...] = tuple(
    tuple(kind for i, kind in enumerate(KINDS) if mask >> i & 1) for mask in range(1, 8)
)


def _as_counts(readings: Sequence[Reading] | np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 3) counts and (N,) unreadable blob counts, from Readings or from counts."""
    if isinstance(readings, np.ndarray | torch.Tensor):
        counts = np.asarray(readings)
        if counts.ndim != 3 or counts.shape[1:] != (3, 3):
            raise ValueError(f"readings must be Readings or counts of shape (N, 3, 3), got shape {counts.shape}")
        return counts.astype(np.int64), np.zeros(len(counts), dtype=np.int64)
    readings = list(readings)
    if not all(isinstance(r, Reading) for r in readings):
        raise ValueError("readings must be a list of mi_lib.shapes.Reading or counts of shape (N, 3, 3)")
    counts = np.stack([r.counts for r in readings]) if readings else np.zeros((0, 3, 3), dtype=np.int64)
    return counts, np.array([r.unreadable for r in readings], dtype=np.int64)


def combination_coverage(
    readings: Sequence[Reading] | np.ndarray | torch.Tensor, min_share: float | None = None
) -> Coverage:
    """Coverage of the 7 shape combinations of Simple Shapes (order: COMBINATIONS), from the
    counter's readings or their (N, 3, 3) counts (column, kind). An image counts for the set of
    kinds it shows when it shows each kind at most once and no unreadable blob."""
    counts, unreadable = _as_counts(readings)
    per_kind = counts.sum(axis=1)  # (N, 3): how many of each kind, over the columns
    ok = (per_kind <= 1).all(axis=1) & (per_kind.sum(axis=1) >= 1) & (unreadable == 0)
    masks = (per_kind[ok] * (1 << np.arange(3))).sum(axis=1)  # 1..7, as COMBINATIONS
    return coverage_from_counts(np.bincount(masks - 1, minlength=7), min_share)


def shapes_metrics(images: torch.Tensor, threshold: float = 0.0) -> dict:
    """A metrics_fn for Simple Shapes images (N, 1, 64, 64): 'hallucinated' (two or more of a
    kind, the counter's label), 'unreadable', 'combinations_covered', 'combination_evenness'."""
    readings = [read_image(img, threshold) for img in images.detach().cpu()]
    if not readings:
        raise ValueError("images must hold at least one image, got none")
    cov = combination_coverage(readings)
    labels = [r.label for r in readings]
    return {"hallucinated": labels.count("hallucinated") / len(labels),
            "unreadable": labels.count("unreadable") / len(labels),
            "combinations_covered": cov.covered, "combination_evenness": cov.evenness}


def class_coverage(labels: torch.Tensor | np.ndarray, n_classes: int = 10, min_share: float | None = None) -> Coverage:
    """Coverage of n_classes classes from predicted labels (N,) (for digits: DigitsNet's)."""
    check_positive_int("n_classes", n_classes)
    lab = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
    if len(lab) and (int(lab.min()) < 0 or int(lab.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got values in [{int(lab.min())}, {int(lab.max())}]")
    return coverage_from_counts(torch.bincount(lab, minlength=n_classes), min_share)
