"""Checks of the exercises of chapter 8 (book/collapse.ipynb)."""

from __future__ import annotations

import torch

from mi_lib.collapse import keep_lowest_hal
from mi_lib.digits import digits_features, frechet_distance
from mi_lib.exercises._core import exercise, expect_close, expect_equal, expect_keys

RATIOS = (1.025, 1.1, 1.25, 2.0)


@exercise("ex-collapse-ratio", answers={"kept_share": "dict"}, inputs=("x0", "hal0", "y0"))
def collapse_ratio(kept_share: dict, x0: torch.Tensor, hal0: torch.Tensor, y0: torch.Tensor) -> None:
    expect_keys("kept_share", kept_share, list(RATIOS), "draw ratio in (1.025, 1.1, 1.25, 2)")
    for r in RATIOS:
        idx = keep_lowest_hal(x0, hal0, round(len(x0) / r), torch.Generator().manual_seed(0))
        expect_close(f"kept_share[{r}]", float(kept_share[r]), float(y0[idx].double().mean()),
                     f"the hallucinated share of the {round(len(x0) / r):,} samples with the lowest Hal", rel=1e-9)


@exercise("ex-collapse-floor", answers={"floors": "list"}, inputs=("real", "net"))
def collapse_floor(floors: list, real: torch.Tensor, net: torch.nn.Module) -> None:
    expect_equal("len(floors)", len(floors), 5, "one distance per seed 0 to 4")
    half = len(real) // 2
    for seed, got in enumerate(floors):
        perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
        expected = frechet_distance(digits_features(net, real[perm[:half]]), digits_features(net, real[perm[half:]]))
        expect_close(f"floors[{seed}]", float(got), expected,
                     f"the Frechet distance between two halves of the real digits split with seed {seed}", rel=1e-6)
