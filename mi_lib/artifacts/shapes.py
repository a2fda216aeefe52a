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
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mi_lib.checkpoints import atomic_write, save_checkpoint
from mi_lib.checks import check_choice
from mi_lib.learned import model_eps_fn, sample_with_hal
from mi_lib.metrics import rate
from mi_lib.schedules import Schedule, cosine_schedule, respace, window_steps
from mi_lib.shapes import read_image, simple_shapes
from mi_lib.training import TrainStep, train
from mi_lib.unet import UNet


@dataclass(frozen=True)
class ShapesRecipe:
    """How the shapes model is made. The paper states the data, the cosine schedule with
    T = 1000 and 250 sampling steps; the network, optimiser and budget are ours (PAPER.md:
    open), sized for a CPU. Sampling is ancestral with the posterior ('fixed_small') variance
    and x0_hat clipped to [-1, 1], the usual choices for images (Ho et al. 2020's code)."""

    n_data: int = 5_000
    data_seed: int = 0
    base: int = 32
    mults: tuple[int, ...] = (1, 2, 2)
    n_res: int = 1
    patch: int = 4
    T: int = 1_000
    steps: int = 16_000
    batch_size: int = 64
    lr: float = 5e-4
    ema_decay: float = 0.999
    seed: int = 0
    sample_steps: int = 250
    variance: str = "fixed_small"
    clip_x0: float | None = 1.0
    n_samples: int = 1_600
    sample_seed: int = 1
    sample_chunk: int = 50
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
        """A freshly initialised U-Net; its weights depend on `seed` only."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return UNet(1, self.base, self.mults, self.n_res, self.patch)


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
                 ema=ema, ema_decay=rec.ema_decay)


def sample_shapes(model: UNet, rec: ShapesRecipe, n: int | None = None, first_chunk: int = 0,
                  device: torch.device | str = "cpu", progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 1, 64, 64) from the model with the recipe's sampler, and each one's Hal
    over the recipe's window, recorded while sampling. Chunk i of rec.sample_chunk images
    uses chunk_generator(rec.sample_seed, i), so any chunk of the bank can be redrawn alone."""
    return sample_with_hal(model_eps_fn(model.to(device)), n or rec.n_samples, (1, 64, 64), rec.sampling_schedule(),
                           rec.sample_seed, rec.window(), chunk=rec.sample_chunk, device=device,
                           progress=progress, first_chunk=first_chunk, variance=rec.variance,
                           clip_x0=rec.clip_x0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] (values beyond are clipped) as grey levels 0..255."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float() / 127.5 - 1


def _labels(images: torch.Tensor) -> list[str]:
    return [read_image(im).label for im in images]


def build(out_dir: str | Path, work_dir: str | Path, rec: ShapesRecipe = RECIPE, progress: bool = True,
          device: torch.device | str = "cpu") -> dict:
    """Train (resuming from work_dir/shapes_train.pt if present), sample the bank with the EMA
    weights, and write shapes.pt, shapes_bank.npz and shapes.json into out_dir atomically."""
    from mi_lib.artifacts import _sha256, _write_json  # the registry's helpers, shared

    out_dir, work_dir = Path(out_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    model = rec.model()
    ema = copy.deepcopy(model)
    losses_file = work_dir / "shapes_losses.pt"
    losses = torch.load(losses_file, weights_only=True).tolist() if losses_file.is_file() else []
    for step in train_shapes(rec, model, ema, checkpoint=work_dir / "shapes_train.pt", progress=progress,
                             device=device):
        losses = losses[: step.step - 1] + [step.loss]
        if step.step % 250 == 0 or step.step == rec.steps:
            save_checkpoint(losses_file, torch.tensor(losses))
    train_secs = time.time() - start
    ema.eval()
    images, hal = sample_shapes(ema, rec, device=device, progress=progress)
    sample_secs = time.time() - start - train_secs
    weights = out_dir / f"{NAME}.pt"
    save_checkpoint(weights, {"model": {k: v.cpu() for k, v in ema.state_dict().items()},
                              "losses": torch.tensor(losses)})
    bank = out_dir / f"{NAME}_bank.npz"
    buf = io.BytesIO()
    np.savez_compressed(buf, images=to_uint8(images.cpu()), hal=hal.float().numpy())
    atomic_write(bank, lambda f: f.write(buf.getvalue()))
    labels = _labels(from_uint8(to_uint8(images.cpu())))
    counts = {lab: labels.count(lab) for lab in ("in support", "hallucinated", "unreadable")}
    manifest = {
        "name": NAME,
        "command": f"python -m mi_lib.artifacts build {NAME}",
        "recipe": dataclasses.asdict(rec),
        "files": {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in (weights, bank)},
        "metrics": {
            "first_losses": losses[:5],
            "final_loss_mean_last_250": sum(losses[-250:]) / len(losses[-250:]),
            "epochs": rec.epochs,
            "labels": counts,
            "hallucination_rate": rate(torch.tensor([lab == "hallucinated" for lab in labels])).rate,
        },
        "built_with": {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
                       "threads": torch.get_num_threads(), "train_seconds": round(train_secs, 1),
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
    images, hal = sample_shapes(ema, rec, device=device, progress=progress)
    return {"model": ema.cpu(), "losses": torch.tensor(losses), "images": images.cpu(), "hal": hal.cpu(),
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
    """The shipped shapes model (EMA weights, eval mode, CPU), its losses, the bank's images
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
    model = rec.model()
    model.load_state_dict(state["model"])
    model.eval()
    with np.load(art_dir / f"{NAME}_bank.npz", allow_pickle=False) as bank:
        images, hal = from_uint8(bank["images"]), torch.from_numpy(bank["hal"])
    return {"model": model, "losses": state["losses"], "images": images, "hal": hal, "manifest": manifest,
            "recipe": rec}

