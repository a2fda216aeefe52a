"""The training-budget study (beyond the paper): the 1D three-mode mixture trained at the
authors' protocol, batch 10,000 and Adam at 1e-3 on 20,000 points (their released script:
10,000 epochs, 20,000 steps), with the network saved at several budgets on the way. Each
snapshot draws its own bank, with Hal over several windows recorded in the same pass, and the
study measures how interpolation and its detection change with training (paper Sec. 4.1, 5).

A bank of a million 1D draws is too large to ship, and most of it is uninformative, so the
artifact keeps what the chapters need: a fine histogram of every draw, every draw farther than
`keep_sigma` from its nearest mode with its Hal, and the first `n_subsample` draws (a uniform
subsample) with theirs; and the metrics, computed on the whole bank before it is dropped.
`python -m mi_lib.artifacts build budget_1d_three` trains (resuming from its work folder),
evaluates each budget once (each saved as it finishes) and writes budget_1d_three.pt and .json.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mi_lib.artifacts import ToyRecipe
from mi_lib.artifacts.compact import compact_bank, histogram_edges
from mi_lib.artifacts.manifest import ARTIFACT_DIR, opening, verified_manifest, write_json
from mi_lib.checkpoints import load_checkpoint, logged_losses, read_losses, save_checkpoint
from mi_lib.checks import check_positive_int
from mi_lib.hal import sample_with_window_hals
from mi_lib.learned import model_eps_fn
from mi_lib.training import train

NAME = "budget_1d_three"


@dataclass(frozen=True)
class BudgetRecipe:
    """The study: ToyRecipe's network, data and schedule at the authors' batch and data size,
    snapshots after each of `budgets` steps, and per snapshot a bank of n_draws (chunks of
    sample_chunk, seeded by sample_seed) with Hal over each of `windows` (sampler step
    indices, 0 the last step)."""

    preset: str = "1d_three"
    n_data: int = 20_000
    batch_size: int = 10_000
    lr: float = 1e-3
    T: int = 1_000
    seed: int = 0
    data_seed: int = 0
    budgets: tuple[int, ...] = (250, 500, 1_000, 1_500, 3_000, 5_000, 10_000, 20_000)
    n_draws: int = 100_000
    sample_seed: int = 1
    sample_chunk: int = 10_000
    windows: tuple[tuple[int, int], ...] = ((0, 9), (0, 14), (0, 19), (10, 24))
    k: float = 6.0
    keep_sigma: float = 3.0
    n_subsample: int = 10_000

    def __post_init__(self) -> None:
        for name in ("n_data", "batch_size", "T", "n_draws", "sample_chunk", "n_subsample"):
            check_positive_int(name, getattr(self, name))
        if not self.budgets or list(self.budgets) != sorted(set(self.budgets)) or any(
                isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in self.budgets):
            raise ValueError(f"budgets must be a non-empty increasing tuple of positive step counts, "
                             f"got {self.budgets!r}")
        if not 0 < self.keep_sigma < self.k:
            raise ValueError(f"keep_sigma must lie in (0, k = {self.k}), got {self.keep_sigma!r}")

    def toy(self) -> ToyRecipe:
        """The ToyRecipe that trains the network (to the largest budget)."""
        return ToyRecipe(self.preset, n_data=self.n_data, steps=self.budgets[-1], batch_size=self.batch_size,
                         T=self.T, lr=self.lr, seed=self.seed, data_seed=self.data_seed)


RECIPE = BudgetRecipe()


def train_snapshots(rec: BudgetRecipe, work_dir: Path, device: str = "cpu",
                    progress: bool = True) -> tuple[list[float], float]:
    """Train to the last budget (resuming from work_dir/train.pt), saving the weights after
    each budget to work_dir/snapshot_STEPS.pt. Returns the loss of every step (also resumed)
    and the training seconds of this and earlier invocations (NaN where a log kept none)."""
    toy = rec.toy()
    model = toy.model().to(device)
    log_file, budgets = work_dir / "losses.pt", set(rec.budgets)
    steps = train(model, toy.data(), toy.schedule(), steps=toy.steps, batch_size=rec.batch_size, lr=rec.lr,
                  seed=rec.seed, checkpoint=work_dir / "train.pt", save_every=250, progress=progress)
    for step in logged_losses(steps, log_file, toy.steps):
        if step.step in budgets:
            save_checkpoint(work_dir / f"snapshot_{step.step}.pt", {k: v.cpu() for k, v in model.state_dict().items()})
    return read_losses(log_file)


def evaluate(rec: BudgetRecipe, state: dict, device: str = "cpu", progress: bool = True) -> dict:
    """One snapshot's bank, kept in the artifact's compact form, and its metrics: the k-sigma
    rate with its interval and, per window, the AUROC of Hal and the operating point that
    removes 95% of the hallucinations (paper Sec. 5: 95% removed, 98% kept in 1D)."""
    toy = rec.toy()
    model = toy.model()
    model.load_state_dict(state)
    model.to(device).eval()
    x, hals = sample_with_window_hals(model_eps_fn(model), rec.n_draws, 1, toy.schedule(), rec.sample_seed,
                                      list(rec.windows), chunk=rec.sample_chunk, device=device, progress=progress)
    hal = torch.stack([hals[w].cpu().float() for w in rec.windows])  # (windows, n)
    bank = compact_bank(x.cpu(), hal, toy.mixture(), rec.windows, k=rec.k, keep_sigma=rec.keep_sigma,
                        n_subsample=rec.n_subsample, kept=0.98)
    return {**bank, "tail_x": bank["tail_x"].reshape(-1), "sub_x": bank["sub_x"].reshape(-1)}


def build_budget(name: str, out_dir: str | Path, work_dir: str | Path, rec: BudgetRecipe | None = None,
                 device: str = "cpu", progress: bool = True) -> dict:
    """Train with snapshots, evaluate each budget (once: each result is saved in work_dir as it
    finishes), and write NAME.pt and NAME.json into out_dir. Returns the manifest."""
    rec = rec if rec is not None else RECIPE
    out_dir, work_dir = Path(out_dir), Path(work_dir) / name
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp, wanted = work_dir / "recipe.json", json.loads(json.dumps(dataclasses.asdict(rec)))
    if stamp.is_file() and json.loads(stamp.read_text()) != wanted:
        raise ValueError(f"work_dir {str(work_dir)!r} holds a study of another recipe; pass a fresh work_dir")
    stamp.write_text(json.dumps(wanted))
    losses, train_secs = train_snapshots(rec, work_dir, device, progress)
    results = {}
    for b in rec.budgets:
        done = work_dir / f"eval_{b}.pt"
        if not done.is_file():
            t0 = time.time()
            result = evaluate(rec, load_checkpoint(work_dir / f"snapshot_{b}.pt"), device, progress)
            save_checkpoint(done, result | {"seconds": time.time() - t0})
        results[b] = load_checkpoint(done)
    path = out_dir / f"{name}.pt"
    edges = torch.tensor(histogram_edges(rec.toy().mixture())[:2])
    save_checkpoint(path, {"losses": torch.tensor(losses), "edges": edges,
                           # clone: a slice saved as it is would carry its whole bank's storage
                           "budgets": {b: {k: v.clone() for k, v in r.items() if k not in ("metrics", "seconds")}
                                       for b, r in results.items()}})
    manifest = {**opening(name, rec, path),
                "metrics": {str(b): r["metrics"] | {"eval_seconds": round(float(r["seconds"]), 1)}
                            for b, r in results.items()},
                "built_with": {"torch": torch.__version__, "python": platform.python_version(), "device": device,
                               "threads": torch.get_num_threads(),
                               "train_seconds": round(train_secs, 1) if math.isfinite(train_secs) else None,
                               "sample_seconds": round(sum(float(r["seconds"]) for r in results.values()), 1)}}
    write_json(out_dir / f"{name}.json", manifest)
    return manifest


def load_budget(name: str = NAME, art_dir: str | Path | None = None, verify: bool = True) -> dict:
    """The study as built: {"losses", "edges", "budgets": {steps: {"histogram", "tail_x",
    "tail_hal", "sub_x", "sub_hal", "metrics"}}, "manifest", "recipe"}."""
    art_dir = Path(art_dir) if art_dir is not None else ARTIFACT_DIR
    manifest = verified_manifest(name, art_dir, verify)
    state = torch.load(art_dir / f"{name}.pt", map_location="cpu", weights_only=True)
    args = dict(manifest["recipe"])
    args.update(budgets=tuple(args["budgets"]), windows=tuple(tuple(w) for w in args["windows"]))
    for b, r in state["budgets"].items():
        r["metrics"] = manifest["metrics"][str(b)]
    return {**state, "manifest": manifest, "recipe": BudgetRecipe(**args)}
