"""What a trained eps network implies: its score and x0 prediction at any step (paper
Sec. 4.3, Fig. 4), and seeded sample banks drawn from it with the ancestral sampler."""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import nn

from mi_lib.checks import check_positive_int, check_t_in_schedule, check_window
from mi_lib.diffusion import EpsFn, ddpm_sample, x0_hat_from_eps
from mi_lib.metrics import WindowVariance
from mi_lib.models import FirstLayer
from mi_lib.runtime import make_generator, progress_bar
from mi_lib.schedules import Schedule


def model_eps_fn(model: nn.Module, rows: int = 2_500) -> EpsFn:
    """The sampler's eps_fn for a network: eval mode, no autograd bookkeeping.

    A network with time_features, first_layer and forward_features (ToyMLP) has its time
    features computed once per call and its batch passed through in slices of `rows` rows,
    whose activations stay in the CPU's cache; rows are independent, so this is the same
    function. The first-layer table depends on the weights alone, so it is kept between calls
    while they stay as they are: any change to a weight (an optimiser step, load_state_dict, a
    new tensor) makes a new one. (Keeping each t's time features too saves little, and small
    tensors kept between the large passing ones fragment the heap: 1.5 MB more per step.)"""
    check_positive_int("rows", rows)
    model.eval()
    sliced = all(hasattr(model, a) for a in ("time_features", "first_layer", "forward_features"))
    kept: dict = {}

    def first_layer() -> FirstLayer | None:
        weights = tuple((id(p), p.data_ptr(), p._version) for p in model.parameters())
        if kept.get("weights") != weights:
            kept.update(weights=weights, first=model.first_layer())
        return kept["first"]

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            t = torch.as_tensor(t, device=x.device)
            if not sliced or t.numel() != 1:
                return model(x, t)
            projs, first = model.time_features(t), first_layer()
            if len(x) <= rows:
                return model.forward_features(x, projs, first)
            return torch.cat([model.forward_features(x[i : i + rows], projs, first) for i in range(0, len(x), rows)])

    return eps_fn


def learned_eps(model: nn.Module, x: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
    """eps_theta(x, t) at step t of the schedule, for a batch x (N, d)."""
    check_t_in_schedule(t, schedule.T)
    device = next(model.parameters()).device
    return model_eps_fn(model)(x.to(device), schedule.timesteps[t].to(device)).cpu()


def learned_score(model: nn.Module, x: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
    """The score the network implies: -eps_theta(x, t) / sqrt(1 - alpha_bar_t) (paper Sec. 4.3)."""
    return -learned_eps(model, x, t, schedule) / float(schedule.sqrt_one_minus_alpha_bar[t])


def learned_x0_hat(model: nn.Module, x: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
    """The network's prediction of the clean sample from x_t = x (paper Sec. 5)."""
    return x0_hat_from_eps(x, t, learned_eps(model, x, t, schedule), schedule)


def chunk_generator(seed: int, chunk: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator for chunk `chunk` of a sample bank: a pure function of (seed, chunk), so
    any chunk can be redrawn alone."""
    return make_generator((seed * 1_000_003 + chunk) % 2**62, device)


def draw_chunks(
    eps_fn: EpsFn, n: int, dim: int | tuple[int, ...], schedule: Schedule, seed: int, chunk: int,
    device: torch.device | str, progress: bool, first_chunk: int, windows: list[tuple[int, int]],
    variance: str = "fixed_large", clip_x0: float | None = None, keep_steps: Collection[int] = (),
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
    """The sampling loop behind sample_bank, sample_with_hal,
    mi_lib.detection.sample_with_window_hals and mi_lib.artifacts.shapes.redraw_chunk: n samples
    drawn in chunks, chunk i with chunk_generator(seed, i), and for each window of `windows` the
    samples' Hal (one WindowVariance per window, so memory does not grow with T). Windows are
    checked by the callers; an empty list records no Hal. keep_steps: the steps whose x0_hat to
    return, stacked from the noisiest step down, ``(len(keep_steps), n, *dim)``; None when empty."""
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    for name, value in (("n", n), ("chunk", chunk), *((f"dim[{i}]", d) for i, d in enumerate(dims))):
        check_positive_int(name, value)
    sizes = [min(chunk, n - i) for i in range(0, n, chunk)]
    bar = progress_bar(total=len(sizes) * schedule.T, desc="sampling", progress=progress, mininterval=1.0)
    out, hals, kept = [], [[] for _ in windows], []
    for i, size in enumerate(sizes, start=first_chunk):
        accs = [WindowVariance(*w) for w in windows]
        x, chunk_kept = None, []
        gen = chunk_generator(seed, i, device)
        for step in ddpm_sample(eps_fn, (size, *dims), schedule, gen, variance, progress=False, clip_x0=clip_x0):
            for acc in accs:
                acc.update(step.t, step.x0_hat)
            if step.t in keep_steps:
                chunk_kept.append(step.x0_hat.cpu())
            x = step.x_prev
            bar.update(1)
        out.append(x.cpu())
        for h, acc in zip(hals, accs, strict=True):
            h.append(acc.hal().cpu())
        if chunk_kept:
            kept.append(torch.stack(chunk_kept))
    bar.close()
    return torch.cat(out), [torch.cat(h) for h in hals], torch.cat(kept, dim=1) if kept else None


def sample_bank(
    eps_fn: EpsFn, n: int, dim: int | tuple[int, ...], schedule: Schedule, seed: int, chunk: int = 2_000,
    device: torch.device | str = "cpu", progress: bool = True, first_chunk: int = 0,
    variance: str = "fixed_large", clip_x0: float | None = None,
) -> torch.Tensor:
    """n samples ``(n, *dim)`` from ancestral DDPM sampling (fixed-large variance by default, as
    the paper's toy code), drawn in chunks of `chunk` rows, chunk i with
    chunk_generator(seed, i). Chunks of a few thousand rows keep the activations in cache,
    which is faster on a CPU than one big batch. first_chunk skips that many chunks, to redraw
    part of a bank. dim is an int for vectors or a tuple such as (1, 64, 64) for images;
    variance and clip_x0 are passed to ddpm_sample."""
    return draw_chunks(eps_fn, n, dim, schedule, seed, chunk, device, progress, first_chunk, [], variance,
                       clip_x0)[0]


def sample_with_hal(
    eps_fn: EpsFn, n: int, dim: int | tuple[int, ...], schedule: Schedule, seed: int, window: tuple[int, int],
    chunk: int = 2_000, device: torch.device | str = "cpu", progress: bool = True, first_chunk: int = 0,
    variance: str = "fixed_large", clip_x0: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same samples as sample_bank with the same arguments, and each one's Hal over the
    window of steps (t_lo, t_hi) (indices into the schedule's steps; paper Sec. 5),
    accumulated on the fly: the memory it needs does not grow with T or with the window."""
    check_window(*window, schedule)  # a bad window fails here, before any sampling
    x, (hal,), _ = draw_chunks(eps_fn, n, dim, schedule, seed, chunk, device, progress, first_chunk, [window],
                            variance, clip_x0)
    return x, hal
