"""Detecting hallucinations from the trajectory of x0_hat (paper Sec. 5, Fig. 6-7).

At each reverse step the network predicts the clean sample,
x0_hat(t) = (x_t - sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) / sqrt(alpha_bar_t). For a sample
that ends on a mode this prediction settles in the last steps; for a hallucination it keeps
swinging between the modes it interpolates. The paper's metric is

    Hal(x) = mean over dimensions of Var_{t in [t_lo, t_hi]} x0_hat(t),

the population variance over the steps of a window, per dimension. A threshold on Hal then
removes hallucinations and keeps in-support samples. This module computes Hal while sampling
(several windows in one pass) and after the fact (by re-noising a finished sample), and scores
a threshold: the rates removed / kept with Wilson intervals, the threshold for a target
rate, the ROC curve and its area.

Windows are step indices of the schedule, inclusive (0 is the last reverse step), as in
`WindowVariance`; for a respaced schedule convert original times with `window_steps`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from mi_lib.checks import check_positive_int, check_window
from mi_lib.diffusion import EpsFn, q_sample, x0_hat_from_eps
from mi_lib.learned import chunk_generator, draw_chunks
from mi_lib.metrics import Rate, WindowVariance, rate
from mi_lib.runtime import progress_bar
from mi_lib.schedules import Schedule


def check_seed(seed: object) -> None:
    """A seed is a non-negative integer (chunk_generator would silently fold a negative one)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def window_times(t_lo: int, t_hi: int, n_t: int) -> list[int]:
    """n_t distinct step indices spread evenly over [t_lo, t_hi], both ends included
    (rounded to the nearest step). n_t must lie in [2, t_hi - t_lo + 1]."""
    steps = t_hi - t_lo + 1
    if isinstance(n_t, bool) or not isinstance(n_t, int) or not 2 <= n_t <= steps:
        raise ValueError(
            f"n_t must be an integer from 2 to the window's {steps} steps ([{t_lo}, {t_hi}]), got {n_t!r}"
        )
    span = t_hi - t_lo
    return [t_lo + (2 * i * span + n_t - 1) // (2 * (n_t - 1)) for i in range(n_t)]


def sample_with_window_hals(
    eps_fn: EpsFn, n: int, dim: int | tuple[int, ...], schedule: Schedule, seed: int,
    windows: list[tuple[int, int]], chunk: int = 2_000, device: torch.device | str = "cpu",
    progress: bool = True, variance: str = "fixed_large", clip_x0: float | None = None,
) -> tuple[torch.Tensor, dict[tuple[int, int], torch.Tensor]]:
    """The samples of `sample_with_hal` with the same arguments, and Hal over each of several
    windows at once (paper Sec. 5), as {window: Hal (n,)}: one sampling pass for a window
    sweep. Each window keeps its own running mean and variance (WindowVariance), so memory
    grows with the number of windows, not with T or a window's length. variance and clip_x0
    are passed to ddpm_sample (a clamped x0_hat is what Hal then sees, as in sample_with_hal)."""
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    for name, value in (("n", n), ("chunk", chunk), *((f"dim[{i}]", d) for i, d in enumerate(dims))):
        check_positive_int(name, value)
    check_seed(seed)
    if len(windows) == 0:
        raise ValueError("windows must hold at least one (t_lo, t_hi) pair, got none")
    for i, w in enumerate(windows):
        if not isinstance(w, tuple | list) or len(w) != 2:
            raise ValueError(f"windows[{i}] must be a pair (t_lo, t_hi) of step indices, got {w!r}")
        check_window(*w, schedule, f"windows[{i}]: ")
    windows = [tuple(w) for w in windows]
    x, hals, _ = draw_chunks(eps_fn, n, dims, schedule, seed, chunk, device, progress, 0, windows, variance, clip_x0)
    return x, dict(zip(windows, hals, strict=True))


def hal_after_the_fact(
    eps_fn: EpsFn, x0: torch.Tensor, schedule: Schedule, t_lo: int, t_hi: int, n_t: int, seed: int,
    chunk: int = 10_000, progress: bool = False,
) -> torch.Tensor:
    """Hal of finished samples x0 (N, d) or (N, C, H, W), without their sampling trajectory
    (paper Sec. 5 and 6, MNIST): re-noise each sample with q_sample to n_t evenly spaced steps
    t of the window [t_lo, t_hi] (`window_times`), predict x0_hat at each, and take the
    population variance over those t per dimension, then the mean over dimensions.

    Rows go through in chunks of `chunk`; chunk i draws one eps of its shape per t, in
    increasing t, from chunk_generator(seed, i). The running mean and variance of
    WindowVariance keep memory independent of n_t. Returns Hal (N,) in float64 on the CPU."""
    check_window(t_lo, t_hi, schedule)
    times = window_times(t_lo, t_hi, n_t)
    check_positive_int("chunk", chunk)
    check_seed(seed)
    if x0.ndim < 2 or x0.shape[0] == 0:
        raise ValueError(f"x0 must have shape (N, d) or (N, C, H, W) with N >= 1, got {tuple(x0.shape)}")
    device = x0.device
    out = []
    starts = range(0, x0.shape[0], chunk)
    for i, start in enumerate(progress_bar(starts, desc="Hal after the fact", progress=progress, leave=False)):
        rows = x0[start : start + chunk]
        gen = chunk_generator(seed, i, device)
        acc = WindowVariance(t_lo, t_hi)
        for t in times:
            eps = torch.randn(rows.shape, generator=gen, device=device, dtype=rows.dtype)
            xt = q_sample(rows, t, schedule, eps)
            with torch.no_grad():  # a plain nn.Module as eps_fn builds no graph either
                eps_hat = eps_fn(xt, schedule.timesteps[t].to(device))
            acc.update(t, x0_hat_from_eps(xt, t, eps_hat, schedule))
        out.append(acc.hal().cpu())
    return torch.cat(out)


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
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
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
