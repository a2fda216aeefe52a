"""How a network is computed, chosen in one place by the device its weights are on.

On a CPU the paper's network goes through mi_lib.fast (time tables, cache-sized slices,
first-layer table); those tricks need host reads and many small operations, which on a GPU
are each a kernel launch or a wait. On any other device:

* sampling calls the network plainly on the whole chunk; for the toy MLP the time embedding
  of the step's one t is computed once and broadcast over the rows (`toy_one_t`);
* training runs one forward and backward pass over the whole batch and keeps the loss on the
  device (`loss_backward` returns a tensor; `mi_lib.training.train` reads the losses every
  READ_EVERY steps, in one transfer);
* Adam is fused and the EMA is one foreach operation over all weights; on a CUDA device the
  whole step is captured once and replayed as a CUDA graph (mi_lib.cuda_graph);
* an image network may run under bf16 autocast (`autocast`), which the builds record.

Every function here leaves the CPU path as it was: the same operations, the same numbers.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from mi_lib import fast
from mi_lib.checks import check_choice, check_positive_int, check_rows, check_times
from mi_lib.diffusion import EpsFn, q_sample
from mi_lib.models import ToyMLP
from mi_lib.schedules import Schedule

READ_EVERY = 50  # training steps between two reads of the device's losses
AUTOCASTS = (None, "bfloat16")


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def on_cpu(device: torch.device | str) -> bool:
    return torch.device(device).type == "cpu"


def check_autocast(dtype: object) -> None:
    check_choice("autocast", dtype, AUTOCASTS)


def autocast(device: torch.device | str, dtype: str | None) -> AbstractContextManager:
    """bf16 autocast on a GPU when dtype is 'bfloat16'; nothing on a CPU or for dtype None."""
    check_autocast(dtype)
    device = torch.device(device)
    if dtype is None or on_cpu(device):
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def toy_one_t(model: ToyMLP, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """model(x, t) for one t shared by all rows: the time embedding and each block's time
    projection computed for that t once, and added to every row (the same function)."""
    projs = fast.time_table(model, t.reshape(-1))
    h = model.inp(x)
    for blk, proj in zip(model.blocks, projs, strict=True):
        h = fast.block(blk, h, proj, None)
    return model.out(h)


def eps_fn(model: nn.Module, rows: int = 2_500, dtype: str | None = None) -> EpsFn:
    """The sampler's eps_fn for a network, in eval mode without autograd: on a CPU mi_lib.fast
    (a ToyMLP in slices of `rows` rows), elsewhere `device_eps_fn` (under autocast(dtype))."""
    check_positive_int("rows", rows)
    if on_cpu(device_of(model)):
        check_autocast(dtype)
        return fast.eps_fn(model, rows)
    return device_eps_fn(model, dtype)


def device_eps_fn(model: nn.Module, dtype: str | None = None) -> EpsFn:
    """The GPU's eps_fn (on any device): the whole chunk in one call; a ToyMLP's time features
    computed once per step (`toy_one_t`); other networks under `autocast(dtype)`, with the
    output in float32."""
    check_autocast(dtype)
    device = device_of(model)
    model.eval()

    def toy(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            check_rows("x", x, model.dim)
            t = check_times(t, x)
            return toy_one_t(model, x, t) if t.numel() == 1 else model(x, t)

    def plain(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(device, dtype):
            return model(x, t).float()

    return toy if isinstance(model, ToyMLP) else plain


def loss_backward(
    model: nn.Module, x0: torch.Tensor, schedule: Schedule, t: torch.Tensor, eps: torch.Tensor,
    target: torch.Tensor, chunk: int, dtype: str | None = None,
) -> float | torch.Tensor:
    """The DDPM loss mean ||target - net(x_t, t)||^2, backpropagated into the model's weights.
    On a CPU: in slices of `chunk` rows (mi_lib.fast), returned as a float. Elsewhere: the
    whole batch at once (under `autocast(dtype)`), returned as a 0-dim device tensor, so that
    the step waits for nothing. `schedule` lives on the batch's device (Schedule.to)."""
    if on_cpu(x0.device):
        if isinstance(model, ToyMLP):
            return fast.loss_backward(model, x0, schedule, t, eps, target, chunk)
        from mi_lib.training import eps_loss

        return fast.backward_in_chunks(lambda sl: eps_loss(model, x0[sl], schedule, t[sl], eps[sl], target[sl]),
                                       len(x0), chunk)
    xt = q_sample(x0, t, schedule, eps)
    with autocast(x0.device, dtype):
        out = model(xt, schedule.timesteps[t])
    loss = torch.mean((out.float() - target) ** 2)
    loss.backward()
    return loss.detach()


def adam(model: nn.Module, lr: float, capturable: bool = False) -> torch.optim.Adam:
    """Adam (betas 0.9, 0.999) over the model's weights; fused into one kernel off the CPU.
    capturable: its step count lives on the device, so that a CUDA graph can hold its step
    (mi_lib.cuda_graph); the arithmetic is the same."""
    fused = {} if on_cpu(device_of(model)) else {"fused": True, "capturable": capturable}
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), **fused)


def use_graphs(device: torch.device | str, graphs: bool | None, dtype: str | None) -> bool:
    """Whether training replays its step as a CUDA graph: `graphs`, or by default on a CUDA
    device when no autocast is asked for. A CUDA graph off a CUDA device is a ValueError."""
    device = torch.device(device)
    if graphs is None:
        return device.type == "cuda" and dtype is None
    if not isinstance(graphs, bool):
        raise ValueError(f"graphs must be True, False or None, got {graphs!r}")
    if graphs and device.type != "cuda":
        raise ValueError(f"graphs=True needs a model on a CUDA device, got {device}")
    return graphs


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model: parameter by parameter on a CPU, one foreach
    lerp over all of them elsewhere; buffers copied."""
    pairs = list(zip(ema.parameters(), model.parameters(), strict=True))
    if on_cpu(device_of(model)):
        for e, p in pairs:
            e.lerp_(p, 1.0 - decay)
    elif pairs:
        torch._foreach_lerp_([e for e, _ in pairs], [p for _, p in pairs], 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)
