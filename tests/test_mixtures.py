import math

import pytest
import torch

from mi_lib import gaussian_mixture, make_generator, mixture_preset

T_ALPHA_BARS = [0.999, 0.94, 0.33, 0.014, 1e-3]


def _points(m, n=64, seed=0):
    g = make_generator(seed)
    x = m.sample(n, g, dtype=torch.float64)
    # Also points between the modes and far outside, where responsibilities underflow naively.
    lo, hi = m.means.min() - 1, m.means.max() + 1
    return torch.cat([x, lo + (hi - lo) * torch.rand(n, m.dim, generator=g, dtype=torch.float64)])


@pytest.mark.parametrize("preset", ["1d_three", "1d_four", "2d_grid", "2d_diamond"])
@pytest.mark.parametrize("ab", T_ALPHA_BARS)
def test_score_is_autograd_gradient_of_log_density(preset, ab):
    m = mixture_preset(preset)
    x = _points(m).requires_grad_(True)
    (grad,) = torch.autograd.grad(m.log_prob(x, ab).sum(), x)
    torch.testing.assert_close(m.score(x.detach(), ab), grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("preset", ["1d_three", "2d_grid"])
@pytest.mark.parametrize("ab", T_ALPHA_BARS)
def test_x0_denoiser_satisfies_tweedie(preset, ab):
    # Tweedie: E[x0 | x_t] = (x_t + (1 - ab) grad log p_t(x_t)) / sqrt(ab).
    m = mixture_preset(preset)
    x = _points(m)
    tweedie = (x + (1 - ab) * m.score(x, ab)) / math.sqrt(ab)
    torch.testing.assert_close(m.x0_denoiser(x, ab), tweedie, rtol=1e-8, atol=1e-8)


def test_score_approaches_standard_normal_at_full_noise():
    m = mixture_preset("2d_grid")
    x = torch.randn(100, 2, generator=make_generator(1), dtype=torch.float64)
    torch.testing.assert_close(m.score(x, 1e-8), -x, rtol=0, atol=1e-6)


def test_per_row_alpha_bar_equals_scalar_calls():
    m = mixture_preset("1d_three")
    x = _points(m, n=8)
    ab = torch.linspace(0.01, 0.99, len(x), dtype=torch.float64)
    rows = torch.cat([m.score(x[i : i + 1], float(ab[i])) for i in range(len(x))])
    torch.testing.assert_close(m.score(x, ab), rows)


def test_sampling_is_seeded_balanced_and_in_support():
    m = mixture_preset("1d_three")
    a, b = m.sample(30_000, make_generator(3)), m.sample(30_000, make_generator(3))
    assert torch.equal(a, b)
    _, nearest = m.distance_to_nearest_mode(a)
    assert torch.bincount(nearest).tolist() == [10_000, 10_000, 10_000]
    assert m.hallucinated(a).sum() == 0  # P(|z| > 6) ~ 2e-9 per sample
    assert a.std() == pytest.approx(math.sqrt(2 / 3 + 0.05**2), rel=0.02)


def test_presets_geometry():
    grid, diamond = mixture_preset("2d_grid"), mixture_preset("2d_diamond")
    assert grid.n_modes == diamond.n_modes == 25
    scale = math.sqrt(0.05**2 + 8)
    assert float(grid.sigmas[0]) == pytest.approx(0.05 / scale)
    d = torch.cdist(grid.means, grid.means) + 1e9 * torch.eye(25)
    assert float(d.min()) == pytest.approx(2 / scale)
    # In the diamond, no two modes on the same horizontal line are nearest neighbours.
    dd = torch.cdist(diamond.means, diamond.means) + 1e9 * torch.eye(25)
    same_row = (diamond.means[:, None, 1] - diamond.means[None, :, 1]).abs() < 1e-9
    assert float(dd[same_row].min()) == pytest.approx(math.sqrt(2) * float(dd.min()))
    assert mixture_preset("1d_four").means.flatten().tolist() == [1.0, 2.0, 4.0, 5.0]


def test_hallucination_label_uses_k_sigma():
    m = mixture_preset("1d_three")
    x = torch.tensor([[1.0], [1.29], [1.31], [1.5], [3.0 + 6.01 * 0.05]])
    assert m.hallucinated(x).tolist() == [False, False, True, True, True]
    assert m.hallucinated(x, k=9).tolist() == [False, False, False, True, False]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: gaussian_mixture([[1.0, 2.0]], 0.1, weights=[0.5, 0.5]), r"weights must have shape \(1,\)"),
        (lambda: gaussian_mixture([1.0, 2.0], 0.1, weights=[0.3, 0.3]), "weights must be positive and sum to 1"),
        (lambda: gaussian_mixture([1.0, 2.0], [0.1, 0.1, 0.1]), "sigma must be positive, one value or 2 values"),
        (lambda: gaussian_mixture([1.0, 2.0], -0.1), "sigma must be positive"),
        (lambda: gaussian_mixture([], 0.1), "means must have shape"),
        (lambda: mixture_preset("3d_cube"), "name must be one of"),
        (lambda: mixture_preset("1d_three").sample(0, make_generator(0)), "n must be a positive integer"),
        (lambda: mixture_preset("1d_three").score(torch.zeros(3, 2), 0.5), r"x must have shape \(N, 1\)"),
        (lambda: mixture_preset("1d_three").score(torch.zeros(3, 1), 0.0), r"alpha_bar must lie in \(0, 1\]"),
        (lambda: mixture_preset("1d_three").score(torch.zeros(3, 1), torch.ones(2)), "alpha_bar must be a scalar"),
        (lambda: mixture_preset("1d_three").hallucinated(torch.zeros(3, 1), k=0), "k must be positive"),
    ],
)
def test_bad_mixture_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
