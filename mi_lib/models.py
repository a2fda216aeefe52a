"""The paper's denoising network for the 1D and 2D mixtures: ToyMLP predicts eps from
(x_t, t) (paper Sec. 4; the authors' code). mi_lib.fast computes the same function faster."""

from __future__ import annotations

import math

import torch
from torch import nn

from mi_lib.checks import check_positive_int, check_rows, check_times


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer times t (N,) -> (N, dim), as in the Transformer."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class TemporalBlock(nn.Module):
    """LayerNorm -> LeakyReLU -> Linear, plus a projection of the time embedding, then
    LayerNorm -> LeakyReLU -> Linear, with an identity skip around it all."""

    def __init__(self, width: int, slope: float = 0.02) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width, bias=False)
        self.fc2 = nn.Linear(width, width, bias=False)
        self.time = nn.Linear(width, width)
        self.act = nn.LeakyReLU(slope)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        u = self.fc1(self.act(self.norm1(h))) + self.time(temb)
        return h + self.fc2(self.act(self.norm2(u)))


class ToyMLP(nn.Module):
    """The paper's eps network for low-dimensional data (paper Sec. 4; authors' code).

    Input Linear(d -> width, no bias); sinusoidal time embedding -> Linear -> LeakyReLU(0.02);
    n_blocks TemporalBlocks; output LayerNorm -> Linear(width -> d). shared_blocks=True makes
    the blocks one module applied n_blocks times, as the authors' list multiplication does;
    the book trains separate blocks (the default).
    """

    def __init__(self, dim: int = 1, width: int = 128, n_blocks: int = 3, shared_blocks: bool = False) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("width", width), ("n_blocks", n_blocks)):
            check_positive_int(name, value)
        self.dim, self.width = dim, width
        self.inp = nn.Linear(dim, width, bias=False)
        self.temb = nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.02))
        blocks = [TemporalBlock(width)] * n_blocks if shared_blocks else [TemporalBlock(width) for _ in range(n_blocks)]
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps_theta(x_t, t). x: (N, dim); t: (N,) integer times, or one t for all rows."""
        check_rows("x", x, self.dim)
        temb = self.temb(timestep_embedding(check_times(t, x).expand(len(x)), self.width))
        h = self.inp(x)
        for blk in self.blocks:
            h = blk(h, temb)
        return self.out(h)
