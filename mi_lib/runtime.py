"""Where and how big: the device to run on, and the scale switch MI_SCALE=quick|paper."""

from __future__ import annotations

import os
from typing import TypeVar

import torch

from mi_lib.checks import check_choice, check_seed

SCALES = ("quick", "paper")
T_ = TypeVar("T_")


def default_device() -> torch.device:
    """CUDA when present (Colab with a GPU), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def get_scale(value: str | None = None) -> str:
    """The run's scale: `value` if given, else $MI_SCALE, else 'quick'. 'quick' runs every
    chapter in minutes on 2 CPU cores; 'paper' uses the paper's settings, for a GPU."""
    scale = value if value is not None else os.environ.get("MI_SCALE", "quick")
    check_choice("scale", scale, SCALES)
    return scale


def by_scale(scale: str, quick: T_, paper: T_) -> T_:
    """Pick the setting for a scale: by_scale(SCALE, quick=20_000, paper=50_000)."""
    check_choice("scale", scale, SCALES)
    return quick if scale == "quick" else paper


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device`, seeded: every random draw in mi_lib takes one."""
    check_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def derived_seed(seed: int, offset: int) -> int:
    """A seed for one part of a run (a training step, a sample chunk, a generation) made from
    the run's seed and the part's offset: a pure function, so any part can be redone alone."""
    check_seed(seed)
    return (seed * 1_000_003 + offset) % 2**62


def chunk_generator(seed: int, chunk: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator for chunk `chunk` of a sample bank, a pure function of (seed, chunk)."""
    return make_generator(derived_seed(seed, chunk), device)


def progress_bar(iterable=None, *, desc: str, progress: bool = True, **kwargs):
    """A tqdm.auto bar, silent when `progress` is False or the environment sets TQDM_DISABLE
    (the book's build does, so no bar reaches the rendered pages). The variable is read here,
    at each call: tqdm reads it once, at import, and its notebook bar ignores it."""
    from tqdm.auto import tqdm

    off = os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")
    return tqdm(iterable, desc=desc, disable=off or not progress, **kwargs)
