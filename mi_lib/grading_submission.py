"""One submitted notebook graded: run in a sandbox, its answers checked in the grader's process.

The notebook is copied, with the rest of its student's folder and nothing else, into a fresh
folder; each check cell becomes a cell that exports that exercise's answers as plain data
(mi_lib.answers); mi_lib.grading_runner runs it in the sandbox (mi_lib.sandbox), where the
submissions, the grade sheet, the grading run's folder, the book's solutions and the checks
(mi_lib/exercises) are all out of sight. Then, back in the grader, each exercise's exported
answers go through its check (mi_lib.exercises.verdict) with the grader's own inputs
(mi_lib.grading_reference). Nothing the notebook does can reach a check, a reference value,
another student's files or the sheet; what comes out of the sandbox is read as untrusted data.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from mi_lib.answers import read_answers
from mi_lib.exercises import EXERCISES, verdict
from mi_lib.sandbox import Limits, run_sandboxed
from mi_lib.teaching import exercise_of

INSIDE, OUT_INSIDE = "/tmp/submission", "/tmp/grading"  # the copy and the results folder, in the sandbox
RUNNER = Path(__file__).resolve().parent / "grading_runner.py"
MAX_NOTEBOOK = 64 << 20
EXPORT = ("# Grading: records the answers to {label} as data; the grader checks them.\n"
          "from mi_lib.answers import export_answers\n\n"
          "export_answers({label!r}, {names!r}, globals(), {folder!r})")


@dataclass(frozen=True)
class Setup:
    """What every notebook of a grading run shares: the seconds a notebook may run, the
    sandbox's limits, the paths it must not see and the environment of its kernel."""

    timeout: float
    limits: Limits
    hidden: tuple[Path, ...]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NotebookGrade:
    """{label: "pass" or "fail: why"}, a note on the run ("" when all went well) and the peak
    memory in MB of the process that ran the notebook's kernel in the sandbox (as it reported)."""

    results: dict[str, str]
    note: str
    peak_mb: float = 0.0


def clean(text: object, limit: int = 300) -> str:
    """`text` as one printable line of at most `limit` characters, for the sheet."""
    return re.sub(r"[^\x20-\x7e\u00a0-\uffff]+", " ", str(text)).strip()[:limit]


def prepare(path: Path, dest: Path) -> list[tuple[int, str]]:
    """Write to `dest` the notebook `path` with each check cell of a known exercise replaced by
    a cell that exports its answers; return [(cell index, label)] of those cells. A ValueError
    if `path` is not a readable notebook."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_NOTEBOOK:
        raise ValueError(f"not a notebook file of at most {MAX_NOTEBOOK >> 20} MB")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook
        raise ValueError(clean(f"{type(exc).__name__}: {exc}")) from None
    checks = []
    for index, cell in enumerate(nb.cells):
        label = (exercise_of(cell) or {}).get("label")
        if cell.cell_type == "code" and label in EXERCISES:
            names = list(EXERCISES[label].answers)
            cell.source = EXPORT.format(label=label, names=names, folder=f"{OUT_INSIDE}/answers")
            checks.append((index, label))
    dest.unlink(missing_ok=True)
    nbformat.write(nb, dest)
    return checks


def read_report(folder: Path) -> dict | None:
    """The runner's report in `folder` if it is one (it is untrusted), else None."""
    path = folder / "report.json"
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 20:
        return None
    try:
        report = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    ok = (type(report) is dict and type(report.get("stopped")) is str and type(report.get("errors")) is list
          and all(type(e) is list and len(e) == 2 and type(e[0]) is int for e in report["errors"])
          and type(report.get("printed")) is int and type(report.get("peak_mb")) in (int, float))
    return report if ok else None


def run_notebook(path: Path, work: Path, setup: Setup) -> tuple[list[tuple[int, str]], dict | None, str]:
    """Copy path's student folder into work/copy, prepare the notebook there and run it in the
    sandbox: ([(cell index, label)] of its check cells, the runner's report or None, a note on
    how the sandbox ended if it did not end well)."""
    copy, out = work / "copy", work / "out"
    shutil.copytree(path.parent, copy, symlinks=True)  # a link is copied as a link, never followed
    (out / "answers").mkdir(parents=True)
    checks = prepare(path, copy / path.name)
    argv = [sys.executable, "-I", str(RUNNER), f"{INSIDE}/{path.name}", f"{OUT_INSIDE}/report.json",
            f"{setup.timeout:g}"]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp/home", "LANG": "C.UTF-8",
           "JUPYTER_RUNTIME_DIR": "/tmp/jupyter", "IPYTHONDIR": "/tmp/ipython", "MPLCONFIGDIR": "/tmp/mpl",
           **setup.env}
    outcome = run_sandboxed(argv, setup.limits, {copy: INSIDE, out: OUT_INSIDE}, setup.hidden, env, INSIDE,
                            work / "sandbox.log")
    report = read_report(out)
    if outcome.returncode is None:
        ended = f"killed after {setup.limits.seconds:g} s"
    elif report is None:
        ended = f"the run ended without its report (exit status {outcome.returncode})"
    else:
        ended = ""
    return checks, report, ended


def grade_notebook(path: Path, inputs: Callable[[], dict[str, dict]], work: Path, setup: Setup) -> NotebookGrade:
    """Grade the submitted notebook `path` (see the module's docstring); inputs() gives the
    grader's inputs by label, `work` is a fresh folder for the run (removed afterwards)."""
    try:
        checks, report, ended = run_notebook(path, work, setup)
        exported = {label: read_answers(work / "out" / "answers", label) for _, label in checks}
    except ValueError as exc:
        return NotebookGrade({}, f"could not read the notebook: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stopped = ended or clean((report or {}).get("stopped", ""))
    export_cells = {index for index, _ in checks}
    errors = [(i, clean(e)) for i, e in (report or {}).get("errors", []) if i not in export_cells]
    results = {}
    for _, label in checks:
        if exported[label] is None:
            results[label] = ("fail: not reached (the run stopped before it)" if stopped
                              else "fail: its answers were not recorded (its check cell did not run through)")
        else:
            message = verdict(label, exported[label], inputs().get(label, {}))
            results[label] = "pass" if message is None else f"fail: {clean(message)}"
    notes = [stopped] if stopped else []
    if errors:
        notes.append(f"{len(errors)} cell(s) raised, first: cell {errors[0][0]} raised {errors[0][1]}")
    if report and report["printed"] > 1 << 20:
        notes.append(f"printed {report['printed'] / (1 << 20):.0f} MB (not kept)")
    return NotebookGrade(results, "; ".join(notes), float((report or {}).get("peak_mb", 0.0)))
