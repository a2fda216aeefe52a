"""What the image builds (mi_lib.artifacts.image_build) draw and read: the image models with
their Hal windows and labellers, banks sampled with Hal over every window in one pass (by
several CPU processes if asked: the same images), and each snapshot's bank, labelled, with the
AUROC of Hal per window, cached in the build's work folder."""

import copy
import dataclasses
import functools
import io
import json
import math
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from mi_lib import compute
from mi_lib.artifacts import hands as H
from mi_lib.artifacts import shapes as S
from mi_lib.artifacts.shapes_windows import WINDOWS as SHAPES_WINDOWS
from mi_lib.checkpoints import atomic_write
from mi_lib.checks import check_choice, check_positive_int
from mi_lib.detection import auroc
from mi_lib.fingers import count_fingers
from mi_lib.hal import sample_chunks
from mi_lib.runtime import progress_bar
from mi_lib.schedules import window_steps
from mi_lib.shapes import read_image

NAMES = ("shapes", "hands_gapped", "hands_continuous")
SNAPSHOTS = (5_000, 10_000, 20_000, 40_000)
SHAPES_LABELS = ("in support", "hallucinated", "unreadable")  # label codes 0, 1, 2 of a shapes bank


class ImageModel(NamedTuple):
    """What a build needs of an image model: its recipe, the Hal windows (original times), and
    how to label 8-bit images (n, 1, S, S) as integers (shapes: SHAPES_LABELS codes; hands:
    finger counts, -1 unreadable)."""

    recipe: S.ShapesRecipe | H.HandsRecipe
    windows: tuple[tuple[int, int], ...]
    label: Callable[[np.ndarray], np.ndarray]


def _shapes_labels(images8: np.ndarray) -> np.ndarray:
    return np.array([SHAPES_LABELS.index(read_image(im).label) for im in S.from_uint8(images8)], dtype=np.int8)


def _finger_labels(images8: np.ndarray) -> np.ndarray:
    return count_fingers(S.from_uint8(images8)).astype(np.int8)


def image_model(name: str) -> ImageModel:
    """The recipe (at the book's budget: 40,000 steps), windows and labeller of artifact `name`."""
    check_choice("name", name, NAMES)
    if name == "shapes":
        return ImageModel(S.RECIPE, SHAPES_WINDOWS, _shapes_labels)
    return ImageModel(H.recipe(name), H.HAL_WINDOWS, _finger_labels)


def round_to_half(net: nn.Module) -> nn.Module:
    """`net` with every floating weight rounded to float16 and back, in place: the weights a
    float16 file holds, so that the bank drawn from them is the one the shipped file redraws."""
    net.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    return net


def sample_bank(model: nn.Module, rec, n: int, first_chunk: int = 0, device: torch.device | str = "cpu",
                progress: bool = True, windows: tuple[tuple[int, int], ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 1, S, S) of the eps model with the recipe's sampler from chunk first_chunk on,
    and their Hal over each of `windows` (original times), (len(windows), n), in one pass."""
    sched = rec.sampling_schedule()
    size = getattr(rec, "size", 64)
    images, hals, _ = sample_chunks(
        compute.eps_fn(model.to(device)), n, (1, size, size), sched, seed=rec.sample_seed, chunk=rec.sample_chunk,
        windows=[window_steps(sched, *w) for w in windows], first_chunk=first_chunk, device=device,
        variance=rec.variance, clip_x0=rec.clip_x0, progress=progress)
    return images.cpu(), torch.stack(hals).float().cpu()


def sample_in_processes(model: nn.Module, rec: S.ShapesRecipe | H.HandsRecipe, n: int | None = None,
                        first_chunk: int = 0, device: torch.device | str = "cpu", progress: bool = True,
                        jobs: int = 1, sample: Callable[..., tuple[torch.Tensor, torch.Tensor]] = S.sample_shapes,
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """`sample` (shapes.sample_shapes, hands.sample_hands or sample_bank), its chunks drawn by `jobs` processes of
    one thread each (CPU only). The chunks are independent, so the result is the one `sample`
    gives with one thread. Hal is concatenated along its last axis (the samples')."""
    check_positive_int("jobs", jobs)
    n = n or rec.n_samples
    if jobs == 1:
        return sample(model, rec, n, first_chunk, device, progress)
    if torch.device(device).type != "cpu":
        raise ValueError(f"jobs > 1 samples on CPU processes; got jobs={jobs} with device {str(device)!r}")
    starts = range(0, n, rec.sample_chunk)
    parts: list[tuple[torch.Tensor, torch.Tensor]] = []
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's threads
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_sampler,
                             initargs=(model.cpu(), rec, sample)) as pool:
        jobs_list = [(first_chunk + i, min(rec.sample_chunk, n - s)) for i, s in enumerate(starts)]
        chunks = pool.map(_sample_chunk, jobs_list)
        for part in progress_bar(chunks, total=len(starts), desc="sampling (chunks)", progress=progress):
            parts.append(part)
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts], dim=-1)


_WORKER: dict = {}


def _init_sampler(model: nn.Module, rec: S.ShapesRecipe | H.HandsRecipe, sample: Callable = S.sample_shapes) -> None:
    torch.set_num_threads(1)
    _WORKER.update(model=model, rec=rec, sample=sample)


def _sample_chunk(job: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    index, size = job
    return _WORKER["sample"](_WORKER["model"], _WORKER["rec"], n=size, first_chunk=index, progress=False)


def _sampled(ema: nn.Module, rec, windows: tuple[tuple[int, int], ...], device: torch.device | str,
             progress: bool, jobs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The recipe's bank from the EMA weights rounded to float16 (the weights that ship):
    images (n, 1, S, S) and Hal (len(windows), n), one sampling pass (`jobs` CPU processes)."""
    net = round_to_half(copy.deepcopy(ema)).eval()
    return sample_in_processes(rec.eps_model(net), rec, rec.n_samples, 0, device, progress, jobs,
                               functools.partial(sample_bank, windows=windows))


def _aurocs(hals: np.ndarray, labels: np.ndarray, shapes: bool) -> list[float]:
    """AUROC of Hal per window: hallucinated (shapes: label 1; hands: a readable count other than
    five) against in support (label 0; five fingers); NaN without both."""
    bad = labels == 1 if shapes else (labels != 5) & (labels >= 0)
    good = labels == 0 if shapes else labels == 5
    keep = bad | good
    if bad.sum() == 0 or good.sum() == 0:
        return [math.nan] * len(hals)
    return [float(auroc(torch.from_numpy(h[keep]).double(), torch.from_numpy(bad[keep]))) for h in hals]


def bank_path(work_dir: Path, name: str, step: int) -> Path:
    """Where snapshot_bank caches the bank of model `name` at training step `step`."""
    return Path(work_dir) / f"{name}_bank_{step}.npz"


def snapshot_bank(model: ImageModel, rec, ema: torch.nn.Module, step: int, work_dir: Path, name: str,
                  device: torch.device | str, progress: bool, jobs: int = 1) -> dict:
    """The bank of the EMA weights at training step `step` (cached in work_dir): images (uint8,
    hands at H.BANK_LEVELS grey levels), Hal per window, labels, AUROC per window, seconds."""
    path = bank_path(work_dir, name, step)
    stamp = json.dumps({**{k: v for k, v in dataclasses.asdict(rec).items() if k != "steps"},
                        "windows": model.windows})
    if path.is_file():
        with np.load(path, allow_pickle=False) as f:
            if str(f["stamp"]) == stamp:
                return {k: f[k] for k in f.files}
    start = time.time()
    images, hals = _sampled(ema, rec, model.windows, device, progress, jobs)
    images8 = S.to_uint8(images)
    if name != "shapes":
        images8 = H.quantize(images8)
    labels = model.label(images8)
    bank = {"images": images8, "hals": hals.numpy(), "labels": labels, "step": np.array(step),
            "aurocs": np.array(_aurocs(hals.numpy(), labels, name == "shapes")),
            "seconds": np.array(time.time() - start), "stamp": np.array(stamp)}
    buf = io.BytesIO()
    np.savez_compressed(buf, **bank)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    return bank
