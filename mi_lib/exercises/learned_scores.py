"""Checks of the exercises of chapter 4 (book/learned_scores.ipynb)."""

from __future__ import annotations

import torch
from torch import nn

from mi_lib.exercises._core import exercise, expect_close, expect_keys, expect_rate, fail
from mi_lib.learned import learned_x0_hat
from mi_lib.metrics import hallucination_rate
from mi_lib.mixtures import GaussianMixture
from mi_lib.schedules import Schedule

KS = (3.0, 4.0, 6.0, 8.0)


@exercise("ex-learned-threshold", answers={"rates_by_k": "dict"}, inputs=("x_learned", "x_data", "mixture"))
def learned_threshold(
    rates_by_k: dict, x_learned: torch.Tensor, x_data: torch.Tensor, mixture: GaussianMixture
) -> None:
    expect_keys("rates_by_k", rates_by_k, list(KS), "k in (3.0, 4.0, 6.0, 8.0)")
    for k in KS:
        pair = rates_by_k[k]
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            fail(f"rates_by_k[{k}]", "a pair (learned rate, data rate)", repr(pair), "a tuple of two Rates")
        expect_rate(f"rates_by_k[{k}][0]", pair[0], hallucination_rate(x_learned, mixture, k=k),
                    f"the learned samples farther than {k:g} sigma from every mode")
        expect_rate(f"rates_by_k[{k}][1]", pair[1], hallucination_rate(x_data, mixture, k=k),
                    f"the data farther than {k:g} sigma from every mode")


def gap_shares(x_grid: torch.Tensor, mixture: GaussianMixture, model: nn.Module, schedule: Schedule, t: int):
    """Of the grid points in a gap (beyond 6 sigma of every mode), the shares that the true and
    the learned x0_hat at step t send back within 6 sigma of a mode."""
    x_gap = x_grid[mixture.hallucinated(x_grid)]
    true_back = ~mixture.hallucinated(mixture.x0_denoiser(x_gap, schedule.at(t)))
    learned_back = ~mixture.hallucinated(learned_x0_hat(model, x_gap, t, schedule))
    return true_back.double().mean().item(), learned_back.double().mean().item()


@exercise("ex-learned-gap-map", answers={"share_true": "float", "share_learned": "float"},
          inputs=("x_grid", "mixture", "model", "schedule"))
def learned_gap_map(
    share_true: float, share_learned: float, x_grid: torch.Tensor, mixture: GaussianMixture, model: nn.Module,
    schedule: Schedule,
) -> None:
    true_share, learned_share = gap_shares(x_grid, mixture, model, schedule, t=1)
    what = "the share of the gap points of x_grid that the {} x0_hat at t = 1 sends within 6 sigma of a mode"
    expect_close("share_true", share_true, true_share, what.format("true"), rel=1e-4)
    expect_close("share_learned", share_learned, learned_share, what.format("learned"), rel=1e-4)
