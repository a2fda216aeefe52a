"""mi_lib against references computed outside it: published formulas evaluated with numpy,
and scipy's implementations of the same quantities."""

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from mi_lib import (
    auroc,
    cosine_schedule,
    hal_from_trajectory,
    linear_schedule,
    mixture_preset,
    posterior_variance,
    wilson_interval,
)


@pytest.mark.parametrize("t", [0, 1, 250, 500, 750, 998])
def test_cosine_alpha_bar_is_the_published_formula(t):
    """Nichol & Dhariwal (2021), Eq. 17: alpha_bar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s) /
    (1 + s)) pi / 2), s = 0.008; step index i of mi_lib holds the noise after step i + 1."""
    T, s = 1000, 0.008

    def f(u: float) -> float:
        return np.cos((u / T + s) / (1 + s) * np.pi / 2) ** 2

    assert float(cosine_schedule(T).alpha_bar[t]) == pytest.approx(f(t + 1) / f(0), rel=1e-10)


def test_cosine_alpha_bar_at_half_time():
    """At t = T/2 the published schedule keeps alpha_bar = cos^2(0.508 / 1.008 pi / 2) / f(0) ~ 0.4936."""
    assert float(cosine_schedule(1000).alpha_bar[499]) == pytest.approx(0.49376, abs=2e-4)


def test_linear_schedule_posterior_variance_against_numpy():
    """Ho et al. (2020), Eq. 7: beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t), in numpy."""
    betas = np.linspace(1e-3, 0.2, 1000)
    ab = np.cumprod(1 - betas)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    np.testing.assert_allclose(posterior_variance(linear_schedule(1000)).numpy(), betas * (1 - ab_prev) / (1 - ab),
                               rtol=1e-12)


@pytest.mark.parametrize("ab", [1.0, 0.6, 0.02])
def test_mixture_log_density_against_scipy(ab):
    """The noised 1D mixture: 1/3 sum_k N(sqrt(ab) mu_k, ab sigma^2 + 1 - ab), with scipy.stats.norm."""
    mix = mixture_preset("1d_three")
    x = torch.linspace(0, 4, 41, dtype=torch.float64)[:, None]
    mu, sd = np.array([1.0, 2.0, 3.0]) * np.sqrt(ab), np.sqrt(ab * 0.05**2 + 1 - ab)
    log_w = np.log(np.float64(np.float32(1 / 3)))  # mi_lib's default weights are 1/K rounded to float32
    want = scipy.special.logsumexp(scipy.stats.norm.logpdf(x.numpy(), mu, sd) + log_w, axis=1)
    np.testing.assert_allclose(mix.log_prob(x, ab).numpy(), want, rtol=1e-10, atol=1e-10)


def test_2d_mixture_log_density_against_scipy():
    mix = mixture_preset("2d_grid")
    x = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ab = 0.3
    comps = [scipy.stats.multivariate_normal(np.sqrt(ab) * m, (ab * s**2 + 1 - ab) * np.eye(2))
             for m, s in zip(mix.means.numpy(), mix.sigmas.numpy(), strict=True)]
    log_w = np.log(np.float64(np.float32(1 / 25)))  # the default weights, 1/K rounded to float32
    want = scipy.special.logsumexp(np.stack([c.logpdf(x.numpy()) for c in comps], axis=1) + log_w, axis=1)
    np.testing.assert_allclose(mix.log_prob(x, ab).numpy(), want, rtol=1e-9)


@pytest.mark.parametrize("count, n", [(0, 20), (3, 50), (17, 40), (40, 40), (1, 1_000_000)])
def test_wilson_interval_against_scipy(count, n):
    ci = scipy.stats.binomtest(count, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(count, n, z=scipy.stats.norm.ppf(0.975))
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_hal_from_trajectory_is_numpy_population_variance():
    traj = np.random.default_rng(0).normal(size=(15, 30, 2))
    want = traj.var(axis=0, ddof=0).mean(axis=-1)
    np.testing.assert_allclose(hal_from_trajectory(torch.from_numpy(traj)).numpy(), want, rtol=1e-12)


def test_auroc_is_the_mann_whitney_statistic():
    rng = np.random.default_rng(1)
    neg, pos = rng.normal(size=300).round(1), rng.normal(0.8, size=120).round(1)  # rounded: ties count half
    u = scipy.stats.mannwhitneyu(pos, neg).statistic
    hal = torch.from_numpy(np.concatenate([neg, pos]))
    y = torch.cat([torch.zeros(300, dtype=torch.bool), torch.ones(120, dtype=torch.bool)])
    assert auroc(hal, y) == pytest.approx(u / (300 * 120), rel=1e-12)
