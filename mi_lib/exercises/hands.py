"""Checks of the exercises of chapter 7 (book/hands.ipynb)."""

from __future__ import annotations

import torch

from mi_lib.detection import detection_rates, threshold_for_removed
from mi_lib.exercises._core import exercise, expect_close, expect_keys, expect_rate
from mi_lib.fingers import count_fingers

LAMS = (0.1, 0.25, 0.5, 0.75, 0.9)
REMOVED = 0.80  # the paper's share of hallucinated hands removed


@exercise("ex-hands-blend", answers={"six_by_lam": "dict"}, inputs=("first", "second"))
def hands_blend(six_by_lam: dict, first, second) -> None:
    expect_keys("six_by_lam", six_by_lam, list(LAMS), "lam in (0.1, 0.25, 0.5, 0.75, 0.9)")
    for lam in LAMS:
        share = float((count_fingers(lam * first.images + (1 - lam) * second.images) == 6).mean())
        expect_close(f"six_by_lam[{lam}]", float(six_by_lam[lam]), share,
                     f"the share of the blends lam * first + (1 - lam) * second read as six fingers, lam = {lam}",
                     rel=0, abs_=1e-9)


@exercise("ex-hands-heldout", answers={"thr_half": "float", "removed_half": "Rate", "kept_half": "Rate"},
          inputs=("h_shapes", "y"))
def hands_heldout(thr_half: float, removed_half, kept_half, h_shapes: torch.Tensor, y: torch.Tensor) -> None:
    thr = threshold_for_removed(h_shapes[0::2], y[0::2], REMOVED)
    expect_close("thr_half", thr_half, thr,
                 "the threshold that removes 80% of the hallucinations among the hands at even positions", rel=1e-9)
    removed, kept = detection_rates(h_shapes[1::2], y[1::2], thr)
    expect_rate("removed_half", removed_half, removed, "the odd positions' hallucinated hands with Hal > thr_half")
    expect_rate("kept_half", kept_half, kept, "the odd positions' in-support hands with Hal <= thr_half")
