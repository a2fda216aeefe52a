"""ToyMLP computed faster on a CPU: the same function as mi_lib.models.ToyMLP (tested equal
to it, values and gradients), which the sampler and the trainer use through two entries:
`eps_fn(model)` for sampling and `loss_backward(...)` for a ToyMLP's training step.

Three savings, none of which changes the mathematics:

* The network's time inputs repeat (one t for a sampler's whole batch, at most T distinct t in
  a training batch), so the time embedding and every block's time projection are computed
  once per distinct t and gathered (`time_features`).
* For 1D data the first block's fc1(act(norm1(inp(x)))) depends on one number per row and is
  piecewise linear in it, so it is read from a small table (`first_layer`) instead of a
  width x width matrix product per row.
* Batches pass through in slices of a few thousand rows, whose activations stay in the CPU's
  cache; additions are fused into the matrix products (addmm).

eps_fn calls any other network (the U-Net) as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mi_lib.checks import check_positive_int, check_rows, check_times
from mi_lib.diffusion import EpsFn, q_sample
from mi_lib.models import TemporalBlock, ToyMLP, timestep_embedding
from mi_lib.schedules import Schedule


class FirstLayer(NamedTuple):
    """fc1(act(norm1(x w))) of ToyMLP's first block for 1D data, as a function of the scalar
    s = x / sqrt(x^2 var(w) + eps) (`first_s`): on the k-th interval between the sorted kinks
    z it is s * A[k] + B[k]."""

    z: torch.Tensor  # (m,) kinks inside the range of s, sorted
    A: torch.Tensor  # (m + 1, width) slope of each piece
    B: torch.Tensor  # (m + 1, width) intercept of each piece


def time_table(model: ToyMLP, t: torch.Tensor) -> list[torch.Tensor]:
    """Each block's time projection blk.time(temb(t)), one row per entry of the 1D tensor t."""
    emb = model.temb(timestep_embedding(t, model.width))
    return [blk.time(emb) for blk in model.blocks]


def time_features(model: ToyMLP, t: torch.Tensor) -> list[torch.Tensor]:
    """time_table for the distinct values of t, gathered to t's rows; one t gives rows of one,
    which broadcast over the batch."""
    if t.numel() == 1:
        return time_table(model, t.reshape(-1))
    uniq, inverse = torch.unique(t, return_inverse=True)
    return [p.index_select(0, inverse) for p in time_table(model, uniq)]


def first_s(model: ToyMLP, x: torch.Tensor) -> torch.Tensor:
    """For 1D data each row of inp(x) is x w, so the first LayerNorm sees s (w - mean w) with
    s = x / sqrt(x^2 var(w) + eps): one number per row, ``|s| < 1 / sqrt(var w)``. Shape (N,)."""
    wc = model.inp.weight[:, 0] - model.inp.weight[:, 0].mean()
    return (x / torch.sqrt(x * x * wc.pow(2).mean() + model.blocks[0].norm1.eps)).reshape(-1)


def first_layer(model: ToyMLP) -> FirstLayer | None:
    """The first block's fc1(act(norm1(inp(x)))) for 1D data as a table (None if dim > 1).

    act(norm1(.)) = act(s c + b) with c = (w - mean w) * gamma and b = beta. Coordinate j is
    linear in s on either side of its kink z_j = -b_j / c_j, so between consecutive kinks
    act(s c + b) = s (m c) + m b, m holding 1 or the leaky slope per coordinate, and fc1 of it
    is s A[k] + B[k] with A = (m c) W^T, B = (m b) W^T. Kinks outside the range of s are
    dropped; each piece's m is read at a point inside it."""
    if model.dim != 1:
        return None
    blk, w = model.blocks[0], model.inp.weight[:, 0]
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


def first_u(first: FirstLayer, s: torch.Tensor, time_proj: torch.Tensor) -> torch.Tensor:
    """The first block's fc1(act(norm1(h))) + time_proj from the table: s A[k] + B[k] +
    time_proj, k the piece of each row's s. A one-row time_proj is added to the table."""
    k = torch.searchsorted(first.z, s)
    if time_proj.shape[0] == 1:
        base = (first.B + time_proj).index_select(0, k)
    else:
        base = first.B.index_select(0, k) + time_proj
    return torch.addcmul(base, s[:, None], first.A.index_select(0, k))


def _act(blk: TemporalBlock, h: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(h, blk.act.negative_slope, inplace=True)  # on a fresh LayerNorm output


def block(blk: TemporalBlock, h: torch.Tensor, time_proj: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
    """TemporalBlock.forward with its time projection given, the additions fused into addmm,
    and (u given) its first half from the table. Without autograd the skip adds into h."""
    if u is None:
        u = torch.addmm(time_proj, _act(blk, blk.norm1(h)), blk.fc1.weight.t())
    if not torch.is_grad_enabled():
        return h.addmm_(_act(blk, blk.norm2(u)), blk.fc2.weight.t())
    return torch.addmm(h, _act(blk, blk.norm2(u)), blk.fc2.weight.t())


def output(model: ToyMLP, h: torch.Tensor) -> torch.Tensor:
    """model.out(h); for 1D data its one-output Linear as a matrix-vector product."""
    if model.dim != 1:
        return model.out(h)
    norm, lin = model.out
    return torch.addmv(lin.bias, norm(h), lin.weight[0])[:, None]


def forward_features(
    model: ToyMLP, x: torch.Tensor, time_projs: list[torch.Tensor], first: FirstLayer | None = None,
) -> torch.Tensor:
    """The network on x (N, dim) given each block's time projection (from time_features); for
    1D data the first block's fc1 comes from the table `first` (first_layer(model) if None)."""
    if model.dim == 1:
        h = x * model.inp.weight[:, 0]  # inp(x) as an outer product
        u = first_u(first if first is not None else first_layer(model), first_s(model, x), time_projs[0])
    else:
        h, u = model.inp(x), None
    for i, (blk, proj) in enumerate(zip(model.blocks, time_projs, strict=True)):
        h = block(blk, h, proj, u if i == 0 else None)
    return output(model, h)


def forward(model: ToyMLP, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """model(x, t), computed the fast way."""
    check_rows("x", x, model.dim)
    return forward_features(model, x, time_features(model, check_times(t, x)))


def eps_fn(model: nn.Module, rows: int = 2_500) -> EpsFn:
    """The sampler's eps_fn for a network: eval mode, no autograd. A ToyMLP is computed the
    fast way, with its time features and first-layer table made once per call and the batch
    passed in slices of `rows` rows; any other network is called as it is."""
    check_positive_int("rows", rows)
    model.eval()

    def plain(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x, t)

    def toy(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            check_rows("x", x, model.dim)
            t = check_times(t, x)
            projs, first = time_features(model, t), first_layer(model)
            if t.numel() != 1 or len(x) <= rows:
                return forward_features(model, x, projs, first)
            return torch.cat([forward_features(model, x[i : i + rows], projs, first) for i in range(0, len(x), rows)])

    return toy if isinstance(model, ToyMLP) else plain


def backward_in_chunks(slice_loss: Callable[[slice], torch.Tensor], n: int, chunk: int) -> float:
    """Backpropagate slice_loss over slices of `chunk` of n rows, each weighted by its share of
    the n rows: the gradient of the mean over all n, up to float rounding. Returns that mean."""
    check_positive_int("chunk", chunk)
    total = 0.0
    for i in range(0, n, chunk):
        sl = slice(i, min(i + chunk, n))
        part = slice_loss(sl) * ((sl.stop - sl.start) / n)
        part.backward()
        total += float(part.detach())
    return total


def loss_backward(
    model: ToyMLP, x0: torch.Tensor, schedule: Schedule, t: torch.Tensor, eps: torch.Tensor,
    target: torch.Tensor, chunk: int,
) -> float:
    """mi_lib.training.eps_loss of a ToyMLP, backpropagated into its parameters in slices of
    `chunk` rows (backward_in_chunks); returns the loss. The batch's time projections and
    first-layer table are computed once; each slice back-propagates into detached copies of
    them, and one last backward pass carries their summed gradient into the weights."""
    uniq, inverse = torch.unique(schedule.timesteps.to(t.device)[t], return_inverse=True)
    table, first = time_table(model, uniq), first_layer(model)
    shared = [*table, *((first.A, first.B) if first is not None else ())]
    leaves = [p.detach().requires_grad_() for p in shared]
    n_time = len(table)
    first_leaves = first._replace(A=leaves[n_time], B=leaves[n_time + 1]) if first is not None else None

    def slice_loss(sl: slice) -> torch.Tensor:
        xt = q_sample(x0[sl], t[sl], schedule, eps[sl])
        projs = [leaf.index_select(0, inverse[sl]) for leaf in leaves[:n_time]]
        return torch.mean((forward_features(model, xt, projs, first_leaves) - target[sl]) ** 2)

    total = backward_in_chunks(slice_loss, len(x0), chunk)
    torch.autograd.backward(shared, [leaf.grad for leaf in leaves])
    return total
