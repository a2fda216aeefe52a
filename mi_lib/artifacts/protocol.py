"""Toy models at the paper's protocol (Sec. 4-5): batch 10,000 and Adam at 1e-3, trained for a
budget chosen from the training-budget study (mi_lib.artifacts.budget), each with a bank large
enough to count its rare hallucinations, Hal over several windows recorded in the same
sampling pass and the bank kept in compact form (mi_lib.artifacts.compact).

`python -m mi_lib.artifacts build protocol_1d_three` trains (resuming from its work folder),
draws the bank in parts of `part` draws (each saved as it finishes, so an interrupted build
loses at most one part) and writes NAME.pt (float16 weights, losses, compact bank) and
NAME.json. The bank is drawn from the float16 weights, so the shipped file redraws it.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mi_lib.artifacts import ToyRecipe
from mi_lib.artifacts.compact import compact_bank, histogram_edges
from mi_lib.artifacts.manifest import ARTIFACT_DIR, opening, verified_manifest, write_json
from mi_lib.checkpoints import load_checkpoint, logged_losses, read_losses, save_checkpoint
from mi_lib.checks import check_choice, check_positive_int
from mi_lib.hal import sample_chunks
from mi_lib.learned import model_eps_fn
from mi_lib.models import ToyMLP
from mi_lib.training import train

WINDOWS_1D = ((0, 9), (0, 14), (0, 19), (10, 24), (0, 49))
WINDOWS_2D = ((0, 4), (0, 8), (0, 14), (0, 19), (10, 24))


@dataclass(frozen=True)
class ProtocolRecipe:
    """A toy model (`toy`: its n_samples draws make the bank, in chunks of sample_chunk from
    sample_seed) with Hal over each of `windows` (sampler step indices, 0 the last step); the
    bank is kept beyond keep_sigma, plus the first n_subsample draws. `kept` is the paper's
    in-support share at its operating point (0.98 in 1D, 0.95 in 2D), `part` the draws
    sampled between two saves."""

    toy: ToyRecipe
    windows: tuple[tuple[int, int], ...] = WINDOWS_1D
    kept: float = 0.98
    k: float = 6.0
    keep_sigma: float = 3.0
    n_subsample: int = 20_000
    part: int = 100_000

    def __post_init__(self) -> None:
        for name in ("n_subsample", "part"):
            check_positive_int(name, getattr(self, name))
        if self.part % self.toy.sample_chunk:
            raise ValueError(f"part must be a multiple of toy.sample_chunk ({self.toy.sample_chunk}), got {self.part}")
        if not 0 < self.keep_sigma < self.k:
            raise ValueError(f"keep_sigma must lie in (0, k = {self.k}), got {self.keep_sigma!r}")

    @classmethod
    def from_dict(cls, d: dict) -> ProtocolRecipe:
        """The recipe a manifest records (dataclasses.asdict of one)."""
        return cls(**{**d, "toy": ToyRecipe(**d["toy"]), "windows": tuple(tuple(w) for w in d["windows"])})


def _toy(preset: str, steps: int, n_draws: int, **kw) -> ToyRecipe:
    return ToyRecipe(preset, n_data=kw.pop("n_data", 50_000), steps=steps, batch_size=10_000, n_samples=n_draws,
                     sample_chunk=10_000, **kw)


# 1D: 5,000 steps of batch 10,000 (1,000 epochs of 50,000 points), where the budget study puts
# the paper's operating point and hallucinations still number ~250 per million draws. 2D: the
# authors' 1D budget of 20,000 steps (they train 100,000 in 2D), where 2D hallucinates often.
_2D = dict(windows=WINDOWS_2D, kept=0.95)


def _rate(preset: str, steps: int, **kw) -> ProtocolRecipe:
    return ProtocolRecipe(_toy(preset, steps, 1_000_000, **kw), windows=((0, 14),), n_subsample=10_000)


_SIZES = (25_000, 100_000, 500_000)
RECIPES: dict[str, ProtocolRecipe] = {
    "protocol_1d_three": ProtocolRecipe(_toy("1d_three", 5_000, 1_000_000)),
    "protocol_2d_grid": ProtocolRecipe(_toy("2d_grid", 20_000, 200_000, n_data=100_000), **_2D),
    "protocol_1d_three_T100": ProtocolRecipe(_toy("1d_three", 5_000, 1_000_000, T=100)),
    "protocol_1d_three_T250": ProtocolRecipe(_toy("1d_three", 5_000, 1_000_000, T=250)),
    "protocol_2d_diamond": ProtocolRecipe(_toy("2d_diamond", 20_000, 200_000, n_data=100_000), **_2D),
    # Mode distance, the number of modes and the training-set size (chapter 3 counts their rates
    # only): the main model's budget, one window and a smaller subsample, to fit the 40 MB.
    **{f"protocol_{preset}": _rate(preset, 5_000) for preset in ("1d_three_far", "1d_four", "1d_two")},
    # Training-set size at the main model's 1,000 epochs (the paper's way: steps grow with the
    # data), and at its 5,000 steps; 50,000 points is the main model in both series.
    **{f"protocol_1d_three_n{n // 1000}k_epochs": _rate("1d_three", n // 10, n_data=n) for n in _SIZES},
    **{f"protocol_1d_three_n{n // 1000}k_steps": _rate("1d_three", 5_000, n_data=n) for n in _SIZES},
    # The main model's recipe with other seeds (data set, initialization, batches): how far the
    # rate moves from one run to the next, which the data-size series is read against.
    **{f"protocol_1d_three_seed{s}": ProtocolRecipe(_toy("1d_three", 5_000, 200_000, seed=s, data_seed=s),
                                                    windows=((0, 14),), n_subsample=10_000) for s in (1, 2)},
}
NAMES = tuple(RECIPES)


def half_rounded(model: ToyMLP) -> ToyMLP:
    """`model` with its weights rounded to float16 and back, in place (what NAME.pt holds)."""
    model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    return model


def _claim(work_dir: Path, rec: ProtocolRecipe) -> None:
    stamp, wanted = work_dir / "recipe.json", json.loads(json.dumps(dataclasses.asdict(rec)))
    if stamp.is_file() and json.loads(stamp.read_text()) != wanted:
        raise ValueError(f"work_dir {str(work_dir)!r} holds a build of another recipe; pass a fresh work_dir")
    write_json(stamp, wanted)


def train_protocol(rec: ProtocolRecipe, work_dir: Path, device: str = "cpu",
                   progress: bool = True) -> tuple[ToyMLP, list[float], float]:
    """The trained network (resumed from work_dir/train.pt), the loss of every step, and the
    training seconds of this and earlier invocations."""
    toy = rec.toy
    model = toy.model().to(device)
    log_file = work_dir / "losses.pt"
    steps = train(model, toy.data(), toy.schedule(), steps=toy.steps, batch_size=toy.batch_size, lr=toy.lr,
                  seed=toy.seed, checkpoint=work_dir / "train.pt", save_every=250, progress=progress)
    for _ in logged_losses(steps, log_file, toy.steps):
        pass
    losses, seconds = read_losses(log_file)
    return model.cpu().eval(), losses, seconds


def draw_bank(rec: ProtocolRecipe, model: ToyMLP, work_dir: Path, device: str = "cpu",
              progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The bank's draws (n, d) and Hal (windows, n), drawn part by part (work_dir/part_I.pt,
    each kept once finished); the parts together are the one sample_chunks call. Also the
    sampling seconds summed over the parts."""
    toy = rec.toy
    eps_fn = model_eps_fn(model.to(device))
    xs, hals, secs = [], [], 0.0
    for i, start in enumerate(range(0, toy.n_samples, rec.part)):
        done = work_dir / f"part_{i}.pt"
        if not done.is_file():
            t0, n = time.time(), min(rec.part, toy.n_samples - start)
            x, hal, _ = sample_chunks(eps_fn, n, toy.mixture().dim, toy.schedule(), seed=toy.sample_seed,
                                      chunk=toy.sample_chunk, windows=list(rec.windows),
                                      first_chunk=start // toy.sample_chunk, device=device, progress=progress)
            save_checkpoint(done, {"x": x.cpu(), "hal": torch.stack([h.cpu().float() for h in hal]),
                                   "seconds": time.time() - t0})
        part = load_checkpoint(done)
        xs.append(part["x"])
        hals.append(part["hal"])
        secs += float(part["seconds"])
    return torch.cat(xs), torch.cat(hals, dim=1), secs


def build_protocol(name: str, out_dir: str | Path = ARTIFACT_DIR, work_dir: str | Path = ".artifact-work",
                   rec: ProtocolRecipe | None = None, device: str = "cpu", progress: bool = True) -> dict:
    """Train, draw the bank from the float16-rounded weights, and write NAME.pt and NAME.json
    into out_dir. Returns the manifest."""
    rec = rec if rec is not None else RECIPES[name]
    out_dir, work_dir = Path(out_dir), Path(work_dir) / name
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    _claim(work_dir, rec)
    model, losses, train_secs = train_protocol(rec, work_dir, device, progress)
    model = half_rounded(model)
    x, hal, sample_secs = draw_bank(rec, model, work_dir, device, progress)
    bank = compact_bank(x, hal, rec.toy.mixture(), rec.windows, k=rec.k, keep_sigma=rec.keep_sigma,
                        n_subsample=rec.n_subsample, kept=rec.kept)
    path = out_dir / f"{name}.pt"
    save_checkpoint(path, {"model": {k: v.half() for k, v in model.state_dict().items()},
                           "losses": torch.tensor(losses),
                           "edges": torch.tensor(histogram_edges(rec.toy.mixture())[:2]),
                           **{k: v for k, v in bank.items() if k != "metrics"}})
    manifest = {**opening(name, rec, path),
                "metrics": {**bank["metrics"], "final_loss_mean_last_100": sum(losses[-100:]) / len(losses[-100:]),
                            "epochs": rec.toy.epochs},
                "built_with": {"torch": torch.__version__, "python": platform.python_version(), "device": device,
                               "threads": torch.get_num_threads(), "train_seconds": round(train_secs, 1),
                               "sample_seconds": round(sample_secs, 1), "weights": "float16"}}
    write_json(out_dir / f"{name}.json", manifest)
    return manifest


def load_protocol(name: str, art_dir: str | Path | None = None, verify: bool = True) -> dict:
    """A built artifact: {"model" (eval, CPU), "losses", "edges", "histogram", "tail_x",
    "tail_hal", "sub_x", "sub_hal", "metrics", "manifest", "recipe"}."""
    art_dir = Path(art_dir) if art_dir is not None else ARTIFACT_DIR
    manifest = verified_manifest(name, art_dir, verify)
    state = torch.load(art_dir / manifest["file"], map_location="cpu", weights_only=True)
    rec = ProtocolRecipe.from_dict(manifest["recipe"])
    model = rec.toy.model()
    model.load_state_dict({k: v.float() for k, v in state.pop("model").items()})
    return {**state, "model": model.eval(), "metrics": manifest["metrics"], "manifest": manifest, "recipe": rec}


def protocol_model(name: str, scale: str = "quick", device: str = "cpu", progress: bool = True,
                   cache_dir: str | Path | None = None) -> dict:
    """load_protocol's artifact: the shipped one at quick scale; at paper scale built afresh
    by build_protocol on `device` into cache_dir (default ~/.cache/mi_lib/protocol, resumable
    there), which takes hours on a CPU and minutes on a GPU."""
    check_choice("scale", scale, ("quick", "paper"))
    check_choice("name", name, RECIPES)
    if scale == "quick":
        return load_protocol(name)
    cache = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "mi_lib" / "protocol"
    build_protocol(name, cache, cache / "work", device=device, progress=progress)
    return load_protocol(name, cache)
