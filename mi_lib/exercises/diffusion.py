"""Checks of the exercises of chapter 2 (book/diffusion.ipynb)."""

from __future__ import annotations

import torch

from mi_lib.diffusion import reverse_step, reverse_variance
from mi_lib.exercises._core import exercise, expect_close, expect_equal, fail
from mi_lib.schedules import Schedule


@exercise("ex-diffusion-signal", answers={"t_one_percent": "int", "share": "float"}, inputs=("schedule",))
def diffusion_signal(t_one_percent: int, share: float, schedule: Schedule) -> None:
    below = schedule.alpha_bar < 0.01
    expected = int(below.nonzero()[0])
    expect_equal("t_one_percent", t_one_percent, expected, "the first step where alpha_bar < 0.01")
    expect_close("share", share, below.double().mean().item(), "the share of the T steps with alpha_bar < 0.01")


@exercise("ex-diffusion-step", answers={"by_hand": "tensor"}, inputs=("xt", "t", "eps_pred", "z", "schedule"))
def diffusion_step(
    by_hand: torch.Tensor, xt: torch.Tensor, t: int, eps_pred: torch.Tensor, z: torch.Tensor, schedule: Schedule
) -> None:
    sigma_t = float(reverse_variance(schedule, "fixed_large")[t].sqrt())
    expected, _ = reverse_step(xt, t, eps_pred, schedule, sigma_t, z)
    if by_hand.shape != expected.shape:
        fail("by_hand", "x_{t-1}, one value per row of xt", f"shape {tuple(by_hand.shape)}",
             f"shape {tuple(expected.shape)}")
    worst = float((by_hand.double() - expected.double()).abs().max())
    if worst > 1e-5:
        fail("by_hand", "what reverse_step returns from xt, eps_pred and z", f"values off by up to {worst:.3g}")
