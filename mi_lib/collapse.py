"""Recursive training and model collapse, with and without pre-emptive filtering by Hal
(paper Sec. 6, Fig. 8, 9, 16).

Generation 0 trains a fresh model on the real data. Every generation g then draws n_draw
samples from its model, a filter keeps n_keep of them, and generation g + 1 trains a fresh
model on those alone. The filters:

- ``"hal"``: keep the n_keep samples with the lowest Hal (the paper's pre-emptive filter);
- ``"random"``: keep a random n_keep of the n_draw, the paper's baseline at the same ratio
  n_draw / n_keep (the same sampling cost, no selection);
- ``"none"``: n_draw = n_keep, every sample is kept.

The samples of a generation are independent draws, so a random subset of them has the same
law as a smaller draw: "random" and "none" are statistically the same thing, and "random"
exists only so that the comparison with "hal" spends the same samples. The paper draws 2.5%
more than it keeps on the 2D grid (102.5k for 100k, `PAPER_DRAW_RATIOS`) and 65k for 60k on
MNIST. Unlike the authors' code, the kept samples are shuffled with a seeded generator before
they become training data (theirs stay sorted by Hal), and everything is seeded.

`recursive_training` is a generator that yields one `Generation` record per generation, so a
chapter can watch the run. With a work_dir, each finished generation (its model, kept data and
metrics) is saved atomically in one file; a run that is interrupted and started again with
the same arguments continues after the last finished generation and gives exactly what the
uninterrupted run gives.

Metrics: the hallucinated fraction, and how many modes (2D mixture), shape combinations
(Simple Shapes) or digit classes are still covered and how evenly (`Coverage`); for images, a
Frechet distance on the features of a small digits classifier (the paper: LeNet features on
MNIST; offline, the 8 x 8 digits that scikit-learn ships).
"""

from __future__ import annotations

import hashlib
import math
import numbers
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from mi_lib.checkpoints import load_checkpoint, save_checkpoint
from mi_lib.checks import check_choice, check_positive, check_positive_int
from mi_lib.hal import sample_with_hal
from mi_lib.learned import model_eps_fn
from mi_lib.mixtures import GaussianMixture
from mi_lib.runtime import make_generator, progress_bar
from mi_lib.schedules import Schedule
from mi_lib.shapes import KINDS, Reading, read_image
from mi_lib.training import train

KeepFn = Callable[[torch.Tensor, "torch.Tensor | None", int, torch.Generator], torch.Tensor]
TrainFn = Callable[[nn.Module, torch.Tensor, int], "dict | None"]
SampleFn = Callable[[nn.Module, int, int], "tuple[torch.Tensor, torch.Tensor | None]"]
MetricsFn = Callable[[torch.Tensor], dict]

#: n_draw / n_keep in the paper: 102.5k drawn for 100k kept on the 2D grid, 65k for 60k on MNIST.
PAPER_DRAW_RATIOS = {"2d_grid": 102_500 / 100_000, "mnist": 65_000 / 60_000}


# --- filters: keep(samples, hal, n_keep, generator) -> indices of the kept samples -----------


def keep_all(
    samples: torch.Tensor, hal: torch.Tensor | None, n_keep: int, generator: torch.Generator
) -> torch.Tensor:
    """Filter "none": every sample (requires n_keep = len(samples))."""
    if n_keep != len(samples):
        raise ValueError(f"n_keep must equal the number of samples ({len(samples)}) for filter 'none', got {n_keep!r}")
    return torch.arange(len(samples))


def keep_random(
    samples: torch.Tensor, hal: torch.Tensor | None, n_keep: int, generator: torch.Generator
) -> torch.Tensor:
    """Filter "random": n_keep samples chosen uniformly without replacement (the baseline)."""
    return torch.randperm(len(samples), generator=generator)[:n_keep]


def keep_lowest_hal(
    samples: torch.Tensor, hal: torch.Tensor | None, n_keep: int, generator: torch.Generator
) -> torch.Tensor:
    """Filter "hal": the n_keep samples with the lowest Hal (paper Sec. 6); ties go to the
    earlier sample, a NaN Hal counts as the highest."""
    if hal is None:
        raise ValueError("hal must be given for filter 'hal': sample_fn must return (samples, hal), got hal None")
    hal = torch.nan_to_num(hal.double(), nan=math.inf)
    return torch.argsort(hal, stable=True)[:n_keep]


FILTERS: dict[str, KeepFn] = {"none": keep_all, "random": keep_random, "hal": keep_lowest_hal}


def _check_indices(idx: object, n: int, n_keep: int) -> torch.Tensor:
    """A filter's answer, checked: n_keep distinct integer indices into n samples."""
    ok = isinstance(idx, torch.Tensor) and idx.ndim == 1 and not idx.is_floating_point() and idx.dtype != torch.bool
    if ok:
        idx = idx.long().cpu()
        ok = len(idx) == n_keep and len(torch.unique(idx)) == n_keep and bool(((idx >= 0) & (idx < n)).all())
    if not ok:
        raise ValueError(f"filter must return {n_keep} distinct integer indices in [0, {n}), got {idx!r}")
    return idx


def select(
    samples: torch.Tensor, hal: torch.Tensor | None, n_keep: int, filter: str | KeepFn, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a filter (a name in FILTERS or a keep function) and shuffle what it keeps with
    `generator`. Returns (kept samples in shuffled order, their indices into `samples`)."""
    keep = FILTERS[filter] if isinstance(filter, str) else filter
    idx = _check_indices(keep(samples, hal, n_keep, generator), len(samples), n_keep)
    idx = idx[torch.randperm(n_keep, generator=generator)]
    return samples[idx.to(samples.device)], idx


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
    return (seed * 1_000_003 + generation * 7_919 + stream * 104_729) % 2**62


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
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
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
        return {"loss": sum(losses[-100:]) / len(losses[-100:])}

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


# --- coverage: how many modes, combinations or classes are still there, and how evenly ---------


class Coverage(NamedTuple):
    """covered: categories (modes, shape combinations, classes) holding at least min_share of
    the counted samples; total: how many there are; evenness: the entropy of the shares over
    all categories divided by log(total) (1: all equal, 0: one category; 1 when total = 1 and
    it is covered); shares (total,): each category's share of the counted samples; counted:
    the samples that fall in some category (in support)."""

    covered: int
    total: int
    evenness: float
    shares: torch.Tensor
    counted: int


def coverage_from_counts(counts: torch.Tensor | np.ndarray | Sequence[int], min_share: float | None = None) -> Coverage:
    """Coverage from the number of samples in each category. min_share defaults to a tenth of
    the fair share, 0.1 / total."""
    c = torch.as_tensor(np.asarray(counts), dtype=torch.float64)
    if c.ndim != 1 or len(c) == 0 or bool((c < 0).any()):
        raise ValueError(f"counts must be a non-empty 1D array of non-negative counts, got {counts!r}")
    total = len(c)
    min_share = 0.1 / total if min_share is None else min_share
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must lie in (0, 1], got {min_share!r}")
    n = float(c.sum())
    if n == 0:
        return Coverage(0, total, 0.0, torch.zeros(total, dtype=torch.float64), 0)
    shares = c / n
    covered = int((shares >= min_share).sum())
    nz = shares[shares > 0]
    entropy = float(-(nz * nz.log()).sum())
    evenness = entropy / math.log(total) if total > 1 else 1.0
    return Coverage(covered, total, min(1.0, max(0.0, evenness)), shares, int(n))


def mode_coverage(
    x: torch.Tensor, mixture: GaussianMixture, k: float = 6.0, min_share: float | None = None
) -> Coverage:
    """Coverage of a mixture's modes: each sample within k sigma of its nearest mode counts for
    that mode (hallucinations count for none; paper Sec. 4.1, k = 6)."""
    check_positive("k", k)
    dist, idx = mixture.distance_to_nearest_mode(x)
    inside = dist <= k * mixture.sigmas[idx]
    return coverage_from_counts(torch.bincount(idx[inside], minlength=mixture.n_modes), min_share)


def mixture_metrics(mixture: GaussianMixture, k: float = 6.0) -> MetricsFn:
    """A metrics_fn for mixture samples: 'hallucinated' (the fraction farther than k sigma from
    every mode), 'modes_covered' and 'mode_evenness' (mode_coverage)."""
    check_positive("k", k)

    def metrics_fn(x: torch.Tensor) -> dict:
        x = x.detach().cpu()
        cov = mode_coverage(x, mixture, k)
        return {"hallucinated": float(mixture.hallucinated(x, k).double().mean()),
                "modes_covered": cov.covered, "mode_evenness": cov.evenness}

    return metrics_fn


#: The seven shape combinations Simple Shapes holds: each non-empty set of kinds, each once.
COMBINATIONS: tuple[tuple[str, ...], ...] = tuple(
    tuple(kind for i, kind in enumerate(KINDS) if mask >> i & 1) for mask in range(1, 8)
)


def _as_counts(readings: Sequence[Reading] | np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 3) counts and (N,) unreadable blob counts, from Readings or from counts."""
    if isinstance(readings, np.ndarray | torch.Tensor):
        counts = np.asarray(readings)
        if counts.ndim != 3 or counts.shape[1:] != (3, 3):
            raise ValueError(f"readings must be Readings or counts of shape (N, 3, 3), got shape {counts.shape}")
        return counts.astype(np.int64), np.zeros(len(counts), dtype=np.int64)
    readings = list(readings)
    if not all(isinstance(r, Reading) for r in readings):
        raise ValueError("readings must be a list of mi_lib.shapes.Reading or counts of shape (N, 3, 3)")
    counts = np.stack([r.counts for r in readings]) if readings else np.zeros((0, 3, 3), dtype=np.int64)
    return counts, np.array([r.unreadable for r in readings], dtype=np.int64)


def combination_coverage(
    readings: Sequence[Reading] | np.ndarray | torch.Tensor, min_share: float | None = None
) -> Coverage:
    """Coverage of the 7 shape combinations of Simple Shapes (order: COMBINATIONS), from the
    counter's readings or their (N, 3, 3) counts (column, kind). An image counts for the set of
    kinds it shows when it shows each kind at most once and no unreadable blob."""
    counts, unreadable = _as_counts(readings)
    per_kind = counts.sum(axis=1)  # (N, 3): how many of each kind, over the columns
    ok = (per_kind <= 1).all(axis=1) & (per_kind.sum(axis=1) >= 1) & (unreadable == 0)
    masks = (per_kind[ok] * (1 << np.arange(3))).sum(axis=1)  # 1..7, as COMBINATIONS
    return coverage_from_counts(np.bincount(masks - 1, minlength=7), min_share)


def shapes_metrics(images: torch.Tensor, threshold: float = 0.0) -> dict:
    """A metrics_fn for Simple Shapes images (N, 1, 64, 64): 'hallucinated' (two or more of a
    kind, the counter's label), 'unreadable', 'combinations_covered', 'combination_evenness'."""
    readings = [read_image(img, threshold) for img in images.detach().cpu()]
    if not readings:
        raise ValueError("images must hold at least one image, got none")
    cov = combination_coverage(readings)
    labels = [r.label for r in readings]
    return {"hallucinated": labels.count("hallucinated") / len(labels),
            "unreadable": labels.count("unreadable") / len(labels),
            "combinations_covered": cov.covered, "combination_evenness": cov.evenness}


def class_coverage(labels: torch.Tensor | np.ndarray, n_classes: int = 10, min_share: float | None = None) -> Coverage:
    """Coverage of n_classes classes from predicted labels (N,) (for digits: DigitsNet's)."""
    check_positive_int("n_classes", n_classes)
    lab = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
    if len(lab) and (int(lab.min()) < 0 or int(lab.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got values in [{int(lab.min())}, {int(lab.max())}]")
    return coverage_from_counts(torch.bincount(lab, minlength=n_classes), min_share)
