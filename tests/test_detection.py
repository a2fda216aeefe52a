import functools
import itertools
import math

import numpy as np
import pytest
import torch

from mi_lib import (
    ToyMLP,
    chunk_generator,
    exact_eps_fn,
    hal_from_trajectory,
    linear_schedule,
    mixture_preset,
    model_eps_fn,
    q_sample,
    sample_bank,
    sample_with_hal,
    x0_hat_from_eps,
)
from mi_lib.detection import (
    auroc,
    detection_rates,
    roc,
    threshold_for_kept,
    threshold_for_removed,
)
from mi_lib.hal import hal_after_the_fact, sample_with_window_hals, window_times


def toy_eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A cheap, nonlinear, t-dependent stand-in for a network, for any shape of x."""
    return torch.tanh(3 * x) * (1 + float(t) / 10) + 0.1 * x**2


def never_called(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    raise AssertionError("eps_fn was called although the input was bad")


def plain_hal(eps_fn, x0, schedule, t_lo, t_hi, n_t, seed, chunk):
    """Hal the plain way: store every x0_hat of the window, then hal_from_trajectory."""
    out = []
    for i, start in enumerate(range(0, len(x0), chunk)):
        rows, g = x0[start : start + chunk], chunk_generator(seed, i)
        x0_hats = []
        for t in window_times(t_lo, t_hi, n_t):
            eps = torch.randn(rows.shape, generator=g, dtype=rows.dtype)
            xt = q_sample(rows, t, schedule, eps)
            x0_hats.append(x0_hat_from_eps(xt, t, eps_fn(xt, schedule.timesteps[t]), schedule))
        out.append(hal_from_trajectory(torch.stack(x0_hats).reshape(len(x0_hats), len(rows), -1)))
    return torch.cat(out)


def test_window_times_are_evenly_spread_and_include_both_ends():
    assert window_times(0, 14, 15) == list(range(15))
    assert window_times(0, 14, 2) == [0, 14]
    assert window_times(0, 10, 3) == [0, 5, 10]
    assert window_times(3, 8, 4) == [3, 5, 6, 8]  # 3 + round(5 i / 3)
    for t_lo, t_hi in ((0, 7), (100, 150), (5, 999)):
        for n_t in (2, 3, 8, t_hi - t_lo + 1):
            if n_t <= t_hi - t_lo + 1:
                ts = window_times(t_lo, t_hi, n_t)
                assert len(set(ts)) == n_t and ts[0] == t_lo and ts[-1] == t_hi and ts == sorted(ts)


@pytest.mark.parametrize("shape", [(7, 2), (5, 1, 4, 4)], ids=["vectors", "images"])
def test_hal_after_the_fact_equals_the_stored_trajectory(shape):
    s = linear_schedule(50)
    x0 = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    got = hal_after_the_fact(toy_eps_fn, x0, s, 2, 30, 6, seed=4, chunk=3)
    want = plain_hal(toy_eps_fn, x0, s, 2, 30, 6, seed=4, chunk=3)
    assert got.shape == (shape[0],) and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_hal_after_the_fact_is_deterministic_per_seed():
    s = linear_schedule(50)
    x0 = torch.randn(20, 1, generator=torch.Generator().manual_seed(1))
    a = hal_after_the_fact(toy_eps_fn, x0, s, 0, 20, 5, seed=7)
    b = hal_after_the_fact(toy_eps_fn, x0, s, 0, 20, 5, seed=7)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, hal_after_the_fact(toy_eps_fn, x0, s, 0, 20, 5, seed=8))


def test_hal_after_the_fact_separates_gaps_from_modes_with_the_exact_score():
    mix, s = mixture_preset("1d_three"), linear_schedule(1000)
    x0 = torch.tensor([[1.0], [2.0], [3.0], [1.5], [2.5]])
    hal = hal_after_the_fact(exact_eps_fn(mix, s), x0, s, 0, 14, 15, seed=0)
    assert float(hal[3:].min()) > 10 * float(hal[:3].max())


def test_sample_with_window_hals_equals_sample_with_hal_for_each_window():
    torch.manual_seed(0)
    model, s = ToyMLP(dim=2, width=16, n_blocks=1), linear_schedule(15)
    eps_fn = model_eps_fn(model)
    windows = [(0, 4), (3, 9), (14, 14)]
    x, hals = sample_with_window_hals(eps_fn, 5, 2, s, seed=2, windows=windows, chunk=2, progress=False)
    torch.testing.assert_close(x, sample_bank(eps_fn, 5, 2, s, seed=2, chunk=2, progress=False), rtol=0, atol=0)
    assert list(hals) == windows
    for w in windows:
        _, want = sample_with_hal(eps_fn, 5, 2, s, seed=2, window=w, chunk=2, progress=False)
        torch.testing.assert_close(hals[w], want, rtol=0, atol=0)


def test_sample_with_window_hals_on_images():
    s = linear_schedule(10)
    for clip in (None, 0.5):
        x, hals = sample_with_window_hals(toy_eps_fn, 3, (1, 3, 3), s, 0, [(0, 4)], progress=False, clip_x0=clip)
        xw, want = sample_with_hal(toy_eps_fn, 3, (1, 3, 3), s, seed=0, window=(0, 4), progress=False, clip_x0=clip)
        assert x.shape == (3, 1, 3, 3) and hals[0, 4].shape == (3,)
        torch.testing.assert_close(x, xw, rtol=0, atol=0)
        torch.testing.assert_close(hals[0, 4], want, rtol=0, atol=0)


def test_detection_rates_on_a_hand_made_example():
    hal = torch.tensor([0.1, 0.2, 0.3, 1.5, 0.4, 2.0, 3.0])
    hallucinated = torch.tensor([False, False, False, False, True, True, True])
    removed, kept = detection_rates(hal, hallucinated, 1.0)
    assert (removed.count, removed.n, kept.count, kept.n) == (2, 3, 3, 4)
    assert removed.low < 2 / 3 < removed.high and kept.low < 3 / 4 < kept.high
    removed, kept = detection_rates(hal, hallucinated, 1.5)  # Hal equal to the threshold is kept
    assert (removed.count, kept.count) == (2, 4)
    removed, kept = detection_rates(hal, hallucinated, 0.0)
    assert (removed.rate, kept.rate) == (1.0, 0.0)


def test_threshold_for_removed_on_a_hand_made_example():
    hal = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.5, 1.5])
    hallucinated = torch.tensor([True, True, True, True, False, False])
    thr = threshold_for_removed(hal, hallucinated, 0.75)  # 3 of 4: just below 2
    assert thr < 2.0 and thr == np.nextafter(2.0, -np.inf)
    removed, kept = detection_rates(hal, hallucinated, thr)
    assert (removed.count, kept.count) == (3, 2)
    assert threshold_for_kept(hal, hallucinated, 0.5) == 0.5
    assert threshold_for_kept(hal, hallucinated, 1.0) == 1.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thresholds_reach_their_targets_and_no_better_threshold_does(seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(300, generator=g) < 0.2
    hal = torch.randn(300, generator=g).double() + 1.5 * y  # with ties:
    hal = (hal * 4).round() / 4
    for target in (0.5, 0.8, 0.9, 0.95, 1.0, 1 / 3):
        thr = threshold_for_removed(hal, y, target)
        removed, _ = detection_rates(hal, y, thr)
        assert removed.rate >= target - 1e-12
        above = float(hal[y][hal[y] > thr].min())  # the next threshold that changes anything
        assert detection_rates(hal, y, above)[0].rate < target
        thr = threshold_for_kept(hal, y, target)
        _, kept = detection_rates(hal, y, thr)
        assert kept.rate >= target - 1e-12
        below = float(np.nextafter(thr, -np.inf))
        assert detection_rates(hal, y, below)[1].rate < target


def test_targets_that_are_a_rounding_error_above_an_integer_count():
    hal = torch.arange(101).double()
    y = torch.ones(101, dtype=torch.bool)
    y[0] = False  # 100 hallucinations; 0.07 x 100 = 7.000000000000001 in floating point must mean 7
    assert 0.07 * 100 > 7
    removed, _ = detection_rates(hal, y, threshold_for_removed(hal, y, 0.07))
    assert removed.count == 7
    neg = torch.zeros(101, dtype=torch.bool)
    neg[0] = True  # now 100 in-support samples
    _, kept = detection_rates(hal, neg, threshold_for_kept(hal, neg, 0.07))
    assert kept.count == 7


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_equals_the_pairwise_count(seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(400, generator=g) < 0.3
    hal = ((torch.randn(400, generator=g) + y.float()) * 3).round()  # ties on purpose
    pos, neg = hal[y].tolist(), hal[~y].tolist()
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in itertools.product(pos, neg))
    assert auroc(hal, y) == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-12)
    fpr, tpr, thresholds = roc(hal, y)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert float(np.trapezoid(tpr, fpr)) == pytest.approx(auroc(hal, y), abs=1e-12)
    for thr, f, t in zip(thresholds[1:], fpr[1:], tpr[1:], strict=True):  # flagged when Hal >= threshold
        assert t == pytest.approx(float((hal[y] >= thr).double().mean()))
        assert f == pytest.approx(float((hal[~y] >= thr).double().mean()))


S = linear_schedule(20)
X0 = torch.zeros(4, 1)
HAL = torch.tensor([0.1, 0.2, 0.3])
Y = torch.tensor([False, True, False])
AFTER = functools.partial(hal_after_the_fact, never_called, X0, S)  # (t_lo, t_hi, n_t, seed)
DURING = functools.partial(sample_with_window_hals, never_called, 4, 1, S, 0)  # n = 4, d = 1, seed 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: AFTER(10, 5, 3, 0), r"t_lo must be at most t_hi .* got t_lo = 10, t_hi = 5"),
        (lambda: AFTER(0, 20, 3, 0), r"t_hi must be an integer step in \[0, 19\].*got 20"),
        (lambda: AFTER(-1, 5, 3, 0), r"t_lo must be an integer step in \[0, 19\].*got -1"),
        (lambda: AFTER(0, 4, 1, 0), r"n_t must be an integer from 2 to the window's 5 steps .*got 1"),
        (lambda: AFTER(0, 4, 6, 0), r"n_t must be .* 5 steps \(\[0, 4\]\), got 6"),
        (lambda: AFTER(3, 3, 2, 0), r"n_t must be .* window's 1 steps"),
        (lambda: AFTER(0, 4, 2, 0, chunk=0), "chunk must be a positive integer, got 0"),
        (lambda: hal_after_the_fact(never_called, torch.zeros(4), S, 0, 4, 2, 0), r"x0 must have shape \(N, d\)"),
        (lambda: AFTER(0, 4, 2, -1), "seed must be a non-negative integer, got -1"),
        (lambda: DURING(windows=[]), "windows must hold at least one"),
        (lambda: DURING(windows=[(0, 3), (5, 2)]),
         r"windows\[1\]: t_lo must be at most t_hi"),
        (lambda: DURING(windows=[(0, 30)]),
         r"windows\[0\]: t_hi must be an integer step in \[0, 19\]"),
        (lambda: DURING(windows=[3]), r"windows\[0\] must be a pair"),
        (lambda: sample_with_window_hals(never_called, 4, 1, S, -2, [(0, 3)]), "seed must be a non-negative integer"),
        (lambda: detection_rates(HAL, Y[:2], 0.5), "hallucinated must have one label per score: got 2 labels for 3"),
        (lambda: detection_rates(HAL, torch.tensor([0, 1, 0]), 0.5), "hallucinated must be a 1D boolean tensor"),
        (lambda: detection_rates(torch.zeros(3, 1), Y, 0.5), "hal must be a non-empty 1D tensor"),
        (lambda: detection_rates(HAL, torch.ones(3, dtype=torch.bool), 0.5),
         r"hallucinated must contain both classes .* got 3 of 3 True"),
        (lambda: detection_rates(HAL, Y, math.nan), "threshold must be a finite number, got nan"),
        (lambda: detection_rates(torch.tensor([0.1, math.inf, 0.3]), Y, 0.5), "hal must be finite"),
        (lambda: roc(HAL, torch.zeros(3, dtype=torch.bool)), r"hallucinated must contain both classes .* got 0 of 3"),
        (lambda: auroc(HAL, torch.ones(3, dtype=torch.bool)), "hallucinated must contain both classes"),
        (lambda: auroc(HAL, Y[:1]), "hallucinated must have one label per score"),
        (lambda: threshold_for_removed(HAL, Y, 0.0), r"target must be a rate in \(0, 1\], got 0.0"),
        (lambda: threshold_for_removed(HAL, Y, 1.5), r"target must be a rate in \(0, 1\], got 1.5"),
        (lambda: threshold_for_kept(HAL, Y, -0.1), r"target must be a rate in \(0, 1\], got -0.1"),
        (lambda: threshold_for_kept(HAL, Y[:2], 0.5), "hallucinated must have one label per score"),
    ],
)
def test_bad_input_raises_before_any_work(call, match):
    with pytest.raises(ValueError, match=match):
        call()
