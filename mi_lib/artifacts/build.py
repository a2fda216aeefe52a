"""The build command's machinery (`python -m mi_lib.artifacts build NAME`): for each kind of
artifact, a build function that runs its recipe and writes its files and manifest
(mi_lib.artifacts.manifest). Process pools, caches and resumable work folders live here, not
in what the chapters import. A new kind needs a recipe, a loader and one entry in KINDS.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import math
import multiprocessing
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from mi_lib.artifacts import N_FIRST_LOSSES, RECIPES, recipe, train_and_sample
from mi_lib.artifacts import budget as BU
from mi_lib.artifacts import collapse as C
from mi_lib.artifacts import hands as H
from mi_lib.artifacts import protocol as P
from mi_lib.artifacts import shapes_windows as SW
from mi_lib.artifacts.manifest import ARTIFACT_DIR, file_entry, opening, write_json
from mi_lib.artifacts.shapes import NAME, RECIPE, ShapesRecipe, from_uint8, sample_shapes, to_uint8, train_shapes
from mi_lib.checkpoints import atomic_write, save_checkpoint
from mi_lib.checks import check_positive_int
from mi_lib.fingers import count_fingers
from mi_lib.metrics import hallucination_rate, rate
from mi_lib.runtime import progress_bar
from mi_lib.shapes import read_image
from mi_lib.training import mean_last
from mi_lib.unet import UNet


class Kind(NamedTuple):
    """A kind of artifact: the names it builds and how to build one of them into out_dir."""

    names: tuple[str, ...]
    build: Callable[..., dict]  # build(name, out_dir, work_dir=..., device=..., jobs=..., progress=...)


# --- toy models and their sample banks -------------------------------------------------------


def build_toy(name: str, out_dir: str | Path = ARTIFACT_DIR, progress: bool = True,
              device: torch.device | str = "cpu") -> dict:
    """Train the recipe's model on `device`, draw its sample bank, and write NAME.pt and
    NAME.json (both atomically). Returns the manifest."""
    rec, out_dir = recipe(name), Path(out_dir)
    start = time.time()
    model, losses, samples = train_and_sample(rec, device=device, progress=progress)
    model, samples = model.cpu(), samples.cpu()
    path = out_dir / f"{name}.pt"
    save_checkpoint(path, {"model": model.state_dict(), "losses": torch.tensor(losses), "samples": samples})
    hal = hallucination_rate(samples, rec.mixture())
    manifest = {
        **opening(name, rec, path),
        "metrics": {
            "first_losses": losses[:N_FIRST_LOSSES],
            "final_loss_mean_last_100": mean_last(losses),
            "epochs": rec.epochs,
            "hallucination_rate": hal.rate, "hallucinated": hal.count, "n_samples": hal.n,
        },
        "built_with": {"torch": torch.__version__, "python": platform.python_version(),
                       "threads": torch.get_num_threads(), "seconds": round(time.time() - start, 1)},
    }
    write_json(out_dir / f"{name}.json", manifest)
    return manifest



# --- the Simple Shapes U-Net and its bank --------------------------------------------------------


def sample_in_processes(model: nn.Module, rec: ShapesRecipe | H.HandsRecipe, n: int | None = None,
                        first_chunk: int = 0, device: torch.device | str = "cpu", progress: bool = True,
                        jobs: int = 1, sample: Callable[..., tuple[torch.Tensor, torch.Tensor]] = sample_shapes,
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """`sample` (sample_shapes, or hands.sample_hands), its chunks drawn by `jobs` processes of
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


def _init_sampler(model: nn.Module, rec: ShapesRecipe | H.HandsRecipe, sample: Callable = sample_shapes) -> None:
    torch.set_num_threads(1)
    _WORKER.update(model=model, rec=rec, sample=sample)


def _sample_chunk(job: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    index, size = job
    return _WORKER["sample"](_WORKER["model"], _WORKER["rec"], n=size, first_chunk=index, progress=False)



def _labels(images: torch.Tensor) -> list[str]:
    return [read_image(im).label for im in images]


TRAINING_FIELDS = ("n_data", "data_seed", "base", "mults", "n_res", "patch", "T", "batch_size", "lr",
                   "prediction", "ema_decay", "seed")


def _claim_work_dir(work_dir: Path, name: str, training: dict) -> None:
    """Record a model's training settings (`training`) in work_dir/NAME_recipe.json, or refuse to
    resume a checkpoint (NAME_train.pt) made with other ones. `steps` is left out of `training`
    by the callers: the learning rate is constant and each step's randomness depends on its
    index alone, so a longer run resumed from a shorter one is the longer run. The sampling
    settings do not touch the checkpoint."""
    stamp = work_dir / f"{name}_recipe.json"
    wanted = json.loads(json.dumps(training))
    if stamp.is_file():
        found = json.loads(stamp.read_text())
        if found != wanted:
            changed = sorted(k for k in wanted if found.get(k) != wanted[k])
            raise ValueError(f"work_dir {str(work_dir)!r} holds a run of another recipe (differs in {changed}); "
                             "pass a fresh work_dir or delete it")
    elif (work_dir / f"{name}_train.pt").is_file():
        raise ValueError(f"work_dir {str(work_dir)!r} holds a checkpoint of an unknown recipe; "
                         "pass a fresh work_dir or delete it")
    else:
        write_json(stamp, wanted)


def _sampled_bank(ema: UNet, rec: ShapesRecipe, work_dir: Path, device: torch.device | str,
                  progress: bool, jobs: int) -> tuple[bytes, float, int]:
    """The bank file's bytes (images as uint8, Hal), the seconds its sampling took and the
    processes that sampled it (`jobs` of the build that did). The bank
    is kept in work_dir with what made it, so a build run again (after an interruption, or
    after a change of the counter that labels it) does not sample it again."""
    cache = work_dir / f"{NAME}_bank.npz"
    stamp = json.dumps(dataclasses.asdict(rec))  # the whole recipe: the weights' and the sampler's
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as old:
            if str(old["stamp"]) == stamp:
                return _bank_bytes(old["images"], old["hal"]), float(old["sample_seconds"]), int(old["sample_jobs"])
    start = time.time()
    images, hal = sample_in_processes(rec.eps_model(ema), rec, device=device, progress=progress, jobs=jobs)
    secs = time.time() - start
    cached = io.BytesIO()
    np.savez_compressed(cached, images=to_uint8(images.cpu()), hal=hal.float().numpy(), stamp=np.array(stamp),
                        sample_seconds=np.array(secs), sample_jobs=np.array(jobs))
    atomic_write(cache, lambda f: f.write(cached.getvalue()))
    return _bank_bytes(to_uint8(images.cpu()), hal.float().numpy()), secs, jobs


def _bank_bytes(images: np.ndarray, hal: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images, hal=hal)
    return buf.getvalue()


def build_shapes(out_dir: str | Path, work_dir: str | Path, rec: ShapesRecipe = RECIPE, progress: bool = True,
                 device: torch.device | str = "cpu", jobs: int = 1) -> dict:
    """Train (resuming from work_dir/shapes_train.pt if present), sample the bank with the EMA
    weights, and write shapes.pt, shapes_bank.npz and shapes.json into out_dir atomically."""
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    _claim_work_dir(work_dir, "shapes", {k: getattr(rec, k) for k in TRAINING_FIELDS})
    start = time.time()
    model = rec.model()
    ema = copy.deepcopy(model)
    # The losses so far and the training seconds of earlier, interrupted invocations.
    losses_file = work_dir / "shapes_losses.pt"
    log = torch.load(losses_file, weights_only=True) if losses_file.is_file() else {"losses": torch.zeros(0)}
    log = log if isinstance(log, dict) else {"losses": log}  # written by an earlier version: no seconds
    losses, earlier_secs = log["losses"].tolist(), float(log.get("train_seconds", float("nan")))
    earlier_secs = 0.0 if not losses else earlier_secs
    for step in train_shapes(rec, model, ema, checkpoint=work_dir / "shapes_train.pt", progress=progress,
                             device=device):
        losses = losses[: step.step - 1] + [step.loss]
        if step.step % 250 == 0 or step.step == rec.steps:
            save_checkpoint(losses_file, {"losses": torch.tensor(losses),
                                          "train_seconds": earlier_secs + time.time() - start})
    train_secs = earlier_secs + time.time() - start
    ema.eval()
    bank_bytes, sample_secs, jobs = _sampled_bank(ema, rec, work_dir, device, progress, jobs)
    bank = out_dir / f"{NAME}_bank.npz"
    atomic_write(bank, lambda f: f.write(bank_bytes))
    with np.load(bank, allow_pickle=False) as saved:
        labels = _labels(from_uint8(saved["images"]))
    counts = {lab: labels.count(lab) for lab in ("in support", "hallucinated", "unreadable")}
    hallucinated = torch.tensor([lab == "hallucinated" for lab in labels])
    metrics = {"labels": counts, "hallucination_rate": rate(hallucinated).rate}
    return _write_image_model(NAME, rec, out_dir, ema, losses, bank, metrics,
                              {"device": device, "jobs": jobs, "train": train_secs, "sample": sample_secs})


def _write_image_model(name: str, rec, out_dir: Path, ema: nn.Module, losses: list[float], bank: Path,
                       metrics: dict, run: dict, half: bool = False) -> dict:
    """Write an image model's EMA weights and losses (NAME.pt) beside its bank, and the manifest
    (NAME.json) of both: the recipe, sha256 of each file, the loss summary and `metrics`, and how
    it was built (`run`: device, sampling jobs, train and sample seconds). half=True stores the
    weights in float16 (the bank must then have been drawn from weights rounded the same way:
    round_to_half). Returns the manifest."""
    weights = out_dir / f"{name}.pt"
    state = {k: (v.half() if half and v.is_floating_point() else v).cpu() for k, v in ema.state_dict().items()}
    save_checkpoint(weights, {"model": state, "losses": torch.tensor(losses)})
    train_secs = run["train"]
    manifest = {
        "name": name,
        "command": f"python -m mi_lib.artifacts build {name}",
        "recipe": dataclasses.asdict(rec),
        "files": {p.name: file_entry(p) for p in (weights, bank)},
        "metrics": {
            "first_losses": losses[:5],
            "final_loss_mean_last_250": mean_last(losses, 250),
            "epochs": rec.epochs,
            **metrics,
        },
        "built_with": {"torch": torch.__version__, "python": platform.python_version(), "device": str(run["device"]),
                       "threads": torch.get_num_threads(), "sample_jobs": run["jobs"],
                       "train_seconds": round(train_secs, 1) if math.isfinite(train_secs) else None,
                       "sample_seconds": round(run["sample"], 1), "weights": "float16" if half else "float32"},
    }
    write_json(out_dir / f"{name}.json", manifest)
    return manifest



# --- the hands U-Nets and their banks ---------------------------------------------------------------

HANDS_TRAINING_FIELDS = ("poses", "n_data", "data_seed", "size", "base", "mults", "n_res", "patch", "T",
                         "batch_size", "lr", "prediction", "ema_decay", "seed")


def _train_hands_resumably(rec: H.HandsRecipe, work_dir: Path, device: torch.device | str,
                           progress: bool) -> tuple[UNet, list[float], float]:
    """The recipe's EMA network trained in work_dir (resumed from NAME_train.pt), the loss of
    every step and the training seconds of this and earlier invocations."""
    name, start = rec.name, time.time()
    model = rec.model()
    ema = copy.deepcopy(model)
    losses_file = work_dir / f"{name}_losses.pt"
    log = torch.load(losses_file, weights_only=True) if losses_file.is_file() else {"losses": torch.zeros(0)}
    losses, earlier_secs = log["losses"].tolist(), float(log.get("train_seconds", 0.0))
    for step in H.train_hands(rec, model, ema, checkpoint=work_dir / f"{name}_train.pt", progress=progress,
                              device=device):
        losses = losses[: step.step - 1] + [step.loss]
        if step.step % 250 == 0 or step.step == rec.steps:
            save_checkpoint(losses_file, {"losses": torch.tensor(losses),
                                          "train_seconds": earlier_secs + time.time() - start})
    ema.eval()
    return ema, losses, earlier_secs + time.time() - start


def round_to_half(net: nn.Module) -> nn.Module:
    """`net` with every floating weight rounded to float16 and back, in place: the weights a
    float16 file holds, so that the bank drawn from them is the one the shipped file redraws."""
    net.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    return net


def _hands_bank(ema: UNet, rec: H.HandsRecipe, work_dir: Path, device: torch.device | str,
                progress: bool, jobs: int = 1) -> tuple[np.ndarray, np.ndarray, float]:
    """The bank's images (uint8) and Hal (windows, n), and the seconds sampling took (by `jobs`
    processes on a CPU: the same images); cached in work_dir with the whole recipe, so a build
    run again does not sample again."""
    cache = work_dir / f"{rec.name}_bank_cache.npz"
    stamp = json.dumps({**dataclasses.asdict(rec), "weights": "float16"})
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as old:
            if str(old["stamp"]) == stamp:
                return old["images"], old["hal"], float(old["sample_seconds"])
    start = time.time()
    images, hal = sample_in_processes(rec.eps_model(ema), rec, device=device, progress=progress, jobs=jobs,
                                      sample=H.sample_hands)
    secs = time.time() - start
    images8, hal32 = to_uint8(images.cpu()), hal.float().cpu().numpy()
    cached = io.BytesIO()
    np.savez_compressed(cached, images=images8, hal=hal32, stamp=np.array(stamp), sample_seconds=np.array(secs))
    atomic_write(cache, lambda f: f.write(cached.getvalue()))
    return images8, hal32, secs


def build_hands(name: str, out_dir: str | Path, work_dir: str | Path, rec: H.HandsRecipe | None = None,
                progress: bool = True, device: torch.device | str = "cpu", jobs: int = 1) -> dict:
    """Train (resuming from work_dir/NAME_train.pt), sample the bank with the EMA weights
    rounded to float16 (Hal over every window of the recipe in one pass), count each image's
    fingers (mi_lib.fingers, on the stored images, kept at H.BANK_LEVELS grey levels), and
    write NAME.pt, NAME_bank.npz and NAME.json into out_dir atomically. Returns the manifest."""
    rec = rec if rec is not None else H.recipe(name)
    if rec.name != name:
        raise ValueError(f"rec must be a recipe of {name!r} (poses {name.removeprefix('hands_')!r}), "
                         f"got poses {rec.poses!r}")
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    _claim_work_dir(work_dir, rec.name, {k: getattr(rec, k) for k in HANDS_TRAINING_FIELDS})
    ema, losses, train_secs = _train_hands_resumably(rec, work_dir, device, progress)
    images8, hal, sample_secs = _hands_bank(round_to_half(ema), rec, work_dir, device, progress, jobs)
    images8 = H.quantize(images8)
    fingers = count_fingers(from_uint8(images8))
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images8, hal=hal, fingers=fingers,
                        hal_windows=np.array(rec.hal_windows, dtype=np.int64))
    bank = out_dir / f"{name}_bank.npz"
    atomic_write(bank, lambda f: f.write(buf.getvalue()))
    return _write_image_model(name, rec, out_dir, ema, losses, bank,
                              {"fingers": H.finger_metrics(fingers), "bank_grey_levels": H.BANK_LEVELS},
                              {"device": device, "jobs": jobs, "train": train_secs, "sample": sample_secs}, half=True)


# --- recursive-training runs ---------------------------------------------------------------------


def build_collapse(name: str, out_dir: str | Path, work_dir: str | Path, rec: C.CollapseRecipe | None = None,
                   progress: bool = True, device: torch.device | str = "cpu") -> dict:
    """Run the recipe's filters (resuming from work_dir/name), and write NAME.pt (samples and
    Hal per filter and generation; the digit classifier) and NAME.json, its manifest, into
    out_dir atomically. Returns the manifest."""
    rec = rec if rec is not None else C.recipe(name)
    out_dir = Path(out_dir)
    start = time.time()
    with torch.random.fork_rng(devices=[]):
        result = C.run_all(rec, Path(work_dir) / name, device, progress)
    path = out_dir / f"{name}.pt"
    state = {"samples": {f: r["samples"] for f, r in result["runs"].items()},
             "hal": {f: r["hal"].float() for f, r in result["runs"].items()}}
    if result["classifier"] is not None:
        state["classifier"] = result["classifier"]
    save_checkpoint(path, state)
    manifest = {
        **opening(name, rec, path),
        "metrics": {
            "first_losses": result["first_losses"],
            "epochs_per_generation": rec.epochs,
            "generations": {f: r["metrics"] for f, r in result["runs"].items()},
            "seconds": {f: r["seconds"] for f, r in result["runs"].items()},
        },
        # this invocation's seconds plus those recorded by the invocations whose generations it resumed
        "built_with": {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
                       "threads": torch.get_num_threads(),
                       "seconds": round(time.time() - start + result["resumed_seconds"], 1)},
    }
    write_json(out_dir / f"{name}.json", manifest)
    return manifest



KINDS: dict[str, Kind] = {
    "toy": Kind(tuple(RECIPES), lambda name, out_dir, device="cpu", progress=True, **_:
                build_toy(name, out_dir, progress, device)),
    "shapes": Kind((NAME,), lambda name, out_dir, work_dir, device="cpu", jobs=1, progress=True:
                   build_shapes(out_dir, work_dir, progress=progress, device=device, jobs=jobs)),
    "shapes_windows": Kind((SW.NAME,), lambda name, out_dir, work_dir, device="cpu", jobs=1, progress=True:
                           SW.build_shapes_windows(out_dir, work_dir, Path(out_dir) if (Path(out_dir) / "shapes.json")
                                                   .is_file() else None, device, jobs, progress)),
    "hands": Kind(H.NAMES, lambda name, out_dir, work_dir, device="cpu", jobs=1, progress=True:
                  build_hands(name, out_dir, work_dir, progress=progress, device=device, jobs=jobs)),
    "budget": Kind((BU.NAME,), lambda name, out_dir, work_dir, device="cpu", progress=True, **_:
                   BU.build_budget(name, out_dir, work_dir, device=device, progress=progress)),
    "protocol": Kind(P.NAMES, lambda name, out_dir, work_dir, device="cpu", progress=True, **_:
                     P.build_protocol(name, out_dir, work_dir, device=device, progress=progress)),
    "collapse": Kind(C.NAMES, lambda name, out_dir, work_dir, device="cpu", progress=True, **_:
                     build_collapse(name, out_dir, work_dir, progress=progress, device=device)),
}


def kind_of(name: str) -> str:
    """The kind that builds artifact `name`."""
    for kind, k in KINDS.items():
        if name in k.names:
            return kind
    raise ValueError(f"name must be an artifact of some kind ({', '.join(n for k in KINDS.values() for n in k.names)})"
                     f", got {name!r}")
