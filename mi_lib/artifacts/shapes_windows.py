"""Hal of the Simple Shapes bank over several windows (paper Sec. 5), so that the window can be
chosen the way the paper chose it for the toy data: by sweeping it.

The shipped bank (mi_lib.artifacts.shapes) records Hal over the paper's window only. This
artifact draws the bank again with the same weights and the same noise, chunk by chunk, which
gives the same images up to float rounding (the build checks that each reads as the bank's
image does, so the bank's labels hold, and records how many pixels moved),
and records Hal over each of WINDOWS in that one pass. `python -m mi_lib.artifacts build
shapes_windows` writes shapes_windows.npz (Hal, windows) and its manifest; it samples in parts
saved to its work folder, so an interrupted build resumes.
"""

from __future__ import annotations

import io
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mi_lib.artifacts.manifest import ARTIFACT_DIR, file_entry, verified_manifest, write_json
from mi_lib.artifacts.shapes import ShapesRecipe, from_uint8, load_shapes, to_uint8
from mi_lib.checkpoints import atomic_write, load_checkpoint, save_checkpoint
from mi_lib.hal import sample_chunks
from mi_lib.learned import model_eps_fn
from mi_lib.schedules import window_steps
from mi_lib.shapes import read_image

NAME = "shapes_windows"
# Original times t, 150 steps each like the paper's (700..850), from pure noise to the image.
WINDOWS = ((850, 999), (700, 850), (550, 700), (400, 550), (250, 400), (100, 250), (0, 100))
PART = 200  # images sampled between two saves


def sample_windows(model: nn.Module, rec: ShapesRecipe, n: int | None = None, first_chunk: int = 0,
                   device: torch.device | str = "cpu", progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """sample_shapes's images with the same arguments, and their Hal over each of WINDOWS
    (len(WINDOWS), n), recorded in the same pass."""
    sched = rec.sampling_schedule()
    images, hals, _ = sample_chunks(
        model_eps_fn(model.to(device)), n or rec.n_samples, (1, 64, 64), sched, seed=rec.sample_seed,
        chunk=rec.sample_chunk, windows=[window_steps(sched, *w) for w in WINDOWS], first_chunk=first_chunk,
        device=device, variance=rec.variance, clip_x0=rec.clip_x0, progress=progress)
    return images, torch.stack(hals)


def build_shapes_windows(out_dir: str | Path, work_dir: str | Path, art_dir: str | Path | None = None,
                         device: torch.device | str = "cpu", jobs: int = 1, progress: bool = True) -> dict:
    """Redraw the shipped bank (of art_dir, default the package's) part by part with Hal over
    every window, check each part's images against the bank, and write NAME.npz and NAME.json
    into out_dir. Returns the manifest."""
    from mi_lib.artifacts.image_banks import sample_in_processes  # it imports this module

    shapes = load_shapes(art_dir)
    rec, bank = shapes["recipe"], to_uint8(shapes["images"])
    if PART % rec.sample_chunk:
        raise ValueError(f"PART ({PART}) must be a multiple of the bank's sample_chunk ({rec.sample_chunk})")
    out_dir, work_dir = Path(out_dir), Path(work_dir) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp = shapes["manifest"]["files"]["shapes.pt"]["sha256"]
    hals, secs, moved, largest = [], 0.0, 0, 0
    for i, start in enumerate(range(0, rec.n_samples, PART)):
        done = work_dir / f"part_{i}.pt"
        if not done.is_file() or load_checkpoint(done)["weights"] != stamp:
            t0, n = time.time(), min(PART, rec.n_samples - start)
            images, hal = sample_in_processes(shapes["model"], rec, n, start // rec.sample_chunk, device, progress,
                                              jobs, sample=sample_windows)
            new, old = to_uint8(images.cpu()), bank[start : start + n]
            if [read_image(im).label for im in from_uint8(new)] != [read_image(im).label for im in from_uint8(old)]:
                raise ValueError(f"images {start}..{start + n - 1} read differently from the shipped bank's: the "
                                 "weights or the sampler changed since the bank was drawn; rebuild shapes first")
            diff = np.abs(new.astype(np.int16) - old.astype(np.int16))
            save_checkpoint(done, {"hal": hal.float().cpu(), "seconds": time.time() - t0, "weights": stamp,
                                   "pixels_moved": int((diff > 0).sum()), "largest_move": int(diff.max())})
        part = load_checkpoint(done)
        hals.append(part["hal"])
        secs += float(part["seconds"])
        moved, largest = moved + part["pixels_moved"], max(largest, part["largest_move"])
    hal = torch.cat(hals, dim=1).numpy()
    buf = io.BytesIO()
    np.savez_compressed(buf, hal=hal, windows=np.array(WINDOWS, dtype=np.int64))
    path = out_dir / f"{NAME}.npz"
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    manifest = {"name": NAME, "command": f"python -m mi_lib.artifacts build {NAME}",
                "recipe": {"bank": "shapes", "bank_weights_sha256": stamp, "windows": [list(w) for w in WINDOWS]},
                "files": {path.name: file_entry(path)},
                "metrics": {"pixels_moved": moved, "largest_move_grey_levels": largest, "n_images": rec.n_samples},
                "built_with": {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
                               "sample_jobs": jobs, "seconds": round(secs, 1)}}
    write_json(out_dir / f"{NAME}.json", manifest)
    return manifest


def load_shapes_windows(art_dir: str | Path | None = None, verify: bool = True) -> dict:
    """{"hal": (len(windows), n) tensor, "windows": [(t_lo, t_hi), ...] in original times,
    "manifest"}; row i of "hal" belongs to image i of the shapes bank."""
    art_dir = Path(art_dir) if art_dir is not None else ARTIFACT_DIR
    manifest = verified_manifest(NAME, art_dir, verify)
    with np.load(art_dir / f"{NAME}.npz", allow_pickle=False) as f:
        hal, windows = torch.from_numpy(f["hal"]), [tuple(int(v) for v in w) for w in f["windows"]]
    return {"hal": hal, "windows": windows, "manifest": manifest}
