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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mi_lib.artifacts.image_recipe import ImageRecipe
from mi_lib.artifacts.manifest import ARTIFACT_DIR, verified_manifest
from mi_lib.checks import check_choice
from mi_lib.hal import sample_chunks, sample_with_hal
from mi_lib.learned import model_eps_fn
from mi_lib.schedules import window_steps
from mi_lib.shapes import simple_shapes
from mi_lib.training import TrainStep, train
from mi_lib.unet import UNet


@dataclass(frozen=True)
class ShapesRecipe(ImageRecipe):
    """How the shapes model is made (mi_lib.artifacts.image_recipe for the shared fields): the
    paper's data, 4,000 steps of batch 64 on a CPU, a bank of 1,600 images in chunks of 20 (small,
    so that one chunk can be redrawn in a chapter: redraw_chunk), and Hal over the paper's
    window, original times 700 to 850 (Sec. 5). The network predicts v rather than eps
    (mi_lib.prediction: an eps network trained on a CPU budget made grey blotches from pure
    noise, as its x0_hat divides by sqrt(alpha_bar) ~ 5e-5 at the first sampling step)."""

    hal_window: tuple[int, int] = (700, 850)  # original times t (paper Sec. 5)

    def data(self) -> torch.Tensor:
        return simple_shapes(self.n_data, self.data_seed).images

    def window(self) -> tuple[int, int]:
        """hal_window as step indices of the sampling schedule."""
        return window_steps(self.sampling_schedule(), *self.hal_window)


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
                  device: torch.device | str = "cpu", progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 1, 64, 64) from the eps model (rec.eps_model(net)) with the recipe's
    sampler, and each one's Hal over the recipe's window, recorded while sampling. Chunk i of
    rec.sample_chunk images uses chunk_generator(rec.sample_seed, i), so any chunk of the bank
    can be redrawn alone."""
    return sample_with_hal(model_eps_fn(model.to(device)), n or rec.n_samples, (1, 64, 64), rec.sampling_schedule(),
                           rec.sample_seed, rec.window(), chunk=rec.sample_chunk, device=device, progress=progress,
                           first_chunk=first_chunk, variance=rec.variance, clip_x0=rec.clip_x0)
def redraw_chunk(model: nn.Module, rec: ShapesRecipe, index: int, keep_times: list[int],
                 device: torch.device | str = "cpu", progress: bool = False) -> dict:
    """Chunk `index` of the bank (images index * rec.sample_chunk onwards) drawn again by the
    same sampler and noise, keeping what the bank does not: x0_hat at the reverse steps
    whose original times are nearest to `keep_times`. Returns {"images", "hal", "times",
    "x0_hat"} with x0_hat (len(times), chunk, 1, 64, 64), times from noisiest to cleanest."""
    out = redraw_bank_chunk(model, rec, index, keep_times, [rec.window()], (1, 64, 64), device, progress)
    return {**out, "hal": out["hal"][0]}


def redraw_bank_chunk(model: nn.Module, rec: ShapesRecipe, index: int, keep_times: list[int],
                      windows: list[tuple[int, int]], shape: tuple[int, ...], device: torch.device | str = "cpu",
                      progress: bool = False) -> dict:
    """redraw_chunk for any image recipe with the bank fields of ShapesRecipe (n_samples,
    sample_chunk, sample_seed, T, variance, clip_x0, sampling_schedule): Hal over each of
    `windows` (step indices), stacked to (len(windows), chunk), images of `shape`."""
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
    images, hals, x0_hat = sample_chunks(
        model_eps_fn(model.to(device)), size, shape, sched, seed=rec.sample_seed, chunk=rec.sample_chunk,
        windows=windows, keep_steps=steps, first_chunk=index, device=device, variance=rec.variance,
        clip_x0=rec.clip_x0, progress=progress)
    return {"images": images, "hal": torch.stack(hals), "times": [ts[i] for i in sorted(steps, reverse=True)],
            "x0_hat": x0_hat}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] (values beyond are clipped) as grey levels 0..255."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float() / 127.5 - 1


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
    art_dir = Path(art_dir) if art_dir is not None else ARTIFACT_DIR
    manifest = verified_manifest(NAME, art_dir, verify)
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

