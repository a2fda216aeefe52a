"""Checks of the exercises of chapter 6 (book/detection.ipynb)."""

from __future__ import annotations

from mi_lib.detection import detection_rates, threshold_for_removed
from mi_lib.exercises._core import exercise, expect_close, expect_rate
from mi_lib.metrics import rate


@exercise("ex-detection-heldout", answers={"thr_half": "float", "removed_half": "Rate", "kept_half": "Rate"},
          inputs=("runs",))
def detection_heldout(thr_half: float, removed_half, kept_half, runs: dict) -> None:
    hal, y = runs["1d_three"]["hal"], runs["1d_three"]["y"]
    half = len(hal) // 2
    thr = threshold_for_removed(hal[:half], y[:half], 0.95)
    expect_close("thr_half", thr_half, thr, "the threshold that removes 95% of the first half's hallucinations",
                 rel=1e-12)
    removed, kept = detection_rates(hal[half:], y[half:], thr)
    expect_rate("removed_half", removed_half, removed, "the second half's hallucinations with Hal > thr_half")
    expect_rate("kept_half", kept_half, kept, "the second half's in-support samples with Hal <= thr_half")


@exercise("ex-detection-borderline", answers={"kept_core": "Rate", "removed_far": "Rate"},
          inputs=("runs", "results", "mixtures"))
def detection_borderline(kept_core, removed_far, runs: dict, results: dict, mixtures: dict) -> None:
    run, thr = runs["1d_three"], results["1d_three"]["threshold"]
    dist, idx = mixtures["1d_three"].distance_to_nearest_mode(run["x"])
    k = dist / mixtures["1d_three"].sigmas[idx]  # in sigmas from the nearest mode
    hal, y = run["hal"], run["y"]
    expect_rate("kept_core", kept_core, rate(hal[~y & (k <= 3)] <= thr),
                "the in-support samples within 3 sigma of their mode with Hal <= the threshold")
    expect_rate("removed_far", removed_far, rate(hal[y & (k > 8)] > thr),
                "the hallucinations beyond 8 sigma of every mode with Hal > the threshold")
