"""The grader's own inputs to each exercise, so that no student can change what is checked.

The instructor's chapter (book/CHAPTER.ipynb, solutions and all: trusted code) runs once per
grading run in a kernel of its own, outside any sandbox, with each check cell replaced by one
that saves the names its exercise reads (mi_lib.exercises: Exercise.inputs). The grader checks
every student's answers against these values, in its own process; a student who redefines an
input (the schedule, say) only changes what their own kernel computes. Cached by the notebook's
sha256 in the grading run's folder, which no sandbox can see.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mi_lib.checkpoints import atomic_write
from mi_lib.exercises import EXERCISES
from mi_lib.teaching import exercise_of

# Live widgets and progress bars are for people at a notebook (a widget can stall a notebook
# client, see mi_lib.widgets); grading runs without them, in the grader's kernels and the students'.
RUN_ENV = {"MI_WIDGETS": "0", "TQDM_DISABLE": "1"}
CAPTURE = "import torch as _mi_torch\n_mi_torch.save({{n: globals()[n] for n in {names!r}}}, {path!r})\n"


def kernel_env() -> dict[str, str]:
    """What grading kernels run with: RUN_ENV, this mi_lib first on the path, one thread unless
    OMP_NUM_THREADS says otherwise, and the scale (MI_SCALE) if set."""
    env = {**RUN_ENV, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if "MI_SCALE" in os.environ:
        env["MI_SCALE"] = os.environ["MI_SCALE"]
    return env


def default_book() -> Path | None:
    """The book's chapters beside this mi_lib (a source checkout), or None (an installed package)."""
    book = Path(__file__).resolve().parents[1] / "book"
    return book if book.is_dir() else None


def chapter_path(chapter: str, book: Path) -> Path:
    """book/CHAPTER.ipynb; a ValueError if it is not there."""
    path = Path(book) / f"{chapter}.ipynb"
    if not path.is_file():
        raise ValueError(f"book must be the folder of the book's chapters (with their solutions), got {str(book)!r}, "
                         f"which has no {chapter}.ipynb")
    return path


def run_capturing(path: Path, folder: Path, timeout: float) -> None:
    """Run chapter `path` in its folder with each check cell saving its exercise's inputs to
    folder/LABEL.pt; a RuntimeError naming the cell if the chapter itself fails."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        label = (exercise_of(cell) or {}).get("label")
        if cell.cell_type == "code" and label in EXERCISES:
            cell.source = CAPTURE.format(names=EXERCISES[label].inputs, path=str(folder / f"{label}.pt"))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(env={**os.environ, **kernel_env()}, stderr=subprocess.DEVNULL)
    except CellExecutionError as exc:
        raise RuntimeError(f"the reference run of {path} failed, so its exercises cannot be graded: "
                           f"{str(exc).strip().splitlines()[-1]}") from None


def reference_inputs(chapter: str, book: Path, cache: Path, timeout: float = 1800.0) -> dict[str, dict[str, object]]:
    """{label: {input name: value}} for every exercise of `chapter`, as the instructor's
    book/CHAPTER.ipynb computes them (run once and cached in `cache`, see the module's docstring)."""
    path = chapter_path(chapter, book)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    target = Path(cache) / f"{chapter}-{digest}.pt"
    if target.is_file():
        return torch.load(target, weights_only=False)  # written by the grader alone
    Path(cache).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=cache, prefix=f"{chapter}-run-"))
    try:
        run_capturing(path, folder, timeout)
        inputs = {ex.label: torch.load(folder / f"{ex.label}.pt", weights_only=False)
                  for ex in EXERCISES.values() if ex.chapter == chapter and (folder / f"{ex.label}.pt").is_file()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    atomic_write(target, lambda f: torch.save(inputs, f))
    return inputs


class Inputs:
    """reference_inputs of each chapter, computed when a notebook of it is first graded (once,
    whichever thread asks first; the others wait for it)."""

    def __init__(self, book: Path, cache: Path, log: Callable[[str], None] = print) -> None:
        self.book, self.cache, self.log = Path(book), Path(cache), log
        self._done: dict[str, dict[str, dict]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def __getitem__(self, chapter: str) -> dict[str, dict]:
        with self._lock:
            lock = self._locks.setdefault(chapter, threading.Lock())
        with lock:
            if chapter not in self._done:
                self.log(f"the grader's inputs to {chapter}: from {chapter_path(chapter, self.book)}")
                self._done[chapter] = reference_inputs(chapter, self.book, self.cache)
            return self._done[chapter]
