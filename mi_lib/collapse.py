"""Recursive training and model collapse, with and without pre-emptive filtering by Hal
(paper Sec. 6, Fig. 8, 9, 16).

Generation 0 trains a fresh model on the real data. Every generation g then draws n_draw
samples from its model, a filter (mi_lib.collapse_filters: 'hal', 'random' or 'none') keeps
n_keep of them, and generation g + 1 trains a fresh model on those alone. The paper draws
2.5% more than it keeps on the 2D grid and 65k for 60k on MNIST (`PAPER_DRAW_RATIOS`).

`recursive_training` is a generator that yields one `Generation` record per generation. With
a work_dir, each finished generation (its model, kept data and metrics) is saved atomically,
and a run started again with the same arguments continues after the last finished
generation, giving exactly what the uninterrupted run gives. What a generation is measured by
is in mi_lib.collapse_metrics (and mi_lib.digits for images).
"""

from __future__ import annotations

import hashlib
import numbers
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from mi_lib.checkpoints import load_checkpoint, save_checkpoint
from mi_lib.checks import check_choice, check_positive, check_positive_int, check_seed
from mi_lib.collapse_filters import FILTERS, KeepFn, keep_all, keep_lowest_hal, keep_random, select
from mi_lib.collapse_metrics import MetricsFn
from mi_lib.hal import sample_with_hal
from mi_lib.learned import model_eps_fn
from mi_lib.runtime import derived_seed, make_generator, progress_bar
from mi_lib.schedules import Schedule
from mi_lib.training import mean_last, train

__all__ = [  # the filters are imported from here by the chapters
    "Generation", "PAPER_DRAW_RATIOS", "ddpm_sample_fn", "ddpm_train_fn", "generation_model", "generation_path",
    "generation_seed", "keep_all", "keep_lowest_hal", "keep_random", "load_generation", "recursive_training", "select",
]

TrainFn = Callable[[nn.Module, torch.Tensor, int], "dict | None"]
SampleFn = Callable[[nn.Module, int, int], "tuple[torch.Tensor, torch.Tensor | None]"]

#: n_draw / n_keep in the paper: 102.5k drawn for 100k kept on the 2D grid, 65k for 60k on MNIST.
PAPER_DRAW_RATIOS = {"2d_grid": 102_500 / 100_000, "mnist": 65_000 / 60_000}


# --- the recursive-training loop ---------------------------------------------------------------


class Generation(NamedTuple):
    """One generation: its index g (0 trains on the real data), its trained model, the n_keep
    samples it passes on (shuffled; generation g + 1 trains on them), its metrics and the
    seconds it took (when it ran, also for a record loaded on resume).

    metrics: 'drawn_<name>' and 'kept_<name>' for each entry of metrics_fn on the drawn and on
    the kept samples; 'train_<name>' for what train_fn returned; 'hal_drawn_mean' and
    'hal_kept_mean' when sample_fn gives Hal; 'n_draw', 'n_keep'."""

    generation: int
    model: nn.Module
    kept: torch.Tensor
    metrics: dict
    seconds: float
    resumed: bool


def generation_seed(seed: int, generation: int, stream: int = 0) -> int:
    """A seed for one purpose (`stream`) in one generation: a pure function of the three, so
    that a resumed run draws what the uninterrupted one drew."""
    return derived_seed(seed, generation * 7_919 + stream * 104_729)


def _plain_metrics(values: object, where: str) -> dict:
    """A metrics dict with plain int or float values (what a weights_only checkpoint holds)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{where} must return a dict of numbers or None, got {type(values).__name__}")
    out = {}
    for key, v in values.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, bool | np.bool_) or isinstance(v, numbers.Integral):
            out[str(key)] = int(v)
        elif isinstance(v, numbers.Real):
            out[str(key)] = float(v)
        else:
            raise ValueError(f"{where} must return numbers, got {key!r}: {v!r}")
    return out


def _fingerprint(data: torch.Tensor, filter: str | KeepFn, n_keep: int, n_draw: int, seed: int) -> dict:
    """What a work_dir was made with: a resumed run must match it."""
    digest = hashlib.sha256(data.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    name = filter if isinstance(filter, str) else getattr(filter, "__name__", repr(filter))
    return {"data_sha256": digest, "data_shape": list(data.shape), "filter": name, "n_keep": n_keep,
            "n_draw": n_draw, "seed": seed}


def generation_path(work_dir: str | Path, generation: int) -> Path:
    """The file that holds a finished generation in work_dir."""
    return Path(work_dir) / f"generation_{generation:03d}.pt"


def generation_model(make_model: Callable[[], nn.Module], seed: int, generation: int) -> nn.Module:
    """make_model() with the CPU's global generator seeded for this generation, so the fresh
    weights are the same on every run, whatever ran before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(generation_seed(seed, generation, 0))
        model = make_model()
    if not isinstance(model, nn.Module):
        raise ValueError(f"make_model must return a torch.nn.Module, got {type(model).__name__}")
    return model


def _check_run_args(
    data: torch.Tensor, fns: dict, generations: int, n_keep: int, n_draw: int | None, filter: str | KeepFn,
    seed: int, work_dir: str | Path | None,
) -> int:
    """Every argument of recursive_training checked before any work; returns n_draw."""
    if not isinstance(data, torch.Tensor) or data.ndim < 2 or data.shape[0] == 0:
        raise ValueError(f"data must be a tensor of shape (N, ...) with N >= 1, got {getattr(data, 'shape', data)!r}")
    for name, fn in fns.items():
        if not (callable(fn) or (name == "metrics_fn" and fn is None)):
            raise ValueError(f"{name} must be callable, got {fn!r}")
    for name, value in (("generations", generations), ("n_keep", n_keep)):
        check_positive_int(name, value)
    check_seed(seed)
    if not callable(filter):
        check_choice("filter", filter, FILTERS)
    if filter == "none":
        if n_draw not in (None, n_keep):
            raise ValueError(f"n_draw must equal n_keep = {n_keep} (or be None) for filter 'none', got {n_draw!r}")
        n_draw = n_keep
    elif n_draw is None:
        raise ValueError(f"n_draw must be given, larger than n_keep = {n_keep}, for filter {filter!r}, got None")
    check_positive_int("n_draw", n_draw)
    if filter in ("random", "hal") and n_draw <= n_keep:
        raise ValueError(
            f"n_draw must be larger than n_keep = {n_keep} for filter {filter!r} (at n_draw = n_keep every "
            f"sample is kept: that is filter 'none'), got {n_draw!r}"
        )
    if n_draw < n_keep:
        raise ValueError(f"n_draw must be at least n_keep = {n_keep}, got {n_draw!r}")
    if work_dir is not None and Path(work_dir).exists() and not Path(work_dir).is_dir():
        raise ValueError(f"work_dir must be a directory (or not exist yet), got the file {str(work_dir)!r}")
    return n_draw


def _load_finished(
    work_dir: Path, fingerprint: dict, make_model: Callable[[], nn.Module], seed: int, generations: int
) -> list[Generation]:
    """The finished generations 0, 1, ... saved in work_dir (stops at the first missing one)."""
    out = []
    for g in range(generations):
        path = generation_path(work_dir, g)
        if not path.is_file():
            break
        state = load_checkpoint(path)
        if state["fingerprint"] != fingerprint:
            raise ValueError(
                f"work_dir {str(work_dir)!r} holds a run made with other arguments ({state['fingerprint']}); "
                f"got {fingerprint}: use a fresh work_dir"
            )
        model = generation_model(make_model, seed, g)
        model.load_state_dict(state["model"])
        model.eval()
        out.append(Generation(g, model, state["kept"], dict(state["metrics"]), float(state["seconds"]), True))
    return out


def recursive_training(
    data: torch.Tensor, make_model: Callable[[], nn.Module], train_fn: TrainFn, sample_fn: SampleFn,
    metrics_fn: MetricsFn | None, generations: int, n_keep: int, n_draw: int | None = None,
    filter: str | KeepFn = "random", seed: int = 0, work_dir: str | Path | None = None, progress: bool = True,
) -> Iterator[Generation]:
    """Train `generations` generations recursively (paper Sec. 6) and yield each one's record.

    Generation g: model = make_model() (the CPU generator seeded from (seed, g), so the fresh
    weights repeat); train_fn(model, data_g, g), where data_0 = data; samples, hal =
    sample_fn(model, n_draw, g) (hal may be None unless filter is 'hal'); the filter keeps
    n_keep of them and a generator seeded from (seed, g) shuffles what it kept: that is
    data_{g+1}. metrics_fn(samples) -> dict of numbers runs on the drawn and on the kept
    samples (see Generation). train_fn and sample_fn must draw their randomness from seeds
    that depend on the generation only (`ddpm_train_fn`, `ddpm_sample_fn` do).

    filter: 'none' (n_draw = n_keep), 'random' or 'hal' (both need n_draw > n_keep), or a
    function keep(samples, hal, n_keep, generator) -> indices.

    Every argument is checked when the function is called (a ValueError names the parameter,
    the value and what is allowed), before any training; the records come as the returned
    iterator is consumed.

    work_dir: where each finished generation is saved (generation_path; model weights, kept
    data, metrics; atomically). Started again with the same arguments, the run loads and yields
    the finished generations (resumed=True) and continues after the last one; a larger
    `generations` extends a finished run. None: nothing is saved.
    """
    fns = {"make_model": make_model, "train_fn": train_fn, "sample_fn": sample_fn, "metrics_fn": metrics_fn}
    n_draw = _check_run_args(data, fns, generations, n_keep, n_draw, filter, seed, work_dir)
    fingerprint = _fingerprint(data, filter, n_keep, n_draw, seed)
    done = _load_finished(Path(work_dir), fingerprint, make_model, seed, generations) if work_dir else []
    run = (make_model, train_fn, sample_fn, metrics_fn, n_keep, n_draw, filter, seed)
    return _generations(data, done, run, generations, fingerprint, work_dir, progress)


def _generations(
    data: torch.Tensor, done: list[Generation], run: tuple, generations: int, fingerprint: dict,
    work_dir: str | Path | None, progress: bool,
) -> Iterator[Generation]:
    """recursive_training's loop, once its arguments are checked (they are checked on the call,
    not on the first next())."""
    label = run[6] if isinstance(run[6], str) else "custom"
    bar = progress_bar(total=generations, initial=len(done), desc=f"generations ({label})", progress=progress)
    try:
        yield from done
        current = done[-1].kept if done else data
        for g in range(len(done), generations):
            record = _run_generation(g, current, *run)
            if work_dir is not None:
                save_checkpoint(generation_path(work_dir, g), {
                    "fingerprint": fingerprint, "generation": g, "model": record.model.state_dict(),
                    "kept": record.kept, "metrics": record.metrics, "seconds": record.seconds})
            bar.update(1)
            yield record
            current = record.kept
    finally:
        bar.close()


def _run_generation(
    g: int, data: torch.Tensor, make_model: Callable[[], nn.Module], train_fn: TrainFn, sample_fn: SampleFn,
    metrics_fn: MetricsFn | None, n_keep: int, n_draw: int, filter: str | KeepFn, seed: int,
) -> Generation:
    """Train generation g on `data`, draw from it, filter and shuffle, and measure."""
    start = time.time()
    model = generation_model(make_model, seed, g)
    metrics = {f"train_{k}": v for k, v in _plain_metrics(train_fn(model, data, g), "train_fn").items()}
    model.eval()
    samples, hal = _checked_samples(sample_fn(model, n_draw, g), n_draw)
    kept, idx = select(samples, hal, n_keep, filter, make_generator(generation_seed(seed, g, 1)))
    kept = kept.detach().cpu()
    if metrics_fn is not None:
        for prefix, x in (("drawn", samples), ("kept", kept)):
            metrics |= {f"{prefix}_{k}": v for k, v in _plain_metrics(metrics_fn(x), "metrics_fn").items()}
    if hal is not None:
        metrics |= {"hal_drawn_mean": float(hal.double().mean()), "hal_kept_mean": float(hal[idx].double().mean())}
    metrics |= {"n_draw": n_draw, "n_keep": n_keep}
    return Generation(g, model, kept, metrics, time.time() - start, False)


def _checked_samples(out: object, n_draw: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], torch.Tensor)):
        raise ValueError(f"sample_fn must return (samples, hal or None), got {type(out).__name__}")
    samples, hal = out
    if samples.shape[0] != n_draw:
        raise ValueError(f"sample_fn must return n_draw = {n_draw} samples, got {samples.shape[0]}")
    if hal is not None and (not isinstance(hal, torch.Tensor) or hal.shape != (n_draw,)):
        raise ValueError(f"sample_fn's hal must have shape ({n_draw},) or be None, got {getattr(hal, 'shape', hal)!r}")
    return samples, (hal.detach().cpu() if hal is not None else None)


def load_generation(work_dir: str | Path, generation: int, make_model: Callable[[], nn.Module]) -> Generation:
    """One finished generation from work_dir: its model (from make_model(), eval mode), kept
    data and metrics."""
    path = generation_path(work_dir, generation)
    if not path.is_file():
        raise ValueError(f"generation must be a finished generation in {str(work_dir)!r}, got {generation!r}")
    state = load_checkpoint(path)
    model = make_model()
    model.load_state_dict(state["model"])
    model.eval()
    return Generation(generation, model, state["kept"], dict(state["metrics"]), float(state["seconds"]), True)


def ddpm_train_fn(
    schedule: Schedule, steps: int, batch_size: int, lr: float = 1e-3, seed: int = 0, progress: bool = True,
) -> TrainFn:
    """A train_fn for any eps network: mi_lib's `train` (Adam, the paper's toy set-up) for
    `steps` steps, seeded per generation. It returns {'loss': the mean of the last 100 losses}."""
    check_positive_int("steps", steps)
    check_positive_int("batch_size", batch_size)
    check_positive("lr", lr)

    def train_fn(model: nn.Module, data: torch.Tensor, generation: int) -> dict:
        losses = [s.loss for s in train(model, data, schedule, steps, batch_size, lr=lr,
                                        seed=generation_seed(seed, generation, 2), progress=progress)]
        return {"loss": mean_last(losses)}

    return train_fn


def ddpm_sample_fn(
    schedule: Schedule, shape: int | tuple[int, ...], window: tuple[int, int], seed: int = 0, chunk: int = 2_000,
    progress: bool = True,
) -> SampleFn:
    """A sample_fn for any eps network: ancestral sampling with Hal over `window` accumulated on
    the way (`sample_with_hal`), seeded per generation, on the model's device. shape is one
    sample's: an int for vectors, (C, H, W) for images."""
    check_positive_int("chunk", chunk)

    def sample_fn(model: nn.Module, n: int, generation: int) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(model.parameters()).device
        return sample_with_hal(model_eps_fn(model), n, shape, schedule, generation_seed(seed, generation, 3),
                               window, chunk=chunk, device=device, progress=progress)

    return sample_fn
