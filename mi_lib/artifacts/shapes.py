"""The Simple Shapes U-Net and its sample bank (paper Sec. 4.2): the recipe, the build that
trains and samples it, and the loader the chapters use.

`python -m mi_lib.artifacts build shapes` writes three files here: shapes.pt (the U-Net's
EMA weights and the loss of every step), shapes_bank.npz (the generated images as 8-bit grey
levels and each one's Hal over the paper's window, recorded while sampling) and shapes.json,
the manifest. Training checkpoints to a work folder as it goes, so an interrupted build
resumes where it stopped.
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
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mi_lib.checkpoints import atomic_write, save_checkpoint
from mi_lib.checks import check_choice, check_positive_int
from mi_lib.hal import sample_chunks, sample_with_hal
from mi_lib.learned import model_eps_fn
from mi_lib.metrics import rate
from mi_lib.prediction import VPrediction
from mi_lib.schedules import Schedule, cosine_schedule, respace, window_steps
from mi_lib.shapes import read_image, simple_shapes
from mi_lib.training import TrainStep, mean_last, train
from mi_lib.unet import UNet


@dataclass(frozen=True)
class ShapesRecipe:
    """How the shapes model is made. The paper states the data, the cosine schedule with
    T = 1000 and 250 sampling steps; the network, optimiser and budget are ours (PAPER.md:
    open), sized for a CPU. The network predicts v rather than eps (mi_lib.prediction: an
    eps network trained on a CPU budget made grey blotches from pure noise, as its x0_hat
    divides by sqrt(alpha_bar) ~ 5e-5 at the first sampling step). Sampling is ancestral with
    the posterior ('fixed_small') variance and x0_hat clipped to [-1, 1], the usual choices
    for images (Ho et al. 2020's code)."""

    n_data: int = 5_000
    data_seed: int = 0
    base: int = 32
    mults: tuple[int, ...] = (1, 2, 2)
    n_res: int = 1
    patch: int = 4
    T: int = 1_000
    steps: int = 4_000
    batch_size: int = 64
    lr: float = 5e-4
    prediction: str = "v"
    ema_decay: float = 0.999
    seed: int = 0
    sample_steps: int = 250
    variance: str = "fixed_small"
    clip_x0: float | None = 1.0
    n_samples: int = 1_600
    sample_seed: int = 1
    sample_chunk: int = 20  # small, so that one chunk can be redrawn in a chapter (redraw_chunk)
    hal_window: tuple[int, int] = (700, 850)  # original times t (paper Sec. 5)

    @property
    def epochs(self) -> float:
        return self.steps * self.batch_size / self.n_data

    def data(self) -> torch.Tensor:
        return simple_shapes(self.n_data, self.data_seed).images

    def schedule(self) -> Schedule:
        """The training schedule (cosine, T steps)."""
        return cosine_schedule(self.T)

    def sampling_schedule(self) -> Schedule:
        return respace(self.schedule(), self.sample_steps)

    def window(self) -> tuple[int, int]:
        """hal_window as step indices of the sampling schedule."""
        return window_steps(self.sampling_schedule(), *self.hal_window)

    def model(self) -> UNet:
        """A freshly initialised U-Net (it predicts `prediction`); its weights depend on `seed` only."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return UNet(1, self.base, self.mults, self.n_res, self.patch)

    def eps_model(self, net: UNet) -> nn.Module:
        """The eps network the samplers call: `net` itself, or VPrediction(net) for a v network."""
        return net if self.prediction == "eps" else VPrediction(net, self.schedule())


RECIPE = ShapesRecipe()
NAME = "shapes"


def train_shapes(rec: ShapesRecipe, model: UNet, ema: UNet | None = None, steps: int | None = None,
                 checkpoint: str | Path | None = None, progress: bool = True,
                 device: torch.device | str = "cpu") -> Iterator[TrainStep]:
    """The recipe's training run (optionally only its first `steps` steps) on `model`, with
    `ema` holding the moving average of its weights."""
    model.to(device)
    if ema is not None:
        ema.to(device)
    return train(model, rec.data(), rec.schedule(), steps=steps or rec.steps, batch_size=rec.batch_size,
                 lr=rec.lr, seed=rec.seed, checkpoint=checkpoint, save_every=250, progress=progress,
                 ema=ema, ema_decay=rec.ema_decay, prediction=rec.prediction)


def sample_shapes(model: nn.Module, rec: ShapesRecipe, n: int | None = None, first_chunk: int = 0,
                  device: torch.device | str = "cpu", progress: bool = True,
                  jobs: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 1, 64, 64) from the eps model (rec.eps_model(net)) with the recipe's
    sampler, and each one's Hal over the recipe's window, recorded while sampling. Chunk i of
    rec.sample_chunk images uses chunk_generator(rec.sample_seed, i), so any chunk of the bank
    can be redrawn alone.

    jobs > 1 (CPU only): the chunks are drawn by that many processes of one thread each. The
    chunks are independent, so the result is the one jobs=1 gives with one thread."""
    check_positive_int("jobs", jobs)
    n = n or rec.n_samples
    if jobs == 1:
        return sample_with_hal(model_eps_fn(model.to(device)), n, (1, 64, 64), rec.sampling_schedule(),
                               rec.sample_seed, rec.window(), chunk=rec.sample_chunk, device=device,
                               progress=progress, first_chunk=first_chunk, variance=rec.variance,
                               clip_x0=rec.clip_x0)
    if torch.device(device).type != "cpu":
        raise ValueError(f"jobs > 1 samples on CPU processes; got jobs={jobs} with device {str(device)!r}")
    starts = range(0, n, rec.sample_chunk)
    parts: list[tuple[torch.Tensor, torch.Tensor]] = []
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's threads
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_sampler,
                             initargs=(model.cpu(), rec)) as pool:
        jobs_list = [(first_chunk + i, min(rec.sample_chunk, n - s)) for i, s in enumerate(starts)]
        chunks = pool.map(_sample_chunk, jobs_list)
        for part in tqdm(chunks, total=len(starts), desc="sampling (chunks)", disable=not progress):
            parts.append(part)
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


_WORKER: dict = {}


def _init_sampler(model: nn.Module, rec: ShapesRecipe) -> None:
    torch.set_num_threads(1)
    _WORKER.update(model=model, rec=rec)


def _sample_chunk(job: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    index, size = job
    return sample_shapes(_WORKER["model"], _WORKER["rec"], n=size, first_chunk=index, progress=False)


def redraw_chunk(model: nn.Module, rec: ShapesRecipe, index: int, keep_times: list[int],
                 device: torch.device | str = "cpu", progress: bool = False) -> dict:
    """Chunk `index` of the bank (images index * rec.sample_chunk onwards) drawn again by the
    same sampler and noise, keeping what the bank does not: x0_hat at the reverse steps
    whose original times are nearest to `keep_times`. Returns {"images", "hal", "times",
    "x0_hat"} with x0_hat (len(times), chunk, 1, 64, 64), times from noisiest to cleanest."""
    sched = rec.sampling_schedule()
    n_chunks = -(-rec.n_samples // rec.sample_chunk)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_chunks:
        raise ValueError(f"index must be a chunk of the bank, an integer in [0, {n_chunks - 1}], got {index!r}")
    if not keep_times or any(isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < rec.T
                             for t in keep_times):
        raise ValueError(f"keep_times must be a non-empty list of integer times in [0, {rec.T - 1}], "
                         f"got {keep_times!r}")
    ts = sched.timesteps.tolist()
    steps = {min(range(len(ts)), key=lambda i: abs(ts[i] - t)) for t in keep_times}
    size = min(rec.sample_chunk, rec.n_samples - index * rec.sample_chunk)
    images, (hal,), x0_hat = sample_chunks(
        model_eps_fn(model.to(device)), size, (1, 64, 64), sched, seed=rec.sample_seed, chunk=rec.sample_chunk,
        windows=[rec.window()], keep_steps=steps, first_chunk=index, device=device, variance=rec.variance,
        clip_x0=rec.clip_x0, progress=progress)
    return {"images": images, "hal": hal, "times": [ts[i] for i in sorted(steps, reverse=True)], "x0_hat": x0_hat}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] (values beyond are clipped) as grey levels 0..255."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float() / 127.5 - 1


def _labels(images: torch.Tensor) -> list[str]:
    return [read_image(im).label for im in images]


TRAINING_FIELDS = ("n_data", "data_seed", "base", "mults", "n_res", "patch", "T", "batch_size", "lr",
                   "prediction", "ema_decay", "seed")


def _claim_work_dir(work_dir: Path, rec: ShapesRecipe) -> None:
    """Record the recipe's training settings in work_dir, or refuse to resume a checkpoint
    made with other ones. `steps` may differ: the learning rate is constant and each step's
    randomness depends on its index alone, so a longer run resumed from a shorter one is the
    longer run. The sampling settings do not touch the checkpoint."""
    from mi_lib.artifacts import _write_json

    stamp = work_dir / "shapes_recipe.json"
    wanted = json.loads(json.dumps({k: getattr(rec, k) for k in TRAINING_FIELDS}))
    if stamp.is_file():
        found = json.loads(stamp.read_text())
        if found != wanted:
            changed = sorted(k for k in wanted if found.get(k) != wanted[k])
            raise ValueError(f"work_dir {str(work_dir)!r} holds a run of another recipe (differs in {changed}); "
                             "pass a fresh work_dir or delete it")
    elif (work_dir / "shapes_train.pt").is_file():
        raise ValueError(f"work_dir {str(work_dir)!r} holds a checkpoint of an unknown recipe; "
                         "pass a fresh work_dir or delete it")
    else:
        _write_json(stamp, wanted)


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
    images, hal = sample_shapes(rec.eps_model(ema), rec, device=device, progress=progress, jobs=jobs)
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


def build(out_dir: str | Path, work_dir: str | Path, rec: ShapesRecipe = RECIPE, progress: bool = True,
          device: torch.device | str = "cpu", jobs: int = 1) -> dict:
    """Train (resuming from work_dir/shapes_train.pt if present), sample the bank with the EMA
    weights, and write shapes.pt, shapes_bank.npz and shapes.json into out_dir atomically."""
    from mi_lib.artifacts import _sha256, _write_json  # the registry's helpers, shared

    out_dir, work_dir = Path(out_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    _claim_work_dir(work_dir, rec)
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
    weights = out_dir / f"{NAME}.pt"
    save_checkpoint(weights, {"model": {k: v.cpu() for k, v in ema.state_dict().items()},
                              "losses": torch.tensor(losses)})
    bank = out_dir / f"{NAME}_bank.npz"
    atomic_write(bank, lambda f: f.write(bank_bytes))
    with np.load(bank, allow_pickle=False) as saved:
        labels = _labels(from_uint8(saved["images"]))
    counts = {lab: labels.count(lab) for lab in ("in support", "hallucinated", "unreadable")}
    manifest = {
        "name": NAME,
        "command": f"python -m mi_lib.artifacts build {NAME}",
        "recipe": dataclasses.asdict(rec),
        "files": {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in (weights, bank)},
        "metrics": {
            "first_losses": losses[:5],
            "final_loss_mean_last_250": mean_last(losses, 250),
            "epochs": rec.epochs,
            "labels": counts,
            "hallucination_rate": rate(torch.tensor([lab == "hallucinated" for lab in labels])).rate,
        },
        "built_with": {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
                       "threads": torch.get_num_threads(), "sample_jobs": jobs,
                       "train_seconds": round(train_secs, 1) if math.isfinite(train_secs) else None,
                       "sample_seconds": round(sample_secs, 1)},
    }
    _write_json(out_dir / f"{NAME}.json", manifest)
    return manifest


def paper_shapes_recipe() -> ShapesRecipe:
    """The paper-scale run, for a GPU: a wider U-Net, 50,000 steps of batch 128 (1,280
    epochs) at lr 2e-4, and 7,500 samples (the paper's count for the Hal metric, Sec. 5)."""
    return dataclasses.replace(RECIPE, base=64, steps=50_000, batch_size=128, lr=2e-4, n_samples=7_500,
                               sample_chunk=500)


def train_and_sample(rec: ShapesRecipe, device: torch.device | str = "cpu", progress: bool = True) -> dict:
    """A fresh model trained by the recipe and its bank, in the form load_shapes returns
    (manifest None): what RETRAIN or paper scale runs instead of loading the artifact."""
    model = rec.model()
    ema = copy.deepcopy(model)
    losses = [s.loss for s in train_shapes(rec, model, ema, progress=progress, device=device)]
    ema.eval()
    model = rec.eps_model(ema)
    images, hal = sample_shapes(model, rec, device=device, progress=progress)
    return {"model": model.cpu(), "losses": torch.tensor(losses), "images": images.cpu(), "hal": hal.cpu(),
            "manifest": None, "recipe": rec}


def shapes_model(scale: str = "quick", retrain: bool = False, device: torch.device | str = "cpu",
                 progress: bool = True) -> dict:
    """The shapes model and its bank: the shipped artifact at quick scale, unless
    retrain=True; trained from scratch (on `device`) at paper scale or with retrain."""
    check_choice("scale", scale, ("quick", "paper"))
    if scale == "quick" and not retrain:
        return load_shapes()
    return train_and_sample(RECIPE if scale == "quick" else paper_shapes_recipe(), device, progress)


def load_shapes(art_dir: str | Path | None = None, verify: bool = True) -> dict:
    """The shipped shapes model (EMA weights as an eps network, eval mode, CPU), its losses, the bank's images
    (float, in [-1, 1]) and Hal, the manifest and the recipe. verify=True checks both files
    against the manifest's sha256 first."""
    from mi_lib.artifacts import ARTIFACT_DIR, _sha256, load_manifest

    art_dir = Path(art_dir) if art_dir is not None else ARTIFACT_DIR
    manifest = load_manifest(NAME, art_dir)
    for fname, meta in manifest["files"].items():
        if verify and _sha256(art_dir / fname) != meta["sha256"]:
            raise ValueError(f"{fname} does not match the sha256 in its manifest; rebuild it")
    recipe_args = dict(manifest["recipe"])
    recipe_args.update(mults=tuple(recipe_args["mults"]), hal_window=tuple(recipe_args["hal_window"]))
    rec = ShapesRecipe(**recipe_args)
    state = torch.load(art_dir / f"{NAME}.pt", map_location="cpu", weights_only=True)
    net = rec.model()
    net.load_state_dict(state["model"])
    model = rec.eps_model(net).eval()
    with np.load(art_dir / f"{NAME}_bank.npz", allow_pickle=False) as bank:
        images, hal = from_uint8(bank["images"]), torch.from_numpy(bank["hal"])
    return {"model": model, "losses": state["losses"], "images": images, "hal": hal, "manifest": manifest,
            "recipe": rec}

