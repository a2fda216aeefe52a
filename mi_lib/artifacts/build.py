"""The build command's machinery (`python -m mi_lib.artifacts build NAME`): for each kind of
artifact, a build function `build(name, options)` that runs its recipe and writes its files and
manifest (mi_lib.artifacts.manifest). Process pools, caches and resumable work folders live
here, not in what the chapters import. A new kind needs a recipe, a loader and one entry in KINDS.
"""

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

from mi_lib.artifacts import (
    N_FIRST_LOSSES,
    RECIPES,
    budget,
    collapse,
    image_banks,
    image_build,
    protocol,
    recipe,
    shapes_windows,
    train_and_sample,
)
from mi_lib.artifacts.manifest import ARTIFACT_DIR, opening, write_json
from mi_lib.checkpoints import save_checkpoint
from mi_lib.metrics import hallucination_rate
from mi_lib.training import mean_last


class BuildOptions(NamedTuple):
    """How to build: where the files go (out_dir) and where a long run keeps its resumable state
    (work_dir); the device; processes that sample a CPU bank (jobs); progress bars; and, for the
    image models only, a time box in minutes and recipe fields to replace (overrides)."""

    out_dir: Path = ARTIFACT_DIR
    work_dir: Path = Path(".artifact-work")
    device: str = "cpu"
    jobs: int = 1
    progress: bool = True
    minutes: float | None = None
    overrides: dict = {}


class Kind(NamedTuple):
    """A kind of artifact: the names it builds and how to build one of them: build(name, options)."""

    names: tuple[str, ...]
    build: Callable[[str, BuildOptions], dict]
    time_box: bool = False  # whether it takes --minutes and --set


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


# --- recursive-training runs ---------------------------------------------------------------------


def build_collapse(name: str, out_dir: str | Path, work_dir: str | Path, rec: collapse.CollapseRecipe | None = None,
                   progress: bool = True, device: torch.device | str = "cpu") -> dict:
    """Run the recipe's filters (resuming from work_dir/name), and write NAME.pt (samples and
    Hal per filter and generation; the digit classifier) and NAME.json, its manifest, into
    out_dir atomically. Returns the manifest."""
    rec = rec if rec is not None else collapse.recipe(name)
    out_dir = Path(out_dir)
    start = time.time()
    with torch.random.fork_rng(devices=[]):
        result = collapse.run_all(rec, Path(work_dir) / name, device, progress)
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


def _toy(name: str, o: BuildOptions) -> dict:
    return build_toy(name, o.out_dir, o.progress, o.device)


def _image(name: str, o: BuildOptions) -> dict:
    rec = image_banks.image_model(name).recipe
    return image_build.build_image(name, o.out_dir, o.work_dir, image_build.with_fields(rec, o.overrides), o.device,
                                   o.minutes, jobs=o.jobs, progress=o.progress)


def _shapes_windows(name: str, o: BuildOptions) -> dict:
    bank = Path(o.out_dir) if (Path(o.out_dir) / "shapes.json").is_file() else None
    return shapes_windows.build_shapes_windows(o.out_dir, o.work_dir, bank, o.device, o.jobs, o.progress)


def _budget(name: str, o: BuildOptions) -> dict:
    return budget.build_budget(name, o.out_dir, o.work_dir, device=o.device, progress=o.progress)


def _protocol(name: str, o: BuildOptions) -> dict:
    return protocol.build_protocol(name, o.out_dir, o.work_dir, device=o.device, progress=o.progress)


def _collapse(name: str, o: BuildOptions) -> dict:
    return build_collapse(name, o.out_dir, o.work_dir, progress=o.progress, device=o.device)


KINDS: dict[str, Kind] = {
    "toy": Kind(tuple(RECIPES), _toy),
    "shapes": Kind(("shapes",), _image, time_box=True),
    "shapes_windows": Kind((shapes_windows.NAME,), _shapes_windows),
    "hands": Kind(("hands_gapped", "hands_continuous"), _image, time_box=True),
    "budget": Kind((budget.NAME,), _budget),
    "protocol": Kind(protocol.NAMES, _protocol),
    "collapse": Kind(collapse.NAMES, _collapse),
}


def kind_of(name: str) -> str:
    """The kind that builds artifact `name`."""
    for kind, k in KINDS.items():
        if name in k.names:
            return kind
    raise ValueError(f"name must be an artifact of some kind ({', '.join(n for k in KINDS.values() for n in k.names)})"
                     f", got {name!r}")
