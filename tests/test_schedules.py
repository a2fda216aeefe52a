import pytest
import torch

from mi_lib import cosine_schedule, linear_schedule, make_schedule, respace


def test_linear_alpha_bar_matches_paper():
    # PAPER.md: alpha_bar is 0.94 at t = 20, 0.33 at t = 100, 0.014 at t = 200, < 1e-4 after ~300.
    s = linear_schedule(1000)
    assert s.at(20) == pytest.approx(0.94, abs=0.005)
    assert s.at(100) == pytest.approx(0.33, abs=0.005)
    assert s.at(200) == pytest.approx(0.014, abs=0.0005)
    assert float(s.alpha_bar[310]) < 1e-4
    assert s.betas[0].item() == pytest.approx(1e-3) and s.betas[-1].item() == pytest.approx(0.2)


def test_cosine_is_monotone_and_ends_near_zero():
    s = cosine_schedule(1000)
    ab = s.alpha_bar
    assert bool((ab[1:] < ab[:-1]).all())
    assert ab[0] > 0.999 and ab[-1] < 1e-4


def test_respace_keeps_alpha_bar_and_network_times():
    s = cosine_schedule(1000)
    r = respace(s, 250)
    assert r.T == 250 and r.timesteps[0] == 0 and r.timesteps[-1] == 999
    torch.testing.assert_close(r.alpha_bar, s.alpha_bar[r.timesteps], rtol=1e-10, atol=1e-14)
    assert torch.equal(respace(s, 1000).timesteps, s.timesteps)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: linear_schedule(0), "T must be a positive integer"),
        (lambda: linear_schedule(-5), "T must be a positive integer"),
        (lambda: linear_schedule(10, beta_start=0.0), "beta_start must lie in"),
        (lambda: linear_schedule(10, beta_end=1.5), "beta_end must lie in"),
        (lambda: cosine_schedule(10, max_beta=1.0), "max_beta must lie in"),
        (lambda: make_schedule("quadratic"), "kind must be one of"),
        (lambda: respace(linear_schedule(10), 11), "n_steps must be at most"),
        (lambda: respace(linear_schedule(10), 0), "n_steps must be a positive integer"),
        (lambda: linear_schedule(10).at(10), r"t must be an integer step in \[0, 9\]"),
        (lambda: linear_schedule(10).at(-1), r"t must be an integer step in \[0, 9\]"),
    ],
)
def test_bad_schedule_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
