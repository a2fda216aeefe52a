import math

import pytest
import torch

from mi_lib import (
    WindowVariance,
    ddpm_sample,
    direction_rates,
    exact_eps_fn,
    gap_rates,
    hal_from_trajectory,
    hallucination_rate,
    interpolation_direction,
    linear_schedule,
    make_generator,
    mixture_preset,
    rate,
    wilson_interval,
)


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Table I: 0/10 -> [0, 0.2775]; 15/148 -> [0.0624, 0.1605]
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and math.isclose(hi, 0.2775, abs_tol=5e-5)
    lo, hi = wilson_interval(15, 148)
    assert math.isclose(lo, 0.0624, abs_tol=5e-5) and math.isclose(hi, 0.1605, abs_tol=5e-5)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and math.isclose(lo, 1 - 0.2775, abs_tol=5e-5)
    for n in (7, 2_000, 1_000_000):  # the interval always contains the rate
        for count in (0, 1, n // 2, n - 1, n):
            lo, hi = wilson_interval(count, n)
            assert 0.0 <= lo <= count / n <= hi <= 1.0


def test_rate_counts_and_brackets():
    r = rate(torch.tensor([True, False, False, True]))
    assert (r.count, r.n, r.rate) == (2, 4, 0.5)
    assert r.low < 0.5 < r.high
    assert "2 of 4" in str(r)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: wilson_interval(3, 2), r"count must be an integer in \[0, n = 2\]"),
        (lambda: wilson_interval(0, 0), "n must be a positive integer"),
        (lambda: rate(torch.tensor([1, 0])), "mask must be a non-empty 1D boolean tensor"),
        (lambda: WindowVariance(5, 2), "t_lo must be at most t_hi"),
        (lambda: WindowVariance(0, 3).hal(), r"no step in the window \[0, 3\]"),
        (lambda: gap_rates(torch.zeros(3, 2), mixture_preset("2d_grid")), "mixture must be 1D"),
        (lambda: interpolation_direction(torch.zeros(3, 1), mixture_preset("1d_four")), "mixture must be 2D, got"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_gap_rates_put_each_hallucination_in_its_gap():
    mix = mixture_preset("1d_four")  # 1, 2, 4, 5
    x = torch.tensor([[1.0], [1.5], [1.6], [3.0], [4.5], [5.0], [6.0], [0.0]])
    gaps = gap_rates(x, mix)
    assert [(lo, hi) for lo, hi, _ in gaps] == [(1.0, 2.0), (2.0, 4.0), (4.0, 5.0)]
    assert [r.count for _, _, r in gaps] == [2, 1, 1]  # 6.0 and 0.0 lie outside every gap
    assert all(r.n == 8 for _, _, r in gaps)
    assert hallucination_rate(x, mix).count == 6


def test_interpolation_direction_on_the_grid_and_the_diamond():
    grid, diamond = mixture_preset("2d_grid"), mixture_preset("2d_diamond")
    a, b, c = grid.means[12], grid.means[13], grid.means[18]  # centre, its axis and diagonal neighbours
    x = torch.stack([(a + b) / 2, a + (c - a) / 4]).float()
    angle = interpolation_direction(x, grid)
    assert angle[0] == pytest.approx(0.0, abs=1e-6)
    assert angle[1] == pytest.approx(45.0, abs=1e-6)
    # the same points, turned with the grid, swap directions
    rot = torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=torch.float64) / math.sqrt(2)
    angle_d = interpolation_direction((x.double() @ rot.T).float(), diamond)
    assert angle_d[0] == pytest.approx(45.0, abs=1e-4)
    rates = direction_rates(x, grid)
    assert rates["axis"].count == 1 and rates["diagonal"].count == 1


def _x0_hats(T=30, n=64, seed=0):
    mix, s = mixture_preset("1d_three"), linear_schedule(T)
    return s, list(ddpm_sample(exact_eps_fn(mix, s), (n, 1), s, make_generator(seed)))


def test_window_variance_equals_the_stored_trajectory():
    s, steps = _x0_hats()
    acc = WindowVariance(2, 11)
    for st in steps:
        acc.update(st.t, st.x0_hat)
    window = torch.stack([st.x0_hat for st in steps if 2 <= st.t <= 11])
    assert acc.count == 10
    torch.testing.assert_close(acc.hal(), hal_from_trajectory(window), rtol=1e-9, atol=1e-12)


def test_window_variance_keeps_no_step():
    """The accumulator holds its running mean and M2 only: no x0_hat it was given stays alive."""
    import gc
    import weakref

    s, steps = _x0_hats(T=40, n=32)
    acc, refs = WindowVariance(0, 39), []
    for st in steps:
        acc.update(st.t, st.x0_hat)
        refs.append(weakref.ref(st.x0_hat))
    del steps, st
    gc.collect()
    assert all(r() is None for r in refs)
    assert acc.hal().shape == (32,)
