"""Denoising networks. ToyMLP is the paper's MLP for the 1D and 2D mixtures (Sec. 4, the
authors' code): it predicts eps from (x_t, t)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
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

    def forward(
        self, h: torch.Tensor, time_proj: torch.Tensor, u: torch.Tensor | None = None, consume_h: bool = False,
    ) -> torch.Tensor:
        """time_proj is self.time(temb), computed by the caller (once per distinct t); u, if
        given, is fc1(act(norm1(h))) + time_proj computed by the caller (ToyMLP's first block,
        from its table). For a batch (N, width) the two additions are fused into the matrix
        products (addmm). consume_h: the caller no longer needs h and records no gradient, so
        the skip connection adds into h in place (no copy of it)."""
        if h.ndim != 2:
            u = self.fc1(self.act(self.norm1(h))) + time_proj if u is None else u
            return h + self.fc2(self.act(self.norm2(u)))
        if u is None:
            u = torch.addmm(time_proj, self.act(self.norm1(h)), self.fc1.weight.t())
        if consume_h and not torch.is_grad_enabled():
            return h.addmm_(self.act(self.norm2(u)), self.fc2.weight.t())
        return torch.addmm(h, self.act(self.norm2(u)), self.fc2.weight.t())


class FirstLayer(NamedTuple):
    """fc1(act(norm1(x w))) of ToyMLP's first block for 1D data, as a function of the scalar
    s = x / sqrt(x^2 var(w) + eps) (ToyMLP.first_layer): on the k-th interval between the
    sorted kinks z it is s * A[k] + B[k]."""

    z: torch.Tensor  # (m,) kinks inside the range of s, sorted
    A: torch.Tensor  # (m + 1, width) slope of each piece
    B: torch.Tensor  # (m + 1, width) intercept of each piece


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
    For 1D data the first block's LayerNorm -> LeakyReLU -> Linear depends on one number per
    row and is piecewise linear in it, so it is read from a small table (first_layer).
    forward_per_sample computes everything the plain way, for tests and benchmarks.
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

    def _first_s(self, x: torch.Tensor) -> torch.Tensor:
        """For 1D data each row of inp(x) is x * w, a multiple of one vector, so the first
        LayerNorm gives s (w - mean w), scaled and shifted, with s = x / sqrt(x^2 var w + eps):
        one number per row, |s| < 1 / sqrt(var w). Returns s, shape (N,)."""
        wc = self.inp.weight[:, 0] - self.inp.weight[:, 0].mean()
        return (x / torch.sqrt(x * x * wc.pow(2).mean() + self.blocks[0].norm1.eps)).reshape(-1)

    def first_layer(self) -> FirstLayer | None:
        """The first block's fc1(act(norm1(inp(x)))) for 1D data as a table (None if dim > 1).

        act(norm1(.)) = act(s c + b) with c = (w - mean w) * gamma and b = beta (see _first_s).
        Coordinate j is linear in s on either side of its kink z_j = -b_j / c_j, so between
        consecutive kinks act(s c + b) = s (m * c) + m * b, m holding 1 or the leaky slope per
        coordinate, and fc1 of it is s A[k] + B[k] with A = (m c) W^T, B = (m b) W^T: a row
        lookup replaces a width x width matrix product per row, with the same values up to
        float rounding. Kinks outside the range of s are dropped; each piece's m is read at a
        point inside it."""
        if self.dim != 1:
            return None
        blk, w = self.blocks[0], self.inp.weight[:, 0]
        wc = w - w.mean()
        c, b = wc * blk.norm1.weight, blk.norm1.bias
        bound = float(wc.detach().pow(2).mean().rsqrt())  # |s| < bound (inf if w is constant)
        cd, bd = c.detach(), b.detach()
        kinks = -bd[cd != 0] / cd[cd != 0]
        z = torch.sort(kinks[kinks.abs() < bound]).values
        if len(z):  # one point inside each piece (-bound, z_0), (z_0, z_1), ..., (z_last, bound)
            inside = torch.cat([(z[:1] - bound) / 2, (z[1:] + z[:-1]) / 2, (z[-1:] + bound) / 2])
        else:
            inside = torch.zeros(1, dtype=c.dtype, device=c.device)
        m = torch.where(inside[:, None] * cd + bd > 0, 1.0, blk.act.negative_slope).to(c.dtype)
        return FirstLayer(z, (m * c) @ blk.fc1.weight.t(), (m * b) @ blk.fc1.weight.t())

    @staticmethod
    def _first_u(first: FirstLayer, s: torch.Tensor, time_proj: torch.Tensor) -> torch.Tensor:
        """u = fc1(act(norm1(h))) + time_proj of the first block from the table: s A[k] + B[k]
        + time_proj, k the piece of each row's s. A one-row time_proj is added to the table."""
        k = torch.searchsorted(first.z, s)
        if time_proj.shape[0] == 1:
            base = (first.B + time_proj).index_select(0, k)
        else:
            base = first.B.index_select(0, k) + time_proj
        return torch.addcmul(base, s[:, None], first.A.index_select(0, k))

    def _output(self, h: torch.Tensor) -> torch.Tensor:
        """self.out(h); for 1D data its Linear, which has one output, as a matrix-vector product.
        (Folding the LayerNorm's scale and shift into the Linear would be slower: torch's CPU
        LayerNorm without them takes twice as long as with them.)"""
        if self.dim != 1 or h.ndim != 2:
            return self.out(h)
        norm, lin = self.out
        return torch.addmv(lin.bias, norm(h), lin.weight[0])[:, None]

    def forward_features(
        self, x: torch.Tensor, time_projs: list[torch.Tensor], first: FirstLayer | None = None,
    ) -> torch.Tensor:
        """The network on x given each block's time projection (from time_features). For 1D
        data the first block's fc1 comes from the table `first` (self.first_layer() if None)."""
        if self.dim == 1 and x.ndim == 2:
            h = x * self.inp.weight[:, 0]  # inp(x) as an outer product: no matrix product with one column
            u = self._first_u(first if first is not None else self.first_layer(), self._first_s(x), time_projs[0])
        else:
            h, u = self.inp(x), None
        for i, (blk, proj) in enumerate(zip(self.blocks, time_projs, strict=True)):
            h = blk(h, proj, u if i == 0 else None, consume_h=True)  # h is this loop's own
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
