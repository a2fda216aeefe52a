"""The toy set-up of the detection chapter and its studies (paper Sec. 5, Fig. 6 and 7).

The two mixtures of the paper's Sec. 4 ('1d_three', '2d_grid'), their trained models, the Hal
windows and operating points the paper reports, and the two runs the chapter measures: a small
batch with every step's x0_hat stored, and a large batch with only Hal kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mi_lib.artifacts import toy_model
from mi_lib.diffusion import ddpm_sample
from mi_lib.hal import sample_with_window_hals
from mi_lib.learned import model_eps_fn
from mi_lib.mixtures import GaussianMixture, mixture_preset
from mi_lib.runtime import by_scale, make_generator
from mi_lib.schedules import Schedule

NAMES = ("1d_three", "2d_grid")
TITLE = {"1d_three": "1D: three modes", "2d_grid": "2D: 5 x 5 grid"}
# The paper's Hal windows as (t_lo, t_hi), step 0 the last reverse step: the last 15 steps in
# 1D; in 2D the appendix's t = 0 to 8 (its main text says "the last ~20 steps").
WINDOW = {"1d_three": (0, 14), "2d_grid": (0, 8)}
# The paper's operating points, (share of hallucinations removed, of in-support samples kept).
PAPER = {"1d_three": (0.95, 0.98), "2d_grid": (0.96, 0.95)}


@dataclass(frozen=True)
class Toys:
    """The two toy models as `toy_model` returns them, their mixtures, their eps functions and
    their (shared) noise schedule."""

    models: dict
    mixtures: dict[str, GaussianMixture]
    eps_fns: dict
    schedule: Schedule


def load_toys(scale: str = "quick", retrain: bool = False, device: torch.device | str = "cpu") -> Toys:
    """The models of both mixtures: the shipped quick-scale ones, or trained here at paper scale
    (or with retrain=True), as `mi_lib.artifacts.toy_model` does."""
    models = {name: toy_model(name, scale, retrain, device) for name in NAMES}
    schedule = models[NAMES[0]]["recipe"].schedule()  # both: linear, 0.001 to 0.2, T = 1000
    return Toys(models, {name: mixture_preset(name) for name in NAMES},
                {name: model_eps_fn(m["model"]) for name, m in models.items()}, schedule)


def recipe_line(toys: Toys, name: str) -> str:
    """One short line on how a toy model was trained."""
    rec = toys.models[name]["recipe"]
    return f"{TITLE[name]}: {rec.steps:,} steps of batch {rec.batch_size:,} on {rec.n_data:,} points"


def record_trajectories(toys: Toys, name: str, n: int, seed: int,
                        device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """n samples of the model and every step's x0_hat, shape (T, n, d), row i holding step
    t = T-1-i; and the samples."""
    shape = (n, toys.mixtures[name].dim)
    x0_hats = []
    for step in ddpm_sample(toys.eps_fns[name], shape, toys.schedule, make_generator(seed, device), progress=False):
        x0_hats.append(step.x0_hat.cpu())
    return torch.stack(x0_hats), step.x_prev.cpu()


def window_rows(window: tuple[int, int], T: int) -> slice:
    """The rows of a stored trajectory (row i: step T-1-i) that hold steps t_hi down to t_lo."""
    t_lo, t_hi = window
    return slice(T - 1 - t_hi, T - t_lo)


def spread(traj: torch.Tensor, t: int, share: float = 0.8) -> float:
    """The width of the middle `share` of the 1D predictions x0_hat at step t."""
    lo = (1 - share) / 2
    q = torch.quantile(traj[traj.shape[0] - 1 - t, :, 0].double(), torch.tensor([lo, 1 - lo], dtype=torch.float64))
    return float(q[1] - q[0])


def path_motion(traj: torch.Tensor, y: torch.Tensor, window: tuple[int, int]) -> dict[str, float]:
    """How 1D x0_hat paths move inside a Hal window: for the hallucinated (y) and the other
    samples, the median change of x0_hat from one step to the next, the largest such change,
    and the median net drift, the size of x0_hat(t_lo) - x0_hat(t_hi); in x's units."""
    w = traj[window_rows(window, traj.shape[0]), :, 0].double()
    step, net = w.diff(dim=0).abs(), (w[-1] - w[0]).abs()
    out = {}
    for key, mask in (("hal", y), ("good", ~y)):
        out[f"step_{key}"] = float(step[:, mask].median())
        out[f"largest_step_{key}"] = float(step[:, mask].max())
        out[f"net_{key}"] = float(net[mask].median())
    return out


def sample_sizes(scale: str) -> tuple[dict[str, int], int]:
    """The chapter's number of samples per mixture, and the sampling chunk, at `scale`."""
    n = {"1d_three": by_scale(scale, quick=16_000, paper=100_000),
         "2d_grid": by_scale(scale, quick=2_000, paper=100_000)}
    return n, by_scale(scale, quick=2_000, paper=10_000)


def sample_runs(toys: Toys, scale: str, seed: int, windows: dict[str, list[tuple[int, int]]] | None = None,
                device: torch.device | str = "cpu") -> dict[str, dict]:
    """Sample each model at `scale`'s size with Hal over several windows in one pass (by
    default only the paper's): per mixture {"x": samples, "hals": {window: Hal}, "hal": Hal over
    the paper's window, "y": hallucinated (beyond 6 sigma)}."""
    n, chunk = sample_sizes(scale)
    runs = {}
    for name in NAMES:
        ws = list(dict.fromkeys([WINDOW[name], *(windows or {}).get(name, [])]))
        x, hals = sample_with_window_hals(toys.eps_fns[name], n[name], toys.mixtures[name].dim, toys.schedule,
                                          seed=seed, windows=ws, chunk=chunk, device=device, progress=False)
        runs[name] = {"x": x, "hals": hals, "hal": hals[WINDOW[name]], "y": toys.mixtures[name].hallucinated(x)}
    return runs
