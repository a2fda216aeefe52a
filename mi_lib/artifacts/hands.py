"""The hands U-Nets and their sample banks (paper Sec. 4.2, Fig. 5, 20-23): the recipes, live
training and sampling, and the loader the hands chapter uses.

Two variants are trained on the procedural hands of mi_lib.hands: `hands_gapped` (each
finger's angle in one of two modes with an empty gap between them, 9 whole-hand poses) and
`hands_continuous` (the gaps filled). `python -m mi_lib.artifacts build hands_gapped` writes
NAME.pt (the U-Net's EMA weights and the loss of every step), NAME_bank.npz (the generated
images as 8-bit grey levels, each one's Hal over every window of the recipe, recorded in one
sampling pass, and its finger count read by mi_lib.fingers) and NAME.json, the manifest.
Training checkpoints to a work folder as it goes, so an interrupted build resumes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mi_lib.artifacts.image_recipe import ImageRecipe
from mi_lib.artifacts.manifest import ARTIFACT_DIR, verified_manifest
from mi_lib.artifacts.shapes import from_uint8, redraw_bank_chunk
from mi_lib.checks import check_choice, check_positive_int
from mi_lib.fingers import count_fingers
from mi_lib.hal import sample_chunks
from mi_lib.hands import POSE_KINDS, hands_dataset
from mi_lib.learned import model_eps_fn
from mi_lib.schedules import window_steps
from mi_lib.training import TrainStep, train
from mi_lib.unet import UNet

NAMES = ("hands_gapped", "hands_continuous")
# Hal windows in original time t (t_lo, t_hi): the paper's shapes window (700-850) and its
# neighbours down to the last step, so that the chapter can sweep the window (paper Sec. 5
# gives no window for hands).
HAL_WINDOWS = ((700, 850), (500, 700), (300, 500), (100, 300), (0, 100))


@dataclass(frozen=True)
class HandsRecipe(ImageRecipe):
    """How a hands model is made (mi_lib.artifacts.image_recipe for the shared fields). The paper
    trains an ADM U-Net on 5,000 images of 11k Hands at 128 x 128 (200k iterations, batch 16,
    lr 1e-4, cosine schedule, T = 1000, 500 sampling steps: `paper_recipe`). The CPU recipe keeps
    the data size, the schedule and T, and the Simple Shapes model's choices, at 64 x 64, with
    250 respaced sampling steps (open in the paper for hands). Hal is recorded over each of
    `hal_windows` (original times) in the same sampling pass.

    The shipped models train 10,000 steps (128 epochs) and draw their banks with the EMA
    weights; their manifests record the losses, the finger counts and the build times."""

    steps: int = 10_000
    n_samples: int = 2_000
    sample_chunk: int = 25
    poses: str = "gapped"
    size: int = 64
    hal_windows: tuple[tuple[int, int], ...] = HAL_WINDOWS

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("poses", self.poses, POSE_KINDS)
        check_positive_int("size", self.size)
        div = self.patch * 2 ** (len(self.mults) - 1)
        if self.size < 32 or self.size % div:
            raise ValueError(f"size must be at least 32 and divisible by patch * 2 ** (len(mults) - 1) = {div}, "
                             f"got {self.size!r}")
        if not self.hal_windows or any(
                not isinstance(w, tuple) or len(w) != 2 or not all(isinstance(t, int) and not isinstance(t, bool)
                                                                   for t in w) or not 0 <= w[0] <= w[1] < self.T
                for w in self.hal_windows):
            raise ValueError(f"hal_windows must be a non-empty tuple of (t_lo, t_hi) integer pairs with "
                             f"0 <= t_lo <= t_hi < T = {self.T}, got {self.hal_windows!r}")

    @property
    def name(self) -> str:
        return f"hands_{self.poses}"

    def data(self) -> torch.Tensor:
        """The training images (n_data, 1, size, size) in [-1, 1]."""
        return hands_dataset(self.n_data, self.data_seed, self.size, self.poses).images

    def windows(self) -> list[tuple[int, int]]:
        """hal_windows as step indices of the sampling schedule."""
        sched = self.sampling_schedule()
        return [window_steps(sched, *w) for w in self.hal_windows]


RECIPES = {"hands_gapped": HandsRecipe(poses="gapped"), "hands_continuous": HandsRecipe(poses="continuous")}


def recipe(name: str) -> HandsRecipe:
    """The CPU recipe of artifact `name` (one of NAMES)."""
    check_choice("name", name, NAMES)
    return RECIPES[name]


def paper_recipe(poses: str = "gapped") -> HandsRecipe:
    """The paper's run (Sec. 4.2 / App.: 128 x 128, 200k iterations of batch 16 at lr 1e-4,
    500 sampling steps), for a GPU, with a wider U-Net of four levels (patch 2)."""
    check_choice("poses", poses, POSE_KINDS)
    return HandsRecipe(poses=poses, size=128, base=64, mults=(1, 2, 2, 4), n_res=2, patch=2, steps=200_000,
                       batch_size=16, lr=1e-4, ema_decay=0.9999, sample_steps=500, n_samples=2_000,
                       sample_chunk=250)


def train_hands(rec: HandsRecipe, model: UNet, ema: UNet | None = None, steps: int | None = None,
                checkpoint: str | Path | None = None, progress: bool = True,
                device: torch.device | str = "cpu", save_every: int = 250) -> Iterator[TrainStep]:
    """The recipe's training run (optionally only its first `steps` steps) on `model`, with
    `ema` holding the moving average of its weights; resumes from `checkpoint` if it exists."""
    model.to(device)
    if ema is not None:
        ema.to(device)
    return train(model, rec.data(), rec.schedule(), steps=steps or rec.steps, batch_size=rec.batch_size,
                 lr=rec.lr, seed=rec.seed, checkpoint=checkpoint, save_every=save_every, progress=progress,
                 ema=ema, ema_decay=rec.ema_decay, prediction=rec.prediction)


def sample_hands(model: nn.Module, rec: HandsRecipe, n: int | None = None, first_chunk: int = 0,
                 device: torch.device | str = "cpu", progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 1, size, size) from the eps model (rec.eps_model(net)) with the recipe's
    sampler, and their Hal (len(hal_windows), n) over each window, recorded in the same pass.
    Chunk i of rec.sample_chunk images uses chunk_generator(rec.sample_seed, i), so any chunk
    of the bank can be redrawn alone."""
    images, hals, _ = sample_chunks(
        model_eps_fn(model.to(device)), n or rec.n_samples, (1, rec.size, rec.size), rec.sampling_schedule(),
        seed=rec.sample_seed, chunk=rec.sample_chunk, windows=rec.windows(), first_chunk=first_chunk, device=device,
        variance=rec.variance, clip_x0=rec.clip_x0, progress=progress)
    return images, torch.stack(hals)


def redraw_chunk(model: nn.Module, rec: HandsRecipe, index: int, keep_times: list[int],
                 device: torch.device | str = "cpu", progress: bool = False) -> dict:
    """Chunk `index` of the bank drawn again by the same sampler and noise, keeping x0_hat at
    the reverse steps nearest to the original times `keep_times`: {"images", "hal"
    (len(hal_windows), chunk), "times" (noisiest first), "x0_hat" (len(times), chunk, 1, S, S)}."""
    return redraw_bank_chunk(model, rec, index, keep_times, rec.windows(), (1, rec.size, rec.size), device,
                             progress)


BANK_LEVELS = 32  # grey levels the shipped bank keeps: no finger count of either bank changes at 32


def quantize(images8: np.ndarray, levels: int = BANK_LEVELS) -> np.ndarray:
    """8-bit grey images rounded to `levels` evenly spaced grey levels (still uint8, 0 and 255
    kept): the bank ships at 5 bits a pixel, which halves its size and leaves the finger counts
    as they were on the 8-bit images."""
    check_positive_int("levels", levels)
    if not 2 <= levels <= 256:
        raise ValueError(f"levels must be an integer from 2 to 256, got {levels!r}")
    step = 255 / (levels - 1)
    return np.round(np.round(np.asarray(images8, dtype=np.float64) / step) * step).astype(np.uint8)


def finger_metrics(fingers: np.ndarray) -> dict:
    """Counts and rates of the finger counts (-1 unreadable): five, six, four, other, unreadable,
    and not five (everything but five, unreadable included)."""
    fingers = np.asarray(fingers)
    n = len(fingers)
    counts = {"five": int((fingers == 5).sum()), "six": int((fingers == 6).sum()),
              "four": int((fingers == 4).sum()), "unreadable": int((fingers == -1).sum())}
    counts["other"] = n - sum(counts.values())
    counts["not_five"] = n - counts["five"]
    return {"n": n, "counts": counts, "rates": {k: (v / n if n else float("nan")) for k, v in counts.items()}}


def train_and_sample(rec: HandsRecipe, device: torch.device | str = "cpu", progress: bool = True) -> dict:
    """A fresh model trained by the recipe and its bank, in the form load_hands returns
    (manifest None): what a chapter runs instead of loading the artifact."""
    model = rec.model()
    ema = copy.deepcopy(model)
    losses = [s.loss for s in train_hands(rec, model, ema, progress=progress, device=device)]
    ema.eval()
    model = rec.eps_model(ema)
    images, hal = sample_hands(model, rec, device=device, progress=progress)
    return {"model": model.cpu(), "losses": torch.tensor(losses), "images": images.cpu(), "hal": hal.cpu(),
            "fingers": torch.from_numpy(count_fingers(images.cpu())), "manifest": None, "recipe": rec}


def hands_model(name: str = "hands_gapped", scale: str = "quick", retrain: bool = False,
                device: torch.device | str = "cpu", progress: bool = True) -> dict:
    """A hands model and its bank: the built artifact at quick scale, unless retrain=True;
    trained from scratch (on `device`) with the CPU recipe when retrain, with paper_recipe at
    paper scale."""
    check_choice("name", name, NAMES)
    check_choice("scale", scale, ("quick", "paper"))
    if scale == "quick" and not retrain:
        return load_hands(name)
    rec = recipe(name) if scale == "quick" else paper_recipe(name.removeprefix("hands_"))
    return train_and_sample(rec, device, progress)


def recipe_from_dict(args: dict) -> HandsRecipe:
    """The recipe a manifest records (JSON turns tuples into lists)."""
    args = dict(args)
    args.update(mults=tuple(args["mults"]), hal_windows=tuple(tuple(w) for w in args["hal_windows"]))
    return HandsRecipe(**args)


def load_hands(name: str = "hands_gapped", art_dir: str | Path | None = None, verify: bool = True) -> dict:
    """A built hands model (EMA weights as an eps network, eval mode, CPU), its losses, the
    bank's images (float, in [-1, 1]), Hal (len(hal_windows), n), finger counts (n,), the
    manifest and the recipe. verify=True checks every file against the manifest's sha256."""
    check_choice("name", name, NAMES)
    art_dir = Path(art_dir) if art_dir is not None else ARTIFACT_DIR
    manifest = verified_manifest(name, art_dir, verify)
    rec = recipe_from_dict(manifest["recipe"])
    state = torch.load(art_dir / f"{name}.pt", map_location="cpu", weights_only=True)
    net = rec.model()
    net.load_state_dict(state["model"])
    model = rec.eps_model(net).eval()
    with np.load(art_dir / f"{name}_bank.npz", allow_pickle=False) as bank:
        images, hal, fingers = from_uint8(bank["images"]), torch.from_numpy(bank["hal"]), bank["fingers"]
    return {"model": model, "losses": state["losses"], "images": images, "hal": hal,
            "fingers": torch.from_numpy(fingers), "manifest": manifest, "recipe": rec}

