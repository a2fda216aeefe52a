"""Saving and loading training state: atomic writes, safe loads."""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import torch


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call write(f) on a temporary file beside `path`, then rename it into place, so an
    interrupted write never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, state: dict) -> None:
    """torch.save `state` to `path` atomically (see atomic_write)."""
    atomic_write(path, lambda f: torch.save(state, f))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with weights_only=True: tensors and plain containers, no code."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path must be an existing checkpoint file, got {str(path)!r}")
    return torch.load(path, map_location=map_location, weights_only=True)


def logged_losses(steps: Iterable[Any], log_file: str | Path, total: int, every: int = 250) -> Iterator[Any]:
    """Yields each step of a training loop (each with .step, counted from 1, and .loss) and keeps
    in log_file {"losses": the loss of every step so far, "seconds": the training seconds of this
    and earlier invocations}, saved every `every` steps and at step `total`, so a resumed run
    carries both. An earlier log without "seconds" leaves them NaN: unknown, not zero."""
    log_file, start = Path(log_file), time.time()
    log = load_checkpoint(log_file) if log_file.is_file() else {"losses": torch.zeros(0), "seconds": 0.0}
    losses, earlier = log["losses"].tolist(), float(log.get("seconds", math.nan))
    for step in steps:
        del losses[step.step - 1 :]  # in place: a resumed run overwrites what it redoes
        losses.append(step.loss)
        if step.step % every == 0 or step.step == total:  # saved before the caller sees the step, so a
            # loop that stops there has it logged
            save_checkpoint(log_file, {"losses": torch.tensor(losses), "seconds": earlier + time.time() - start})
        yield step


def read_losses(log_file: str | Path) -> tuple[list[float], float]:
    """The losses and training seconds that logged_losses kept in log_file (seconds NaN if unknown)."""
    log = load_checkpoint(log_file)
    return log["losses"].tolist(), float(log.get("seconds", math.nan))
