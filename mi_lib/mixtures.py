"""Gaussian mixtures: seeded samples, log density, and the closed-form score and x0
denoiser of the mixture noised to any t (paper, Sec. 4.3).

Noising x0 ~ sum_k w_k N(mu_k, s_k^2 I) to x_t = sqrt(ab) x0 + sqrt(1 - ab) eps gives
another mixture, sum_k w_k N(sqrt(ab) mu_k, (ab s_k^2 + 1 - ab) I), so its score and the
posterior mean E[x0 | x_t] are sums over components weighted by the responsibilities,
which are computed with log-sum-exp so that they stay finite far from every mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mi_lib.checks import check_choice, check_finite, check_positive, check_positive_int
from mi_lib.diffusion import EpsFn
from mi_lib.schedules import Schedule

Tensorish = float | torch.Tensor


def _as_alpha_bar(alpha_bar: Tensorish, n: int) -> torch.Tensor:
    """alpha_bar as a float64 column that broadcasts over (n, K): a scalar or one per row."""
    ab = torch.as_tensor(alpha_bar, dtype=torch.float64)
    if ab.ndim == 0:
        ab = ab.reshape(1, 1)
    elif ab.shape == (n,):
        ab = ab[:, None]
    else:
        raise ValueError(f"alpha_bar must be a scalar or have shape ({n},), got {tuple(ab.shape)}")
    if not bool(((ab > 0) & (ab <= 1)).all()):
        raise ValueError(f"alpha_bar must lie in (0, 1], got values in [{ab.min():.3g}, {ab.max():.3g}]")
    return ab


@dataclass(frozen=True)
class GaussianMixture:
    """sum_k weights[k] N(means[k], sigmas[k]^2 I); means (K, d), sigmas and weights (K,)."""

    means: torch.Tensor
    sigmas: torch.Tensor
    weights: torch.Tensor

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_modes(self) -> int:
        return self.means.shape[0]

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (N, {self.dim}), got {tuple(x.shape)}")
        return x.to(torch.float64)

    def sample(
        self, n: int, generator: torch.Generator, balanced: bool = True, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """n samples, shuffled. balanced=True gives each mode exactly round(n w_k) samples
        (the paper's 'modes exactly balanced'); balanced=False draws the modes at random."""
        check_positive_int("n", n)
        if balanced:
            counts = torch.floor(self.weights * n).long()
            counts[: n - int(counts.sum())] += 1  # hand out the remainder, one each
            k = torch.repeat_interleave(torch.arange(self.n_modes), counts)
            k = k[torch.randperm(n, generator=generator)]
        else:
            k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return (self.means[k] + self.sigmas[k, None] * z).to(dtype)

    def noised(self, alpha_bar: float) -> GaussianMixture:
        """The law of x_t when x0 follows this mixture: scaled means, inflated variances."""
        ab = float(_as_alpha_bar(alpha_bar, 1))
        return GaussianMixture(
            self.means * math.sqrt(ab), (ab * self.sigmas**2 + 1 - ab).sqrt(), self.weights
        )

    def _component_log_probs(self, x: torch.Tensor, alpha_bar: Tensorish) -> tuple[torch.Tensor, ...]:
        """log(w_k N(x; m_k, v_k I)) of the noised components, and diff = x - m_k, v_k."""
        ab = _as_alpha_bar(alpha_bar, x.shape[0])  # (N or 1, 1)
        var = ab * self.sigmas[None] ** 2 + 1 - ab  # (N or 1, K)
        diff = x[:, None, :] - ab.sqrt()[..., None] * self.means[None]  # (N, K, d)
        sq = (diff**2).sum(-1)
        logp = self.weights.log()[None] - 0.5 * sq / var - 0.5 * self.dim * torch.log(2 * math.pi * var)
        return logp, diff, var

    def log_prob(self, x: torch.Tensor, alpha_bar: Tensorish = 1.0) -> torch.Tensor:
        """log p_t(x) of the mixture noised to alpha_bar (alpha_bar = 1: the data itself)."""
        logp, _, _ = self._component_log_probs(self._check_x(x), alpha_bar)
        return torch.logsumexp(logp, dim=1)

    def responsibilities(self, x: torch.Tensor, alpha_bar: Tensorish = 1.0) -> torch.Tensor:
        """p(component k | x_t), shape (N, K)."""
        logp, _, _ = self._component_log_probs(self._check_x(x), alpha_bar)
        return torch.softmax(logp, dim=1)

    def score(self, x: torch.Tensor, alpha_bar: Tensorish) -> torch.Tensor:
        """grad_x log p_t(x) = sum_k r_k(x) (m_k - x) / v_k, in x's dtype."""
        x64 = self._check_x(x)
        logp, diff, var = self._component_log_probs(x64, alpha_bar)
        r = torch.softmax(logp, dim=1)
        return (-(r / var)[..., None] * diff).sum(1).to(x.dtype)

    def eps(self, x: torch.Tensor, alpha_bar: Tensorish) -> torch.Tensor:
        """The ideal eps prediction E[eps | x_t] = -sqrt(1 - alpha_bar) score."""
        ab = _as_alpha_bar(alpha_bar, x.shape[0])
        return (-(1 - ab).sqrt() * self.score(x, alpha_bar).to(torch.float64)).to(x.dtype)

    def x0_denoiser(self, x: torch.Tensor, alpha_bar: Tensorish) -> torch.Tensor:
        """E[x0 | x_t]: each component's Gaussian posterior mean, weighted by r_k(x_t)."""
        x64 = self._check_x(x)
        logp, diff, var = self._component_log_probs(x64, alpha_bar)
        r = torch.softmax(logp, dim=1)
        ab = _as_alpha_bar(alpha_bar, x.shape[0])
        gain = ab.sqrt() * self.sigmas[None] ** 2 / var  # (N or 1, K)
        post = self.means[None] + gain[..., None] * diff  # (N, K, d)
        return (r[..., None] * post).sum(1).to(x.dtype)

    def distance_to_nearest_mode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Euclidean distance from each x to its nearest mean, and that mean's index."""
        d = torch.cdist(self._check_x(x), self.means)
        return d.min(dim=1)

    def hallucinated(self, x: torch.Tensor, k: float = 6.0) -> torch.Tensor:
        """True where x is farther than k sigma from every mode (paper, Sec. 4.1: k = 6)."""
        check_positive("k", k)
        dist, idx = self.distance_to_nearest_mode(x)
        return dist > k * self.sigmas[idx]


def gaussian_mixture(
    means: torch.Tensor | list, sigma: float | torch.Tensor | list, weights: torch.Tensor | list | None = None
) -> GaussianMixture:
    """Build a checked mixture. means: (K,) for 1D or (K, d); sigma: one value or (K,);
    weights: (K,) summing to 1, equal by default."""
    mu = torch.as_tensor(means, dtype=torch.float64)
    if mu.ndim == 1:
        mu = mu[:, None]
    if mu.ndim != 2 or mu.shape[0] == 0:
        raise ValueError(f"means must have shape (K,) or (K, d) with K >= 1, got {tuple(mu.shape)}")
    check_finite("means", mu)
    K = mu.shape[0]
    s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1)
    check_finite("sigma", s)
    if s.numel() == 1:
        s = s.expand(K).clone()
    if s.shape != (K,) or not bool((s > 0).all()):
        raise ValueError(f"sigma must be positive, one value or {K} values, got {sigma!r}")
    if weights is None:
        weights = torch.full((K,), 1.0 / K)
    w = torch.as_tensor(weights, dtype=torch.float64)
    check_finite("weights", w)
    if w.shape != (K,):
        raise ValueError(f"weights must have shape ({K},) to match means, got {tuple(w.shape)}")
    if not bool((w > 0).all()) or abs(float(w.sum()) - 1.0) > 1e-6:
        raise ValueError(f"weights must be positive and sum to 1, got sum {float(w.sum()):.6g}")
    return GaussianMixture(mu, s, w)


def _square_grid() -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(-2, 3), torch.arange(-2, 3), indexing="ij")
    return 2.0 * torch.stack([i.reshape(-1), j.reshape(-1)], dim=1).double()


def _rotate(points: torch.Tensor, degrees: float) -> torch.Tensor:
    a = math.radians(degrees)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    return points @ rot.T


_GRID_SCALE = math.sqrt(0.05**2 + 8)  # the paper divides the 2D grid by sqrt(sigma^2 + 8) ~ 2.828

PRESETS = {
    "1d_three": lambda: gaussian_mixture([1.0, 2.0, 3.0], 0.05),
    "1d_three_far": lambda: gaussian_mixture([1.0, 2.0, 4.0], 0.05),
    "1d_two": lambda: gaussian_mixture([1.0, 2.0], 0.05),
    "1d_four": lambda: gaussian_mixture([1.0, 2.0, 4.0, 5.0], 0.05),
    "2d_grid": lambda: gaussian_mixture(_square_grid() / _GRID_SCALE, 0.05 / _GRID_SCALE),
    "2d_diamond": lambda: gaussian_mixture(_rotate(_square_grid(), 45.0) / _GRID_SCALE, 0.05 / _GRID_SCALE),
}


def mixture_preset(name: str) -> GaussianMixture:
    """The paper's mixtures (Sec. 4): '1d_three' (modes 1, 2, 3; sigma 0.05), '1d_three_far'
    (1, 2, 4), '1d_two' (1, 2), '1d_four' (1, 2, 4, 5), '2d_grid' (5 x 5 grid 2(i, j) with
    sigma 0.05, all divided by sqrt(0.05^2 + 8)), '2d_diamond' (that grid turned by 45 degrees,
    so that neighbours along the axes are sqrt(2) farther apart than along the diagonals)."""
    check_choice("name", name, PRESETS)
    return PRESETS[name]()


def exact_eps_fn(mixture: GaussianMixture, schedule: Schedule) -> EpsFn:
    """An eps_fn for the samplers that returns the mixture's true eps at the network time t
    (the exact-score sampler: paper, appendix)."""
    ab = torch.zeros(int(schedule.timesteps.max()) + 1, dtype=torch.float64)
    ab[schedule.timesteps] = schedule.alpha_bar

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return mixture.eps(x, float(ab[int(t)]))

    return eps_fn
