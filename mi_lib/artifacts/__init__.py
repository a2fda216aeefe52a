"""The registry of trained toy models and their sample banks, shipped with mi_lib.

Each artifact NAME is two files in this folder: NAME.pt (the ToyMLP's weights, the loss of
every training step, and a bank of samples drawn from the trained model) and NAME.json, its
manifest: the exact command that made it, the recipe, sha256 of NAME.pt, and its metrics.
`python -m mi_lib.artifacts build NAME` remakes one (mi_lib.artifacts.build); training is deterministic per seed, so
a test re-runs the first steps of each recipe and compares the losses with the manifest's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from mi_lib.artifacts.manifest import ARTIFACT_DIR, load_manifest, verified_manifest
from mi_lib.checks import check_choice
from mi_lib.learned import model_eps_fn, sample_bank
from mi_lib.mixtures import GaussianMixture, mixture_preset
from mi_lib.models import ToyMLP
from mi_lib.runtime import make_generator
from mi_lib.schedules import Schedule, linear_schedule
from mi_lib.training import TrainStep, train

__all__ = [  # ARTIFACT_DIR and load_manifest are read from here by the tests and the build command
    "ARTIFACT_DIR", "N_FIRST_LOSSES", "RECIPES", "ToyRecipe", "load_artifact", "load_manifest", "paper_recipe",
    "recipe", "toy_model", "train_and_sample", "train_recipe",
]
N_FIRST_LOSSES = 5


@dataclass(frozen=True)
class ToyRecipe:
    """How one toy model is made: data from a mixture preset, the paper's MLP and linear
    schedule (0.001 to 0.2 over T steps), Adam at lr, then n_samples from the trained model."""

    preset: str
    n_data: int
    steps: int
    batch_size: int = 1_000
    T: int = 1_000
    lr: float = 1e-3
    seed: int = 0
    data_seed: int = 0
    n_samples: int = 10_000
    sample_seed: int = 1
    sample_chunk: int = 2_000
    width: int = 128
    n_blocks: int = 3

    @property
    def epochs(self) -> float:
        return self.steps * self.batch_size / self.n_data

    def mixture(self) -> GaussianMixture:
        return mixture_preset(self.preset)

    def data(self) -> torch.Tensor:
        return self.mixture().sample(self.n_data, make_generator(self.data_seed))

    def schedule(self) -> Schedule:
        return linear_schedule(self.T)

    def model(self) -> ToyMLP:
        """A freshly initialised ToyMLP; its weights depend on `seed` only."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return ToyMLP(self.mixture().dim, self.width, self.n_blocks)


_1D = dict(n_data=50_000, steps=1_500)
_2D = dict(n_data=100_000, steps=10_000, n_samples=4_000)
RECIPES: dict[str, ToyRecipe] = {
    # The chapter's main models (reused for the Hal metric later in the book).
    "1d_three": ToyRecipe("1d_three", **_1D),
    "2d_grid": ToyRecipe("2d_grid", **_2D),
    "2d_diamond": ToyRecipe("2d_diamond", **_2D),
    # Mode distance and nearest modes, compared gap by gap within one model. At 1,500 steps
    # the four-mode model still spread mass into every gap (18.8% of 4,000 samples); at 8,000
    # it put 1 of 4,000 in a gap, too few to compare gaps. These train for 3,000 steps.
    "1d_three_far": ToyRecipe("1d_three_far", n_data=50_000, steps=3_000, n_samples=6_000),
    "1d_four": ToyRecipe("1d_four", n_data=50_000, steps=3_000, n_samples=6_000),
    # Number of diffusion steps T (the schedule keeps its end points 0.001 and 0.2).
    "1d_three_T100": ToyRecipe("1d_three", T=100, **_1D),
    "1d_three_T250": ToyRecipe("1d_three", T=250, **_1D),
}
# Training-set size is studied at the paper's batch only: mi_lib.artifacts.protocol.


def recipe(name: str) -> ToyRecipe:
    check_choice("name", name, RECIPES)
    return RECIPES[name]


def train_recipe(rec: ToyRecipe, model: ToyMLP, steps: int | None = None, progress: bool = True,
                 device: torch.device | str = "cpu") -> Iterator[TrainStep]:
    """The recipe's training run (optionally only its first `steps` steps) on `model`."""
    model.to(device)
    return train(model, rec.data(), rec.schedule(), steps=steps or rec.steps, batch_size=rec.batch_size,
                 lr=rec.lr, seed=rec.seed, progress=progress)


def train_and_sample(
    rec: ToyRecipe, device: torch.device | str = "cpu", progress: bool = True
) -> tuple[ToyMLP, list[float], torch.Tensor]:
    """A fresh model trained by the recipe, its losses, and its bank of samples."""
    model = rec.model()
    losses = [s.loss for s in train_recipe(rec, model, progress=progress, device=device)]
    samples = sample_bank(model_eps_fn(model), rec.n_samples, model.dim, rec.schedule(), rec.sample_seed,
                          chunk=rec.sample_chunk, device=device, progress=progress)
    return model, losses, samples


def load_artifact(name: str, art_dir: str | Path = ARTIFACT_DIR, verify: bool = True) -> dict:
    """The artifact's trained model (eval mode, CPU), its losses, samples and manifest.
    verify=True checks the file against the manifest's sha256 first."""
    manifest = verified_manifest(name, art_dir, verify)
    state = torch.load(Path(art_dir) / manifest["file"], map_location="cpu", weights_only=True)
    rec = ToyRecipe(**manifest["recipe"])
    model = rec.model()
    model.load_state_dict(state["model"])
    model.eval()
    return {"model": model, "losses": state["losses"], "samples": state["samples"], "manifest": manifest,
            "recipe": rec}


def paper_recipe(name: str) -> ToyRecipe:
    """The recipe at the paper's settings (Sec. 4): batch 10,000 and 10,000 epochs, so
    steps = n_data. 100,000 samples."""
    rec = recipe(name)
    return dataclasses.replace(rec, batch_size=10_000, steps=rec.n_data, n_samples=100_000, sample_chunk=10_000)


def toy_model(name: str, scale: str = "quick", retrain: bool = False, device: torch.device | str = "cpu",
              progress: bool = True) -> dict:
    """A trained toy model and its samples, as load_artifact returns them. At quick scale it
    loads the shipped artifact, unless retrain=True; at paper scale (or with retrain) it trains
    the recipe from scratch on `device` and draws the bank there (for a GPU at paper scale)."""
    check_choice("scale", scale, ("quick", "paper"))
    if scale == "quick" and not retrain:
        return load_artifact(name)
    rec = recipe(name) if scale == "quick" else paper_recipe(name)
    model, losses, samples = train_and_sample(rec, device, progress)
    return {"model": model, "losses": torch.tensor(losses), "samples": samples, "manifest": None, "recipe": rec}
