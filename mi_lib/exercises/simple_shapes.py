"""Checks of the exercises of chapter 5 (book/simple_shapes.ipynb)."""

from __future__ import annotations

import numpy as np
import torch

from mi_lib.exercises._core import exercise, expect_close, expect_equal, expect_keys, expect_rate
from mi_lib.metrics import rate
from mi_lib.shapes import read_image

STDS = (0.3, 0.5, 0.7, 1.0)


@exercise("ex-shapes-readable", answers={"rate_readable": "Rate"}, inputs=("labels",))
def shapes_readable(rate_readable, labels: np.ndarray) -> None:
    readable = labels != "unreadable"
    expected = rate(torch.tensor(labels[readable] == "hallucinated"))
    expect_rate("rate_readable", rate_readable, expected, "the hallucinated among the readable images")


def read_exactly(images: torch.Tensor, present: torch.Tensor) -> float:
    """The share of images that read_image calls in support with the right number of each shape."""
    ok = [(r := read_image(im)).label == "in support" and (np.diag(r.counts) == p.numpy()).all()
          for im, p in zip(images, present, strict=True)]
    return float(np.mean(ok))


@exercise("ex-shapes-noise", answers={"accuracy_by_std": "dict", "failing_std": "float"},
          inputs=("clean", "present", "z"))
def shapes_noise(accuracy_by_std: dict, failing_std: float, clean: torch.Tensor, present: torch.Tensor,
                 z: torch.Tensor) -> None:
    expect_keys("accuracy_by_std", accuracy_by_std, list(STDS), "std in (0.3, 0.5, 0.7, 1.0)")
    expected = {s: read_exactly(clean + s * z, present) for s in STDS}
    for s, acc in expected.items():
        expect_close(f"accuracy_by_std[{s}]", float(accuracy_by_std[s]), acc,
                     f"the share of clean + {s} * z read exactly", rel=0, abs_=1e-9)
    first = min((s for s, acc in expected.items() if acc < 0.9), default=None)
    expect_equal("failing_std", failing_std, first, "the smallest std at which under 90% are read exactly")
