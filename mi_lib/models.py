"""Denoising networks. ToyMLP is the paper's MLP for the 1D and 2D mixtures (Sec. 4, the
authors' code): it predicts eps from (x_t, t)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mi_lib.checks import check_positive_int


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
        self.act = nn.LeakyReLU(slope, inplace=True)  # acts on fresh LayerNorm outputs only

    def forward(self, h: torch.Tensor, time_proj: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        """time_proj is self.time(temb), computed by the caller (once per distinct t); a, if
        given, is act(norm1(h)) computed by the caller. For a batch (N, width) the two
        additions are fused into the matrix products (addmm)."""
        a = self.act(self.norm1(h)) if a is None else a
        if h.ndim != 2:
            u = self.fc1(a) + time_proj
            return h + self.fc2(self.act(self.norm2(u)))
        u = torch.addmm(time_proj, a, self.fc1.weight.t())
        return torch.addmm(h, self.act(self.norm2(u)), self.fc2.weight.t())


class ToyMLP(nn.Module):
    """The paper's eps network for low-dimensional data (paper Sec. 4; authors' code).

    Input Linear(d -> width, no bias); sinusoidal time embedding -> Linear -> LeakyReLU(0.02);
    n_blocks TemporalBlocks; output LayerNorm -> Linear(width -> d).

    shared_blocks=False (the default, and what this book trains) gives each block its own
    weights. The authors' code builds its block list by list multiplication, so its three
    blocks are one module applied three times; shared_blocks=True reproduces that.

    The network's time inputs repeat: a sampler calls it with one t for the whole batch,
    and a training batch of 10,000 draws from at most T distinct t. The time embedding and
    every block's time projection are therefore computed once per distinct t and gathered,
    which gives the same numbers as computing them per sample, at a fraction of the cost.
    """

    def __init__(self, dim: int = 1, width: int = 128, n_blocks: int = 3, shared_blocks: bool = False) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("width", width), ("n_blocks", n_blocks)):
            check_positive_int(name, value)
        self.dim, self.width = dim, width
        self.inp = nn.Linear(dim, width, bias=False)
        self.temb = nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.02, inplace=True))
        if shared_blocks:
            block = TemporalBlock(width)
            self.blocks = nn.ModuleList([block] * n_blocks)
        else:
            self.blocks = nn.ModuleList([TemporalBlock(width) for _ in range(n_blocks)])
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def time_table(self, t: torch.Tensor) -> list[torch.Tensor]:
        """Each block's time projection, one row per entry of the 1D tensor t."""
        emb = self.temb(timestep_embedding(t, self.width))
        return [blk.time(emb) for blk in self.blocks]

    def time_features(self, t: torch.Tensor) -> list[torch.Tensor]:
        """Each block's time projection for the distinct values of t, gathered to t's rows.
        A 0-dim t gives rows of one, which broadcast over the batch."""
        t = t.reshape(-1)
        if t.numel() == 1:
            return self.time_table(t)
        uniq, inverse = torch.unique(t, return_inverse=True)
        return [p.index_select(0, inverse) for p in self.time_table(uniq)]

    def _first_norm_1d(self, x: torch.Tensor) -> torch.Tensor:
        """act(norm1(inp(x))) of the first block for 1D data, in closed form. Each row of
        inp(x) is x * w, a multiple of one vector, so its LayerNorm is
        x (w - mean w) / sqrt(x^2 var w + eps), scaled and shifted: no pass over the row for
        its mean and variance."""
        blk, w = self.blocks[0], self.inp.weight[:, 0]
        wc = w - w.mean()
        s = x / torch.sqrt(x * x * wc.pow(2).mean() + blk.norm1.eps)
        return blk.act(torch.addcmul(blk.norm1.bias, s, wc * blk.norm1.weight))

    def _output(self, h: torch.Tensor) -> torch.Tensor:
        """self.out(h) with the LayerNorm's scale and shift folded into the Linear after it
        (W (g n + b) + c = (W g) n + (W b + c)), one pass over h fewer."""
        norm, lin = self.out
        n = F.layer_norm(h, (self.width,), eps=norm.eps)
        return F.linear(n, lin.weight * norm.weight, torch.addmv(lin.bias, lin.weight, norm.bias))

    def forward_features(self, x: torch.Tensor, time_projs: list[torch.Tensor]) -> torch.Tensor:
        """The network on x given each block's time projection (from time_features)."""
        h = self.inp(x)
        a = self._first_norm_1d(x) if self.dim == 1 and x.ndim == 2 else None
        for i, (blk, proj) in enumerate(zip(self.blocks, time_projs, strict=True)):
            h = blk(h, proj, a if i == 0 else None)
        return self._output(h)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps_theta(x_t, t). x: (N, dim); t: (N,) integer times, or a 0-dim t for all rows."""
        t = torch.as_tensor(t, device=x.device)
        if t.ndim not in (0, 1) or (t.ndim == 1 and t.shape[0] not in (1, x.shape[0])):
            raise ValueError(f"t must be 0-dim or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        return self.forward_features(x, self.time_features(t))

    def forward_per_sample(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The same function computed the plain way, embedding each row's t separately: the
        reference that tests and benchmarks compare the fast path with."""
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        emb = self.temb(timestep_embedding(t, self.width))
        h = self.inp(x)
        for blk in self.blocks:
            h = blk(h, blk.time(emb))
        return self.out(h)
