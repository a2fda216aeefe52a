"""Recursive-training runs for the model-collapse chapter (paper Sec. 6, Fig. 8, 9, 16): the
recipes, the build that runs them and the loader the chapter uses.

`python -m mi_lib.artifacts build collapse` runs two experiments, each with the filters
'none', 'random' and 'hal' (mi_lib.collapse), and writes two files per experiment here:

- collapse_2d.pt / collapse_2d.json: the 5 x 5 grid of Gaussians, the paper's MLP;
- collapse_digits.pt / collapse_digits.json: scikit-learn's 8 x 8 digits (the paper: MNIST),
  the same MLP on the 64 flattened pixels, and the digit classifier whose features give the
  Frechet distance.

Models are not shipped (a dozen of them would be megabytes). Each .pt holds, per filter and
generation, a fresh draw of `n_store` samples from that generation's model and their Hal;
the manifest (.json) holds every generation's metrics, computed on all its samples, and the
first training losses, which a test compares with a re-run of the recipe's first steps.

Generation 0 trains on the real data with the same seeds under every filter, so its model is
the same for all three: the build trains it once and reuses it (`_Gen0Cache`). Each filter's
run is resumable: its finished generations are saved in a work folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mi_lib.artifacts.manifest import ARTIFACT_DIR, verified_manifest
from mi_lib.checkpoints import load_checkpoint, save_checkpoint
from mi_lib.checks import check_choice
from mi_lib.collapse import Generation, generation_model, generation_seed, recursive_training
from mi_lib.collapse_filters import FILTERS
from mi_lib.collapse_metrics import MetricsFn, mixture_metrics
from mi_lib.digits import DigitsNet, digits_metrics, load_digits_images, train_digits_classifier
from mi_lib.hal import hal_after_the_fact, sample_with_hal
from mi_lib.learned import model_eps_fn, sample_bank
from mi_lib.mixtures import GaussianMixture, mixture_preset
from mi_lib.models import ToyMLP
from mi_lib.runtime import derived_seed, make_generator
from mi_lib.schedules import Schedule, linear_schedule
from mi_lib.training import TrainStep, mean_last, train

N_FIRST_LOSSES = 5
DATASETS = ("2d_grid", "digits")


@dataclass(frozen=True)
class CollapseRecipe:
    """One recursive-training experiment: the data, the network and its training, the
    sampler, and the filters compared.

    data: '2d_grid' (n_keep points of the mixture, seeded by data_seed, are generation 0's
    data) or 'digits' (all of scikit-learn's 1,797 digits, flattened to 64 values in [-1, 1]).
    Each generation trains a fresh ToyMLP(width, n_blocks) for `steps` Adam steps at lr, then
    `anneal_steps` more at anneal_lr (a fresh Adam), on a linear schedule from beta_start to
    beta_end over T steps; it draws n_draw samples (n_keep for filter 'none') with the
    ancestral sampler, recording Hal over `window` (step indices, 0 the last), and the filter
    keeps n_keep. Digits samples are clipped to [-1, 1], as images are when saved.
    n_store: how many samples of each generation's model the artifact keeps (a fresh draw,
    seeded by store_seed), for figures. classifier_steps: the digit classifier's training.
    hal_after: 0 records Hal while sampling; n > 0 computes it after the fact instead, from
    n re-noisings of each finished (clipped) sample spread over `window` (the paper's MNIST
    filter, Sec. 6: t = 100 to 150)."""

    data: str
    generations: int
    n_keep: int
    n_draw: int
    steps: int
    anneal_steps: int
    width: int
    batch_size: int = 1_000
    lr: float = 1e-3
    anneal_lr: float = 1e-4
    n_blocks: int = 3
    T: int = 500
    beta_start: float = 1e-3
    beta_end: float = 0.2
    window: tuple[int, int] = (0, 8)
    filters: tuple[str, ...] = ("none", "random", "hal")
    seed: int = 0
    data_seed: int = 0
    n_store: int = 2_000
    store_seed: int = 10_000
    sample_chunk: int = 2_500
    classifier_steps: int = 500
    hal_after: int = 0

    def __post_init__(self) -> None:
        check_choice("data", self.data, DATASETS)
        if isinstance(self.hal_after, bool) or not isinstance(self.hal_after, int) or not (
                self.hal_after == 0 or 2 <= self.hal_after <= self.window[1] - self.window[0] + 1):
            raise ValueError(f"hal_after must be 0 (Hal while sampling) or a number of re-noised steps from 2 to "
                             f"the window's {self.window[1] - self.window[0] + 1}, got {self.hal_after!r}")
        for f in self.filters:
            check_choice("filter", f, FILTERS)

    @property
    def dim(self) -> int:
        return 2 if self.data == "2d_grid" else 64

    def mixture(self) -> GaussianMixture:
        return mixture_preset("2d_grid")

    def real_data(self) -> torch.Tensor:
        """Generation 0's training data, (N, dim)."""
        if self.data == "2d_grid":
            return self.mixture().sample(self.n_keep, make_generator(self.data_seed))
        images, _ = load_digits_images("sklearn")
        return images.reshape(len(images), -1)

    def schedule(self) -> Schedule:
        return linear_schedule(self.T, self.beta_start, self.beta_end)

    def model(self) -> ToyMLP:
        """A fresh ToyMLP (recursive_training seeds the generator before calling this)."""
        return ToyMLP(self.dim, self.width, self.n_blocks)

    def draw(self, f: str) -> int:
        return self.n_keep if f == "none" else self.n_draw

    @property
    def epochs(self) -> float:
        """Passes over n_keep training samples per generation."""
        return (self.steps + self.anneal_steps) * self.batch_size / self.n_keep


# Quick scale, on one CPU core: the 2D runs took 19 minutes (10 trainings of about 100 s: generation 0
# is shared by the filters); the digits 7 trainings of about 100 s each when the core is not shared.
# Without the low-learning-rate phase at the end, a 2D generation at this budget put most samples
# beyond 6 sigma (measured: 49% at 4,000 steps, 14% at 8,000, 3% after 1,000 more at lr 1e-4).
RECIPES: dict[str, CollapseRecipe] = {
    "collapse_2d": CollapseRecipe("2d_grid", generations=4, n_keep=10_000, n_draw=12_500, steps=5_500,
                                  anneal_steps=1_000, width=64),
    "collapse_digits": CollapseRecipe("digits", generations=3, n_keep=1_800, n_draw=2_250, steps=2_500,
                                      anneal_steps=500, width=256, batch_size=256, beta_start=2e-4,
                                      beta_end=0.04, window=(100, 150), n_store=64),
}
# Longer runs over seeds (issue 14): the 2D grid for 20 generations, where the paper sees it
# collapse toward one mode (Fig. 9, T = 500); the digits for 5 generations (the paper's MNIST
# count) with Hal after the fact over t = 100 to 150, as the paper filters MNIST.
for _seed in (0, 1):
    RECIPES[f"collapse_2d_g20_s{_seed}"] = dataclasses.replace(RECIPES["collapse_2d"], generations=20, seed=_seed,
                                                               data_seed=_seed, n_store=1_000)
for _seed in (0, 1, 2):
    RECIPES[f"collapse_digits_after_s{_seed}"] = dataclasses.replace(RECIPES["collapse_digits"], generations=5,
                                                                     seed=_seed, hal_after=6)
NAMES = tuple(RECIPES)


def paper_recipe(name: str) -> CollapseRecipe:
    """The paper's sizes, for a GPU. 2D: 100,000 kept of 102,500 drawn per generation (paper
    Sec. 6), the paper's width 128, batch 10,000, at least 10 generations. Digits: at least 5 generations of
    60,000 kept of 65,000 drawn (the paper's MNIST counts; the data are still the 8 x 8 digits)."""
    rec = recipe(name)
    if rec.data == "2d_grid":
        return dataclasses.replace(rec, generations=max(rec.generations, 10), n_keep=100_000, n_draw=102_500,
                                   steps=20_000, anneal_steps=2_000, width=128, batch_size=10_000, n_store=5_000,
                                   sample_chunk=20_000)
    return dataclasses.replace(rec, generations=max(rec.generations, 5), n_keep=60_000, n_draw=65_000, steps=20_000,
                               anneal_steps=2_000, batch_size=1_000, n_store=64, sample_chunk=10_000)


def recipe(name: str) -> CollapseRecipe:
    check_choice("name", name, RECIPES)
    return RECIPES[name]


def train_generation(rec: CollapseRecipe, model: nn.Module, data: torch.Tensor, generation: int,
                     steps: int | None = None, progress: bool = True) -> Iterator[TrainStep]:
    """One generation's training: rec.steps at rec.lr, then rec.anneal_steps at rec.anneal_lr
    (each phase seeded from (rec.seed, generation)); `steps` stops after that many steps."""
    total = steps if steps is not None else rec.steps + rec.anneal_steps
    phases = [(rec.steps, rec.lr, 2), (rec.anneal_steps, rec.anneal_lr, 4)]
    done = 0
    for n, lr, stream in phases:
        n = min(n, total - done)
        if n <= 0:
            break
        for step in train(model, data, rec.schedule(), n, rec.batch_size, lr=lr,
                          seed=generation_seed(rec.seed, generation, stream), progress=progress):
            yield TrainStep(done + step.step, step.loss)
        done += n


def train_fn(rec: CollapseRecipe, progress: bool = True):
    """A train_fn for recursive_training: train_generation in full; returns {'loss': the mean
    of the last 100 losses}."""

    def fn(model: nn.Module, data: torch.Tensor, generation: int) -> dict:
        losses = [s.loss for s in train_generation(rec, model, data, generation, progress=progress)]
        return {"loss": mean_last(losses)}

    return fn


def fresh_model(rec: CollapseRecipe, generation: int) -> ToyMLP:
    """Generation g's freshly initialised model, as recursive_training makes it (the CPU
    generator seeded from (rec.seed, g))."""
    return generation_model(rec.model, rec.seed, generation)


def first_losses(rec: CollapseRecipe, n: int = N_FIRST_LOSSES) -> list[float]:
    """The losses of generation 0's first n training steps (what a manifest records)."""
    return [s.loss for s in train_generation(rec, fresh_model(rec, 0), rec.real_data(), 0, n, progress=False)]


class _Gen0Cache:
    """A train_fn that trains generation 0 once per recipe and reuses it: generation 0 sees the
    same data, initial weights and seeds under every filter, so its trained weights are the
    same. It is kept in memory, and in `path` (if given) for a later run. Later generations
    always train. Records the losses of generation 0."""

    def __init__(self, rec: CollapseRecipe, path: Path | None, progress: bool) -> None:
        self.rec, self.path, self.progress = rec, path, progress
        self.first_losses: list[float] | None = None
        self._gen0: tuple[dict, float] | None = None  # trained weights and loss

    def __call__(self, model: nn.Module, data: torch.Tensor, generation: int) -> dict:
        key = {k: v for k, v in dataclasses.asdict(self.rec).items() if k not in ("filters", "generations")}
        if generation == 0 and self._gen0 is None and self.path is not None and self.path.is_file():
            state = load_checkpoint(self.path)
            if state["recipe"] == repr(key):
                self._gen0 = state["model"], float(state["loss"])
                self.first_losses = state["first_losses"].tolist()
        if generation == 0 and self._gen0 is not None:
            model.load_state_dict(self._gen0[0])
            return {"loss": self._gen0[1]}
        losses = [s.loss for s in train_generation(self.rec, model, data, generation, progress=self.progress)]
        loss = mean_last(losses)
        if generation == 0:
            self.first_losses = losses[:N_FIRST_LOSSES]
            self._gen0 = {k: v.clone() for k, v in model.state_dict().items()}, loss
            if self.path is not None:
                save_checkpoint(self.path, {"recipe": repr(key), "model": model.state_dict(),
                                            "first_losses": torch.tensor(self.first_losses), "loss": loss})
        return {"loss": loss}


def _draw(rec: CollapseRecipe, model: nn.Module, n: int, seed: int,
          progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples of the model by ancestral sampling, with Hal over rec.window (recorded while
    sampling, or after the fact: rec.hal_after); digits clipped to [-1, 1]."""
    eps_fn, device = model_eps_fn(model), next(model.parameters()).device
    if not rec.hal_after:
        x, hal = sample_with_hal(eps_fn, n, rec.dim, rec.schedule(), seed, rec.window, chunk=rec.sample_chunk,
                                 device=device, progress=progress)
        return (x.clamp(-1, 1) if rec.data == "digits" else x), hal
    x = sample_bank(eps_fn, n, rec.dim, rec.schedule(), seed, chunk=rec.sample_chunk, device=device,
                    progress=progress)
    x = x.clamp(-1, 1) if rec.data == "digits" else x
    hal = hal_after_the_fact(eps_fn, x, rec.schedule(), *rec.window, rec.hal_after, seed=derived_seed(seed, 1),
                             chunk=rec.sample_chunk)
    return x, hal


def sample_fn(rec: CollapseRecipe, progress: bool = True):
    """A sample_fn: _draw seeded per generation."""

    def fn(model: nn.Module, n: int, generation: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _draw(rec, model, n, generation_seed(rec.seed, generation, 3), progress)

    return fn


def classifier(rec: CollapseRecipe, progress: bool = True) -> DigitsNet:
    """The digit classifier of the Frechet distance, trained on all the real digits (seeded)."""
    images, labels = load_digits_images("sklearn")
    return train_digits_classifier(images, labels, steps=rec.classifier_steps, seed=rec.seed, progress=progress)


def metrics_fn(rec: CollapseRecipe, net: DigitsNet | None = None) -> MetricsFn:
    """2D: mixture_metrics (hallucinated fraction, modes covered, evenness). Digits:
    digits_metrics against all the real digits (Frechet distance on net's features, classes
    covered, evenness)."""
    if rec.data == "2d_grid":
        return mixture_metrics(rec.mixture())
    fn = digits_metrics(net, load_digits_images("sklearn")[0])
    return lambda x: fn(x.reshape(len(x), 1, 8, 8))


def run(rec: CollapseRecipe, filter: str, work_dir: str | Path | None = None, net: DigitsNet | None = None,
        device: torch.device | str = "cpu", progress: bool = True, train_fn=None) -> Iterator[Generation]:
    """recursive_training with the recipe and one filter (resumable in work_dir/filter)."""
    train_fn = train_fn if train_fn is not None else _Gen0Cache(rec, None, progress)
    return recursive_training(
        rec.real_data(), lambda: rec.model().to(device), train_fn, sample_fn(rec, progress), metrics_fn(rec, net),
        rec.generations, rec.n_keep, None if filter == "none" else rec.n_draw, filter, rec.seed,
        None if work_dir is None else Path(work_dir) / filter, progress)


def store_draw(rec: CollapseRecipe, model: nn.Module, generation: int,
               progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The n_store samples (and Hal) of a generation's model that the artifact keeps."""
    x, hal = _draw(rec, model, rec.n_store, generation_seed(rec.store_seed, generation, 5), progress)
    return x.cpu(), hal.cpu()


def run_all(rec: CollapseRecipe, work_dir: str | Path | None = None, device: torch.device | str = "cpu",
            progress: bool = True) -> dict:
    """Every filter's run: {"runs": {filter: {"metrics": [...], "seconds": [...], "samples":
    (G, n_store, dim), "hal": (G, n_store)}}, "first_losses", "classifier" (digits: its
    state dict), "resumed_seconds" (the recorded seconds of the generations loaded from
    work_dir)}. What build writes and what a chapter at paper scale computes live."""
    net = classifier(rec, progress) if rec.data == "digits" else None
    train_fn = _Gen0Cache(rec, None if work_dir is None else Path(work_dir) / "generation0.pt", progress)
    runs, resumed_seconds = {}, 0.0
    for f in rec.filters:
        metrics, seconds, samples, hals = [], [], [], []
        for g in run(rec, f, work_dir, net, device, progress, train_fn):
            metrics.append(g.metrics)
            seconds.append(round(g.seconds, 1))
            resumed_seconds += g.seconds if g.resumed else 0.0
            x, hal = store_draw(rec, g.model, g.generation)
            samples.append(x)
            hals.append(hal)
        runs[f] = {"metrics": metrics, "seconds": seconds, "samples": torch.stack(samples), "hal": torch.stack(hals)}
    if train_fn.first_losses is None:  # every generation 0 was resumed from the filters' work folders
        train_fn.first_losses = first_losses(rec)
    return {"runs": runs, "first_losses": train_fn.first_losses,
            "classifier": None if net is None else net.state_dict(), "resumed_seconds": resumed_seconds}


def _recipe_from(d: dict) -> CollapseRecipe:
    d = dict(d)
    d.update(window=tuple(d["window"]), filters=tuple(d["filters"]))
    return CollapseRecipe(**d)


def load(name: str, art_dir: str | Path | None = None, verify: bool = True) -> dict:
    """A shipped run: {"recipe", "manifest", "metrics" {filter: [per generation]}, "samples"
    {filter: (G, n_store, dim)}, "hal" {filter: (G, n_store)}, "classifier" (digits: a
    DigitsNet in eval mode, else None)}. verify=True checks the sha256 first."""
    check_choice("name", name, RECIPES)
    art_dir = Path(art_dir) if art_dir is not None else ARTIFACT_DIR
    manifest = verified_manifest(name, art_dir, verify)
    state = torch.load(art_dir / manifest["file"], map_location="cpu", weights_only=True)
    net = None
    if "classifier" in state:
        net = DigitsNet()
        net.load_state_dict(state["classifier"])
        net.eval()
    return {"recipe": _recipe_from(manifest["recipe"]), "manifest": manifest,
            "metrics": manifest["metrics"]["generations"], "samples": state["samples"], "hal": state["hal"],
            "classifier": net}


def collapse_runs(name: str, scale: str = "quick", retrain: bool = False, device: torch.device | str = "cpu",
                  progress: bool = True) -> dict:
    """The runs in the form `load` returns: the shipped artifact at quick scale unless
    retrain=True; run here (on `device`, nothing saved; manifest None) at paper scale or with
    retrain."""
    check_choice("scale", scale, ("quick", "paper"))
    if scale == "quick" and not retrain:
        return load(name)
    rec = recipe(name) if scale == "quick" else paper_recipe(name)
    result = run_all(rec, None, device, progress)
    net = None
    if result["classifier"] is not None:
        net = DigitsNet()
        net.load_state_dict(result["classifier"])
        net.eval()
    runs = result["runs"]
    return {"recipe": rec, "manifest": None, "metrics": {f: r["metrics"] for f, r in runs.items()},
            "samples": {f: r["samples"] for f, r in runs.items()}, "hal": {f: r["hal"] for f, r in runs.items()},
            "classifier": net}
