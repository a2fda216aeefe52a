"""Scoring Hal as a detector of hallucinations (paper Sec. 5, Fig. 6-7): flag a sample when
its Hal exceeds a threshold; the rates removed / kept with Wilson intervals, the threshold
for a target rate, the ROC curve and its area. Hal itself is computed in mi_lib.hal.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from mi_lib.checks import check_finite_number, check_positive_int, check_seed
from mi_lib.metrics import Rate, rate


def _scores_and_labels(hal: object, hallucinated: object) -> tuple[torch.Tensor, torch.Tensor]:
    """hal as a 1D float64 tensor and hallucinated as a 1D bool tensor of the same length,
    with at least one sample of each class (every rate here needs both)."""
    h = torch.as_tensor(hal).detach().cpu()
    y = torch.as_tensor(hallucinated).detach().cpu()
    if h.ndim != 1 or h.numel() == 0 or h.dtype == torch.bool or h.is_complex():
        raise ValueError(f"hal must be a non-empty 1D tensor of scores, got {h.dtype} of shape {tuple(h.shape)}")
    if y.dtype != torch.bool or y.ndim != 1:
        raise ValueError(f"hallucinated must be a 1D boolean tensor, got {y.dtype} of shape {tuple(y.shape)}")
    if len(y) != len(h):
        raise ValueError(f"hallucinated must have one label per score: got {len(y)} labels for {len(h)} scores in hal")
    h = h.double()
    if not bool(h.isfinite().all()):
        raise ValueError(f"hal must be finite, got {int((~h.isfinite()).sum())} non-finite scores")
    n_pos = int(y.sum())
    if not 0 < n_pos < len(y):
        raise ValueError(
            f"hallucinated must contain both classes (hallucinated and in-support), got {n_pos} of {len(y)} True"
        )
    return h, y


def detection_rates(hal: torch.Tensor, hallucinated: torch.Tensor, threshold: float) -> tuple[Rate, Rate]:
    """The paper's operating point (Sec. 5): flag a sample when Hal > threshold. Returns
    (removed, kept): the share of hallucinations flagged, and the share of in-support samples
    not flagged, each a Rate with its 95% Wilson interval."""
    h, y = _scores_and_labels(hal, hallucinated)
    check_finite_number("threshold", threshold)
    flagged = h > threshold
    return rate(flagged[y]), rate(~flagged[~y])


def _check_target(target: float) -> None:
    if isinstance(target, bool) or not isinstance(target, numbers.Real) or not 0 < target <= 1:
        raise ValueError(f"target must be a rate in (0, 1], got {target!r}")


def _at_least(target: float, n: int) -> int:
    """ceil(target n), robust to target n landing a rounding error above an integer."""
    return math.ceil(round(target * n, 9))


def threshold_for_removed(hal: torch.Tensor, hallucinated: torch.Tensor, target: float) -> float:
    """The largest threshold that removes (Hal > threshold) at least `target` of the
    hallucinations, so that it keeps as many in-support samples as any threshold that does:
    just below the k-th largest hallucination's Hal, k = ceil(target x their number)."""
    _check_target(target)
    h, y = _scores_and_labels(hal, hallucinated)
    pos = h[y].sort(descending=True).values
    v = pos[_at_least(target, len(pos)) - 1]
    return float(torch.nextafter(v, torch.tensor(-math.inf, dtype=torch.float64)))


def threshold_for_kept(hal: torch.Tensor, hallucinated: torch.Tensor, target: float) -> float:
    """The smallest threshold that keeps (Hal <= threshold) at least `target` of the
    in-support samples, so that it removes as many hallucinations as any threshold that does:
    the k-th smallest in-support Hal, k = ceil(target x their number)."""
    _check_target(target)
    h, y = _scores_and_labels(hal, hallucinated)
    neg = h[~y].sort().values
    return float(neg[_at_least(target, len(neg)) - 1])


def roc(hal: torch.Tensor, hallucinated: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve of Hal as a detector of hallucinations (sklearn.metrics.roc_curve):
    fpr (the share of in-support samples flagged, 1 - kept), tpr (the share of hallucinations
    flagged, removed) and the thresholds, where a sample is flagged when Hal >= threshold.
    The paper reports operating points only; the curve shows all of them."""
    from sklearn.metrics import roc_curve  # imported here: `import mi_lib` stays free of sklearn

    h, y = _scores_and_labels(hal, hallucinated)
    fpr, tpr, thresholds = roc_curve(y.numpy(), h.numpy())
    return fpr, tpr, thresholds


def auroc(hal: torch.Tensor, hallucinated: torch.Tensor) -> float:
    """The area under the ROC curve: the probability that a random hallucination has a higher
    Hal than a random in-support sample, ties counted as one half (Mann-Whitney)."""
    from sklearn.metrics import roc_auc_score

    h, y = _scores_and_labels(hal, hallucinated)
    return float(roc_auc_score(y.numpy(), h.numpy()))


def auroc_interval(hal: torch.Tensor, hallucinated: torch.Tensor, n_boot: int = 1_000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float]:
    """A percentile bootstrap interval for the AUROC: resample the samples with replacement
    n_boot times (numpy Generator seeded with `seed`) and take the central `level` share of
    the resampled AUROCs."""
    check_positive_int("n_boot", n_boot)
    check_seed(seed)
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    h, y = _scores_and_labels(hal, hallucinated)
    gen = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        idx = torch.from_numpy(gen.integers(0, len(h), len(h)))
        boot.append(auroc(h[idx], y[idx]))
    lo, hi = np.percentile(boot, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def operating_point(hal: torch.Tensor, hallucinated: torch.Tensor, removed: float = 0.95,
                    kept: float = 0.95) -> dict:
    """The detector at two thresholds (paper Sec. 5): the largest that removes a share
    `removed` of the hallucinations (keys threshold, removed, kept), and the one that keeps a
    share `kept` of the in-support samples (removed_at_kept, kept_at_kept); and the AUROC."""
    thr = threshold_for_removed(hal, hallucinated, removed)
    r, k = detection_rates(hal, hallucinated, thr)
    r_at_k, k_at_k = detection_rates(hal, hallucinated, threshold_for_kept(hal, hallucinated, kept))
    return {"threshold": thr, "removed": r, "kept": k, "removed_at_kept": r_at_k, "kept_at_kept": k_at_k,
            "auroc": auroc(hal, hallucinated)}
