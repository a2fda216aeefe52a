"""One training loop for every eps network: a generator that yields each step's loss.
How each step is computed (CPU fast path, or whole batches on a GPU) is mi_lib.compute's choice.

Randomness is a pure function of (seed, step): the shuffle of epoch e and the t and eps of
step s each come from a generator seeded afresh from them. So a run resumed from a
checkpoint takes exactly the steps the uninterrupted run would have taken.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from mi_lib import compute, cuda_graph
from mi_lib.checkpoints import load_checkpoint, save_checkpoint
from mi_lib.checks import check_choice, check_finite, check_positive, check_positive_int, check_seed
from mi_lib.diffusion import q_sample
from mi_lib.models import ToyMLP
from mi_lib.prediction import PREDICTIONS, training_target
from mi_lib.runtime import derived_seed, make_generator, progress_bar
from mi_lib.schedules import Schedule


class TrainStep(NamedTuple):
    """The step just taken (1-based) and its loss."""

    step: int
    loss: float


def eps_loss(
    model: nn.Module, x0: torch.Tensor, schedule: Schedule, t: torch.Tensor, eps: torch.Tensor,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """The DDPM objective: || eps - eps_theta(x_t, t) ||^2, averaged (Ho et al. 2020, Eq. 14).
    target: what the network should output instead of eps (v for a v network, see
    mi_lib.prediction); x_t is drawn with eps either way."""
    xt = q_sample(x0, t, schedule, eps)
    return torch.mean((model(xt, schedule.timesteps.to(t.device)[t]) - (eps if target is None else target)) ** 2)


def step_generator(seed: int, stream: int, index: int, device: torch.device) -> torch.Generator:
    """The generator of one epoch's shuffle (stream 0) or one step's t and eps (stream 1)."""
    return make_generator(derived_seed(seed, stream * 7_919_993 + index), device)


def batches(x0: torch.Tensor, batch_size: int, seed: int, start: int = 0) -> Iterator[torch.Tensor]:
    """The batches of steps start, start + 1, ...: each epoch visits x0 once in a fresh order
    (shuffled by step_generator(seed, 0, epoch)), the last batch of an epoch may be smaller."""
    n = len(x0)
    per_epoch = -(-n // batch_size)
    step, perm = start, None
    while True:
        if perm is None or step % per_epoch == 0:
            perm = torch.randperm(n, generator=step_generator(seed, 0, step // per_epoch, x0.device), device=x0.device)
        i = (step % per_epoch) * batch_size
        yield x0[perm[i : i + batch_size]]
        step += 1


def draw_t_eps(x0: torch.Tensor, T: int, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's t ~ U{0, ..., T-1} per row and eps ~ N(0, I) of x0's shape (Ho et al. 2020, Alg. 1)."""
    g = step_generator(seed, 1, step, x0.device)
    t = torch.randint(0, T, (len(x0),), generator=g, device=x0.device)
    return t, torch.randn(x0.shape, generator=g, device=x0.device, dtype=x0.dtype)


def resume(checkpoint: str | Path | None, model: nn.Module, opt: torch.optim.Optimizer, ema: nn.Module | None) -> int:
    """Restore model, optimiser and EMA from `checkpoint` if the file exists; the steps done."""
    if checkpoint is None or not Path(checkpoint).is_file():
        return 0
    state = load_checkpoint(checkpoint, map_location=next(model.parameters()).device)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    return int(state["step"])


def save(checkpoint: str | Path, model: nn.Module, opt: torch.optim.Optimizer, ema: nn.Module | None,
         done: int) -> None:
    """Write model, optimiser, EMA and the steps done to `checkpoint` (atomically)."""
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": done}
    save_checkpoint(checkpoint, state | ({"ema": ema.state_dict()} if ema is not None else {}))


def mean_last(losses: Sequence[float], k: int = 100) -> float:
    """The mean of the last k losses (all of them if fewer): a run's final loss, less noisy than one step's."""
    tail = list(losses[-k:])
    if not tail:
        raise ValueError("losses must hold at least one loss, got none")
    return sum(tail) / len(tail)


def _check_train_args(model: nn.Module, x0: torch.Tensor, steps: int, batch_size: int, lr: float, seed: int,
                      save_every: int, ema_decay: float, prediction: str) -> None:
    check_choice("prediction", prediction, PREDICTIONS)
    for name, value in (("steps", steps), ("batch_size", batch_size), ("save_every", save_every)):
        check_positive_int(name, value)
    check_positive("lr", lr)
    check_seed(seed)
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay!r}")
    if x0.ndim < 2 or x0.shape[0] == 0:
        raise ValueError(f"x0 must have shape (N, ...) with N >= 1, got {tuple(x0.shape)}")
    if isinstance(model, ToyMLP) and x0.shape[1:] != (model.dim,):
        raise ValueError(f"x0 must have shape (N, {model.dim}) for a model of dim {model.dim}, got {tuple(x0.shape)}")
    check_finite("x0", x0)


def train(
    model: nn.Module, x0: torch.Tensor, schedule: Schedule, steps: int, batch_size: int, *,
    lr: float = 1e-3, seed: int = 0, checkpoint: str | Path | None = None, save_every: int = 1000,
    progress: bool = True, chunk: int | None = None, ema: nn.Module | None = None, ema_decay: float = 0.999,
    prediction: str = "eps", autocast: str | None = None, graphs: bool | None = None,
) -> Iterator[TrainStep]:
    """Train `model` to predict eps (or v: `prediction`) on data x0 (N, ...) with Adam (betas
    0.9, 0.999), no warm-up or clipping (the paper's toy set-up, Sec. 4); yields
    TrainStep(step, loss) after each step. Batches: see `batches`; t and eps: `draw_t_eps`.

    checkpoint: a file to resume from if it exists (`resume`), saved every save_every steps
    and at the end. chunk: rows per forward/backward pass on a CPU (`compute.loss_backward`;
    None picks 2,500); a GPU takes whole batches. ema: a copy of `model` that holds the moving
    average of its weights (`compute.ema_update`, decay ema_decay), saved with it; the toy
    models use none. autocast: 'bfloat16' runs the forward pass under bf16 autocast on a GPU.
    graphs: replay each step as a CUDA graph (`compute.use_graphs`: by default on a CUDA device
    without autocast); the same steps, fewer launches.

    On a GPU no step waits for the device: the losses are read every compute.READ_EVERY steps
    and at each checkpoint, and the steps in between are yielded then, together. A loop that
    stops early should stop at a step that is a multiple of READ_EVERY (the model has then
    taken exactly the steps yielded).
    """
    _check_train_args(model, x0, steps, batch_size, lr, seed, save_every, ema_decay, prediction)
    compute.check_autocast(autocast)
    device = next(model.parameters()).device
    chunk = chunk if chunk is not None else (2_500 if device.type == "cpu" else batch_size)
    check_positive_int("chunk", chunk)
    graphed = compute.use_graphs(device, graphs, autocast)
    schedule = schedule.to(device)
    opt = compute.adam(model, lr, capturable=graphed)
    start = resume(checkpoint, model, opt, ema)
    step_fn = cuda_graph.GraphedStep(model, opt, schedule, ema, ema_decay) if graphed else None
    model.train()
    bar = progress_bar(range(start, steps), desc="training", initial=start, total=steps, progress=progress)
    data = batches(x0.to(device), min(batch_size, len(x0)), seed, start)
    pending: list[tuple[int, float | torch.Tensor]] = []
    for step in bar:
        batch = next(data)
        t, eps = draw_t_eps(batch, schedule.T, seed, step)
        target = training_target(prediction, batch, t, schedule, eps)
        if step_fn is not None:
            loss = step_fn(batch, t, eps, target)
        else:
            opt.zero_grad(set_to_none=True)
            loss = compute.loss_backward(model, batch, schedule, t, eps, target, chunk, autocast)
            opt.step()
            if ema is not None:
                compute.ema_update(ema, model, ema_decay)
        saving = checkpoint is not None and ((step + 1) % save_every == 0 or step + 1 == steps)
        if saving:
            save(checkpoint, model, opt, ema, step + 1)
        pending.append((step + 1, loss))
        if isinstance(loss, float) or saving or (step + 1) % compute.READ_EVERY == 0 or step + 1 == steps:
            yield from _read(pending, bar)
            pending = []
    model.eval()


def _read(pending: list[tuple[int, float | torch.Tensor]], bar) -> Iterator[TrainStep]:
    """The pending steps as TrainSteps, their device losses read in one transfer."""
    losses = [loss for _, loss in pending]
    if losses and isinstance(losses[0], torch.Tensor):
        losses = torch.stack(losses).tolist()
    for (step, _), loss in zip(pending, losses, strict=True):
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")
        yield TrainStep(step, loss)
