"""A large bank of toy draws kept in a form small enough to ship (paper Sec. 4-5 need millions
of draws; few of them are informative). What is kept:

* a fine histogram of every draw (1D: bins of sigma / 50; 2D: a square grid of bins),
* every draw farther than `keep_sigma` from its nearest mode, with its Hal over each window,
* the first `n_subsample` draws (a uniform subsample, the chunks being independent) with theirs,

and the metrics computed on the whole bank before it is dropped: the k-sigma rate with its
Wilson interval and, per window, the AUROC of Hal and the paper's operating point.
"""

from __future__ import annotations

import numpy as np
import torch

from mi_lib.detection import auroc, operating_point
from mi_lib.metrics import rate
from mi_lib.mixtures import GaussianMixture


def histogram_edges(mixture: GaussianMixture) -> tuple[float, float, int]:
    """(low, high, bins) of a bank's histogram along each axis: the modes' range with a margin
    of 1.5 (1D: bins sigma / 50 wide) or of 0.5 (2D: 400 bins, about half a sigma)."""
    lo, hi = float(mixture.means.min()), float(mixture.means.max())
    if mixture.dim == 1:
        lo, hi = lo - 1.5, hi + 1.5
        return lo, hi, round((hi - lo) / (float(mixture.sigmas.min()) / 50))
    return lo - 0.5, hi + 0.5, 400


def compact_bank(x: torch.Tensor, hal: torch.Tensor, mixture: GaussianMixture, windows: tuple[tuple[int, int], ...],
                 *, k: float = 6.0, keep_sigma: float = 3.0, n_subsample: int = 10_000, removed: float = 0.95,
                 kept: float = 0.98) -> dict:
    """The compact form of draws x (n, d) with Hal (len(windows), n): {"metrics", "histogram",
    "tail_x", "tail_hal", "sub_x", "sub_hal"}. A draw that diverged counts as hallucinated (its
    distance is infinite); a Hal that overflowed is the largest there is."""
    x, hal = x.cpu(), hal.cpu().float()
    diverged = ~torch.isfinite(x).all(dim=1)
    overflow = ~torch.isfinite(hal).all(dim=0)
    hal = torch.nan_to_num(hal, nan=torch.finfo(hal.dtype).max, posinf=torch.finfo(hal.dtype).max)
    dist, idx = mixture.distance_to_nearest_mode(x)
    n_sigma = (dist / mixture.sigmas[idx]).reshape(-1)
    y = ~(n_sigma <= k)  # NaN-safe: a diverged draw is beyond
    r = rate(y)
    metrics = {"hallucinated": r.count, "n": r.n, "rate": r.rate, "low": r.low, "high": r.high,
               "diverged": int(diverged.sum()), "hal_overflow": int(overflow.sum()), "windows": {}}
    if 0 < r.count < r.n:
        for w, h in zip(windows, hal, strict=True):
            op = operating_point(h, y, removed=removed, kept=kept)
            metrics["windows"][f"{w[0]}-{w[1]}"] = {
                "auroc": auroc(h, y), "threshold": op["threshold"], "removed": op["removed"].rate,
                "kept": op["kept"].rate, "kept_low": op["kept"].low, "kept_high": op["kept"].high,
                f"removed_at_{kept:.0%}_kept".replace("%", ""): op["removed_at_kept"].rate}
    tail = ~(n_sigma <= keep_sigma)
    lo, hi, bins = histogram_edges(mixture)
    finite = x[~diverged].numpy()
    if mixture.dim == 1:
        counts, _ = np.histogram(finite[:, 0], bins=bins, range=(lo, hi))
        counts = counts.astype(np.int64)
    else:
        counts, _, _ = np.histogram2d(finite[:, 0], finite[:, 1], bins=bins, range=((lo, hi), (lo, hi)))
        counts = counts.astype(np.int32)
    metrics["outside_histogram"] = int(len(x) - counts.sum())  # all of them beyond keep_sigma: in the tail
    # clone: a slice saved as it is would carry its whole bank's storage
    return {"metrics": metrics, "histogram": torch.from_numpy(counts), "tail_x": x[tail].clone(),
            "tail_hal": hal[:, tail].clone(), "sub_x": x[:n_subsample].clone(), "sub_hal": hal[:, :n_subsample].clone()}
