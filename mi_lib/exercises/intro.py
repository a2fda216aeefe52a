"""Checks of the exercises of chapter 1 (book/intro.ipynb)."""

from __future__ import annotations

import math

from mi_lib.exercises._core import exercise, expect_close


@exercise("ex-intro-1d", answers={"p_1d": "float"})
def intro_1d(p_1d: float) -> None:
    # Farther than 6 sigma from every mean = farther than 6 sigma from its own (the modes are 20 sigma apart).
    expected = math.erfc(6 / math.sqrt(2))
    expect_close("p_1d", p_1d, expected, "P(|z| > 6) for a standard Gaussian z, to 6 digits")


@exercise("ex-intro-2d", answers={"p_2d": "float"})
def intro_2d(p_2d: float) -> None:
    expected = math.exp(-(6**2) / 2)  # P(chi2 with 2 degrees of freedom > 36)
    expect_close("p_2d", p_2d, expected, "P(||z|| > 6) for a standard 2D Gaussian z, to 6 digits")
