"""What every image model's recipe holds (Simple Shapes, hands): the data's size and seed, the
U-Net, the cosine schedule, the training budget, and the ancestral sampler with its bank. The
paper states the cosine schedule, T = 1000 and the sampling steps; the rest is open (PAPER.md)
and chosen here: a small patch-unshuffled U-Net predicting v, EMA weights, the posterior
('fixed_small') variance and x0_hat clipped to [-1, 1] (Ho et al. 2020's code)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mi_lib.checks import check_choice, check_positive_int, check_seed
from mi_lib.prediction import VPrediction
from mi_lib.schedules import Schedule, cosine_schedule, respace
from mi_lib.unet import UNet


@dataclass(frozen=True)
class ImageRecipe:
    """The fields and methods the image recipes share; each kind adds its data (`data()`: the
    training images (n_data, 1, S, S) in [-1, 1]) and its Hal windows."""

    n_data: int = 5_000
    data_seed: int = 0
    base: int = 32
    mults: tuple[int, ...] = (1, 2, 2)
    n_res: int = 1
    patch: int = 4
    T: int = 1_000
    steps: int = 4_000
    batch_size: int = 64
    lr: float = 5e-4
    prediction: str = "v"
    ema_decay: float = 0.999
    seed: int = 0
    sample_steps: int = 250
    variance: str = "fixed_small"
    clip_x0: float | None = 1.0
    n_samples: int = 1_600
    sample_seed: int = 1
    sample_chunk: int = 20

    def __post_init__(self) -> None:
        for name in ("n_data", "base", "n_res", "patch", "T", "steps", "batch_size", "sample_steps", "n_samples",
                     "sample_chunk"):
            check_positive_int(name, getattr(self, name))
        for name in ("data_seed", "seed", "sample_seed"):
            check_seed(getattr(self, name), name)
        if not self.mults or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.mults):
            raise ValueError(f"mults must be a non-empty tuple of positive integers, got {self.mults!r}")
        if self.sample_steps > self.T:
            raise ValueError(f"sample_steps must be at most T = {self.T}, got {self.sample_steps!r}")
        if not (isinstance(self.lr, float | int) and 0 < self.lr < 1):
            raise ValueError(f"lr must be a number in (0, 1), got {self.lr!r}")
        if not (isinstance(self.ema_decay, float | int) and 0 <= self.ema_decay < 1):
            raise ValueError(f"ema_decay must be a number in [0, 1), got {self.ema_decay!r}")
        check_choice("prediction", self.prediction, ("eps", "v"))
        check_choice("variance", self.variance, ("fixed_small", "fixed_large"))
        if self.clip_x0 is not None and not (isinstance(self.clip_x0, float | int) and self.clip_x0 > 0):
            raise ValueError(f"clip_x0 must be None or a number > 0, got {self.clip_x0!r}")

    @property
    def epochs(self) -> float:
        return self.steps * self.batch_size / self.n_data

    def schedule(self) -> Schedule:
        """The training schedule (cosine, T steps)."""
        return cosine_schedule(self.T)

    def sampling_schedule(self) -> Schedule:
        """The schedule respaced to sample_steps (the network keeps its original times)."""
        return respace(self.schedule(), self.sample_steps)

    def model(self) -> UNet:
        """A freshly initialised U-Net (it predicts `prediction`); its weights depend on `seed` and the sizes only."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return UNet(1, self.base, self.mults, self.n_res, self.patch)

    def eps_model(self, net: UNet) -> nn.Module:
        """The eps network the samplers call: `net` itself, or VPrediction(net) for a v network."""
        return net if self.prediction == "eps" else VPrediction(net, self.schedule())
