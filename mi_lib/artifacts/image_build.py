"""The build of the image models (Simple Shapes, and the gapped and continuous hands): train
the recipe's U-Net, and at each snapshot step draw a bank from its EMA weights with Hal over
every window of the model's sweep in one pass, label each image with the model's counter, and
write a complete artifact (weights, bank, manifest), so that the model's detection can be read
against its training budget (paper Sec. 5, measured at several budgets).

`minutes` time-boxes a build: training stops at the first checkpoint step from which the last
bank, drawn again, would not fit, and that step's bank is the last. Everything is resumable
from the work folder: the training checkpoint, the loss log and each snapshot's bank. For
example::

    python -m mi_lib.artifacts build shapes --device cuda \\
        --minutes 8 --set steps=40000
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from mi_lib import compute
from mi_lib.artifacts import hands as H
from mi_lib.artifacts.image_banks import (
    SHAPES_LABELS,
    SNAPSHOTS,
    ImageModel,
    bank_path,
    image_model,
    snapshot_bank,
)
from mi_lib.artifacts.manifest import file_entry, write_json
from mi_lib.checkpoints import atomic_write, load_checkpoint, logged_losses, read_losses, save_checkpoint
from mi_lib.checks import check_positive, check_positive_int
from mi_lib.training import mean_last, train

# The fields of an image recipe that training depends on; `steps` is left out (see claim_work_dir).
TRAINING_FIELDS = ("poses", "n_data", "data_seed", "size", "base", "mults", "n_res", "patch", "T", "batch_size",
                   "lr", "prediction", "ema_decay", "seed")


def training_fields(rec) -> dict:
    """The fields of an image recipe (shapes or hands) that its training checkpoint depends on."""
    return {k: getattr(rec, k) for k in TRAINING_FIELDS if hasattr(rec, k)}


def claim_work_dir(work_dir: Path, name: str, training: dict) -> None:
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


def with_fields(rec, fields: dict):
    """The recipe with `fields` replaced (a field's list value becomes a tuple, as JSON has no
    tuples); an unknown field name is a ValueError that lists the recipe's fields."""
    names = [f.name for f in dataclasses.fields(rec)]
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise ValueError(f"fields must be fields of {type(rec).__name__} ({', '.join(names)}), got {unknown}")
    tupled = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
              for k, v in fields.items()}
    return dataclasses.replace(rec, **tupled)


def command(name: str, rec, minutes: float | None, device: torch.device | str) -> str:
    """The command that builds this recipe: the recipe's fields that differ from the registry's
    as --set options."""
    base = dataclasses.asdict(image_model(name).recipe)
    sets = [f" --set {k}={json.dumps(v, separators=(',', ':'))}" for k, v in dataclasses.asdict(rec).items()
            if base[k] != v and k != "steps"] + ([f" --set steps={rec.steps}"] if base["steps"] != rec.steps else [])
    extra = (f" --device {device}" if str(device) != "cpu" else "") + (f" --minutes {minutes:g}" if minutes else "")
    return f"python -m mi_lib.artifacts build {name}{''.join(sets)}{extra}"


def _label_counts(labels: np.ndarray, shapes: bool) -> dict:
    if shapes:
        return {lab: int((labels == i).sum()) for i, lab in enumerate(SHAPES_LABELS)}
    return H.finger_metrics(labels)["counts"]


def write_artifact(name: str, model: ImageModel, rec, ema_state: dict, losses: list[float],
                   banks: dict[int, dict], out_dir: Path, run: dict) -> dict:
    """NAME.pt (float16 EMA weights, losses), NAME_bank.npz (the last snapshot's bank in the
    layout load_shapes / load_hands read, plus every snapshot's Hal and labels) and NAME.json."""
    steps = sorted(banks)
    last = banks[steps[-1]]
    shapes = name == "shapes"
    rec = dataclasses.replace(rec, steps=int(steps[-1]))
    weights, bank = out_dir / f"{name}.pt", out_dir / f"{name}_bank.npz"
    # On the CPU whatever device trained it: a loader need not map a CUDA storage.
    cpu = {k: v.detach().to("cpu", torch.float16 if v.is_floating_point() else v.dtype) for k, v in ema_state.items()}
    save_checkpoint(weights, {"model": cpu,
                              "losses": torch.tensor(losses[: steps[-1]])})
    windows = np.array(model.windows, dtype=np.int64)
    layout = ({"hal": last["hals"][model.windows.index(rec.hal_window)], "labels": last["labels"]} if shapes
              else {"hal": last["hals"], "fingers": last["labels"], "hal_windows": windows})
    buf = io.BytesIO()
    np.savez_compressed(buf, images=last["images"], **layout, windows=windows, hals=last["hals"],
                        snapshot_steps=np.array(steps), snapshot_hals=np.stack([banks[s]["hals"] for s in steps]),
                        snapshot_labels=np.stack([banks[s]["labels"] for s in steps]))
    atomic_write(bank, lambda f: f.write(buf.getvalue()))
    snaps = [{"step": int(s), "loss_mean_last_250": mean_last(losses[: int(s)], 250),
              "labels": _label_counts(banks[s]["labels"], shapes),
              "auroc": dict(zip((f"{a}-{b}" for a, b in model.windows), banks[s]["aurocs"].tolist(), strict=True)),
              "sample_seconds": round(float(banks[s]["seconds"]), 1)} for s in steps]
    counts = _label_counts(last["labels"], shapes)
    metrics = ({"labels": counts, "hallucination_rate": counts["hallucinated"] / len(last["labels"])} if shapes
               else {"fingers": H.finger_metrics(last["labels"]), "bank_grey_levels": H.BANK_LEVELS})
    manifest = {
        "name": name, "command": run["command"],
        "recipe": dataclasses.asdict(rec),
        "files": {p.name: file_entry(p) for p in (weights, bank)},
        "metrics": {"first_losses": losses[:5], "final_loss_mean_last_250": mean_last(losses[: steps[-1]], 250),
                    "epochs": rec.epochs, **metrics, "snapshots": snaps},
        "budget": {"target_steps": run["target_steps"], "steps": int(steps[-1]), "stopped_by": run["stopped_by"],
                   "minutes": run["minutes"], "windows": [list(w) for w in model.windows]},
        "built_with": {"torch": torch.__version__, "python": platform.python_version(), "device": str(run["device"]),
                       "device_name": run["device_name"], "threads": torch.get_num_threads(),
                       "autocast": run["autocast"], "cuda_graph": run["cuda_graph"],
                       "sample_chunk": rec.sample_chunk, "sample_jobs": run["jobs"],
                       "train_seconds": round(run["train_seconds"], 1) if math.isfinite(run["train_seconds"]) else None,
                       "sample_seconds": round(sum(float(banks[s]["seconds"]) for s in steps), 1),
                       "weights": "float16"},
    }
    write_json(out_dir / f"{name}.json", manifest)
    return manifest


def build_image(name: str, out_dir: str | Path, work_dir: str | Path, rec=None, device: torch.device | str = "cpu",
                minutes: float | None = None, *, snapshots: tuple[int, ...] = SNAPSHOTS, jobs: int = 1,
                progress: bool = True, data: torch.Tensor | None = None, save_every: int = 250,
                autocast: str | None = None) -> dict:
    """Train artifact `name`'s recipe (`rec`, default the registry's: image_model) in work_dir,
    with a bank at each snapshot step up to the recipe's steps and at the last step reached, and
    write the artifact into out_dir after each bank (write_artifact). minutes: the time box of
    the whole build (see the module's docstring). jobs: CPU processes that sample each bank.
    data: the training images, if already rendered. Returns the last manifest."""
    model = image_model(name)
    rec = model.recipe if rec is None else rec
    if type(rec) is not type(model.recipe) or getattr(rec, "name", name) != name:
        raise ValueError(f"rec must be a recipe of {name!r} ({type(model.recipe).__name__}"
                         f"{', poses ' + repr(model.recipe.poses) if name != 'shapes' else ''}), got {rec!r}")
    check_positive_int("jobs", jobs)
    compute.check_autocast(autocast)
    check_positive_int("save_every", save_every)
    if minutes is not None:
        check_positive("minutes", minutes)
    if not snapshots or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 or s % save_every
                            for s in snapshots):
        raise ValueError(f"snapshots must be positive multiples of save_every ({save_every}), got {snapshots!r}")
    if not compute.on_cpu(device) and save_every % compute.READ_EVERY:
        raise ValueError(f"save_every must be a multiple of {compute.READ_EVERY} on a GPU, got {save_every}")
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    claim_work_dir(work_dir, name, training_fields(rec))
    start = time.time()
    deadline = start + 60 * minutes if minutes is not None else math.inf
    net, checkpoint, log_file = rec.model(), work_dir / f"{name}_train.pt", work_dir / f"{name}_losses.pt"
    ema = copy.deepcopy(net)
    reached = int(load_checkpoint(checkpoint)["step"]) if checkpoint.is_file() else 0
    wanted = sorted({s for s in snapshots if s <= rec.steps} | {rec.steps})
    banks = {s: snapshot_bank(model, rec, ema, s, work_dir, name, device, False) for s in wanted
             if s <= reached and bank_path(work_dir, name, s).is_file()}
    reserve = 0.25 * (deadline - start) if minutes is not None else 0.0
    run = {"target_steps": rec.steps, "minutes": minutes, "device": device, "autocast": autocast, "jobs": jobs,
           "cuda_graph": compute.use_graphs(device, None, autocast),
           "command": command(name, rec, minutes, device),
           "stopped_by": "steps", "device_name": torch.cuda.get_device_name(device)
           if torch.device(device).type == "cuda" else platform.processor() or "cpu"}
    net.to(device)
    ema.to(device)
    steps = train(net, rec.data() if data is None else data, rec.schedule(), steps=rec.steps,
                  batch_size=rec.batch_size, lr=rec.lr, seed=rec.seed, checkpoint=checkpoint, save_every=save_every,
                  progress=progress, ema=ema, ema_decay=rec.ema_decay, prediction=rec.prediction, autocast=autocast)

    def finish(step: int) -> dict:
        nonlocal reserve
        t0 = time.time()
        cached = step in banks or bank_path(work_dir, name, step).is_file()
        banks[step] = snapshot_bank(model, rec, ema, step, work_dir, name, device, progress, jobs)
        if not cached:  # what the last bank will take, measured: 30% more, and 5 s to write
            reserve = 1.3 * (time.time() - t0) + 5.0
        losses, secs = read_losses(log_file)
        # The log's seconds run through the banks drawn between its saves: all but the last one's.
        secs -= sum(float(banks[s]["seconds"]) for s in banks if s < step)
        return write_artifact(name, model, rec, ema.state_dict(), losses, banks, out_dir,
                              {**run, "train_seconds": secs})

    for step in logged_losses(steps, log_file, rec.steps, every=save_every):
        reached = step.step
        if reached in wanted:
            finish(reached)
        if reached % save_every == 0 and reached < rec.steps and time.time() + reserve > deadline:
            run["stopped_by"] = f"time box ({minutes:.3g} min)"
            break
    steps.close()
    if reached not in banks and checkpoint.is_file():  # the EMA of the checkpoint the loss log ends at
        ema.load_state_dict(load_checkpoint(checkpoint, map_location=device)["ema"])
    return finish(reached)  # the last bank is cached if drawn already: this rewrites the manifest
