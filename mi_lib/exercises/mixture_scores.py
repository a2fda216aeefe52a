"""Checks of the exercises of chapter 3 (book/mixture_scores.ipynb)."""

from __future__ import annotations

import math

import torch

from mi_lib.exercises._core import exercise, expect_close, expect_keys
from mi_lib.mixtures import GaussianMixture, gaussian_mixture
from mi_lib.schedules import Schedule

SIGMAS = (0.02, 0.05, 0.1, 0.2)


@exercise("ex-scores-weights", answers={"x_star": "float", "crossing": "float"}, inputs=("schedule",))
def scores_weights(x_star: float, crossing: float, schedule: Schedule) -> None:
    ab = float(schedule.at(5))
    v = ab * 0.05**2 + 1 - ab
    m1, m2 = math.sqrt(ab) * 1.0, math.sqrt(ab) * 2.0
    expected = (m1 + m2) / 2 + v * math.log(0.9 / 0.1) / (m2 - m1)
    expect_close("x_star", x_star, expected, "the derived border at t = 5 (equal responsibilities)")
    expect_close("crossing", crossing, expected, "where the responsibilities cross at t = 5, found on a grid (to 1e-4)",
                 rel=0, abs_=1e-4)

def border_width(mix: GaussianMixture, t: int, schedule: Schedule) -> float:
    """The chapter's width of the border between modes 1 and 2: where mode 2's share of their
    two responsibilities goes from 0.1 to 0.9."""
    x = torch.linspace(-10.0, 10.0, 400_001, dtype=torch.float64)[:, None]
    r = mix.responsibilities(x, schedule.at(t))
    share = r[:, 1] / (r[:, 0] + r[:, 1])
    return float(x[share >= 0.9][0] - x[share >= 0.1][0])


@exercise("ex-scores-sigma", answers={"width_by_sigma": "dict", "exponent": "float"}, inputs=("schedule",))
def scores_sigma(width_by_sigma: dict, exponent: float, schedule: Schedule) -> None:
    expect_keys("width_by_sigma", width_by_sigma, list(SIGMAS), "sigma in (0.02, 0.05, 0.1, 0.2)")
    widths = {s: border_width(gaussian_mixture([1.0, 2.0, 3.0], s), 0, schedule) for s in SIGMAS}
    for s, w in widths.items():
        expect_close(f"width_by_sigma[{s}]", float(width_by_sigma[s]), w, f"the border's width at t = 0 for sigma {s}",
                     rel=1e-3)
    slope = math.log(widths[0.2] / widths[0.1]) / math.log(2)
    expect_close("exponent", exponent, slope, "the slope of log width against log sigma from 0.1 to 0.2", rel=1e-3)
