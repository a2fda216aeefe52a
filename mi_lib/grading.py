"""Grading: run every notebook that students handed back and record who passed which exercise.

The submissions folder holds one folder per student, named as the grade sheet should name the
student, with the chapters' student versions as that student completed them:

    submissions/
        ada/diffusion.ipynb
        ada/mixture_scores.ipynb
        grace/diffusion.ipynb
        ...

Each notebook runs top to bottom in a fresh kernel, in its own folder, with a time limit for the
whole notebook. A cell that raises does not stop the run, so later exercises are still graded.
Each check cell is reset to its canonical source, check("<label>", globals()), so that an edited
check grades nothing but the answers; a notebook that hangs or kills its kernel is reported and
its exercises not reached fail. The grade sheet has one row per student and one column per
exercise of every chapter handed in by anyone: "pass", or "fail: " and the first line of the
check's message.

    python -m mi_lib.teaching grade submissions/ --out grades.csv [--timeout 600] [--jobs 2]

Grading runs the students' code as the user who runs it: run it where that is acceptable.
"""

from __future__ import annotations

import csv
import multiprocessing
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from mi_lib.checks import check_positive_int
from mi_lib.exercises import CHAPTERS, EXERCISES, labels
from mi_lib.teaching import exercise_of


def check_source(label: str) -> str:
    """The canonical source of the check cell of exercise `label`."""
    return (
        "# Check: run this cell after your answer.\n"
        f'from mi_lib.exercises import check\n\ncheck("{label}", globals())'
    )


def client_for(nb: nbformat.NotebookNode, folder: Path, timeout: float) -> NotebookClient:
    """An nbclient client that runs `nb` in `folder`, lets cells raise, and times each cell out."""
    return NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                          resources={"metadata": {"path": str(folder)}})


def run_cell(client: NotebookClient, cell: nbformat.NotebookNode, index: int) -> str | None:
    """Execute `cell` in the client's running kernel; return "ErrorName: first line of the
    message" if it raised, else None. CellTimeoutError and DeadKernelError pass through."""
    client.execute_cell(cell, index)
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            first = (out.get("evalue") or "").strip().splitlines()
            return f"{out.get('ename')}: {first[0] if first else ''}".rstrip(": ")
    return None


def grade_notebook(path: Path, timeout: float = 600.0) -> tuple[dict[str, str], str]:
    """Run notebook `path` and return ({label: "pass" or "fail: why"}, a note on the run: cells
    that raised outside the checks, a time-out or a dead kernel; "" when all went well)."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook: this notebook fails, the others are graded
        return {}, f"could not read the notebook: {type(exc).__name__}: {exc}".splitlines()[0]
    present = [r.get("label") for c in nb.cells if (r := exercise_of(c))]
    results = {label: "fail: not reached (the run stopped before it)" for label in present if label in EXERCISES}
    errors: list[str] = []
    note, start = "", time.monotonic()
    client = client_for(nb, path.parent, timeout)
    try:
        with client.setup_kernel(stderr=subprocess.DEVNULL):  # the kernel's own start-up warnings
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                record = exercise_of(cell)
                label = record.get("label") if record else None
                if label in EXERCISES:
                    cell.source = check_source(label)
                client.timeout = max(1, round(timeout - (time.monotonic() - start)))
                try:
                    error = run_cell(client, cell, index)
                except CellTimeoutError:
                    note = f"timed out after {timeout:g} s, in cell {index}"
                    break
                except DeadKernelError:
                    note = f"the kernel died in cell {index}"
                    break
                if label in EXERCISES:
                    results[label] = "pass" if error is None else f"fail: {error.removeprefix('ExerciseFailed: ')}"
                elif error is not None:
                    errors.append(f"cell {index} raised {error}")
    except Exception as exc:  # a kernel that cannot start, or breaks down, fails this notebook only
        note = note or f"could not run: {type(exc).__name__}: {exc}".splitlines()[0]
    if errors:
        note = "; ".join(filter(None, [note, f"{len(errors)} cell(s) raised, first: {errors[0]}"]))
    return results, note


def grade_folder(
    root: Path, timeout: float = 600.0, jobs: int = 1, log: Callable[[str], None] = lambda _: None
) -> list[dict[str, str]]:
    """Grade root/STUDENT/CHAPTER.ipynb for every student folder, `jobs` notebooks at a time:
    one row per student with 'student', 'passed', 'of', one column per exercise and 'notes'."""
    check_positive_int("jobs", jobs)
    if not root.is_dir():
        raise ValueError(f"submissions must be a folder of student folders, got {str(root)!r}")
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    handed_in = {nb.stem for s in students for nb in s.glob("*.ipynb")}
    chapters = [c for c in CHAPTERS if c in handed_in]
    columns = [label for c in chapters for label in labels(c)]
    paths = [s / f"{c}.ipynb" for s in students for c in chapters if (s / f"{c}.ipynb").is_file()]
    graded = {}
    spawn = multiprocessing.get_context("spawn")  # fresh workers: each only drives its kernels
    with ProcessPoolExecutor(jobs, mp_context=spawn) if jobs > 1 else nullcontext() as pool:
        outcomes = (pool.map if pool else map)(grade_notebook, paths, [timeout] * len(paths))
        for path, (results, note) in zip(paths, outcomes, strict=True):
            graded[path] = results, note
            log(f"graded {path}: {sum(r == 'pass' for r in results.values())} passed" + (f"; {note}" if note else ""))
    rows = []
    for student in students:
        row, notes = {"student": student.name}, []
        for chapter in chapters:
            path = student / f"{chapter}.ipynb"
            if path not in graded:
                row.update({label: f"fail: no {chapter}.ipynb handed in" for label in labels(chapter)})
                continue
            results, note = graded[path]
            for label in labels(chapter):
                missing = f"not graded ({note})" if note and not results else "its check cell is missing"
                row[label] = results.get(label, f"fail: {missing}")
            if note:
                notes.append(f"{chapter}: {note}")
        ignored = sorted(nb.name for nb in student.glob("*.ipynb") if nb.stem not in CHAPTERS)
        if ignored:
            notes.append(f"not chapters, ignored: {', '.join(ignored)}")
        row["passed"] = str(sum(row[label] == "pass" for label in columns))
        row["of"] = str(len(columns))
        row["notes"] = " | ".join(notes)
        rows.append(row)
    return rows


def write_csv(rows: list[dict[str, str]], out: Path) -> None:
    """Write the grade sheet: student, passed, of, one column per exercise, notes."""
    columns = ["student", "passed", "of"]
    columns += [k for k in (rows[0] if rows else {}) if k not in (*columns, "notes")] + ["notes"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
