"""Grading: run every notebook that students handed back and record who passed which exercise.

The submissions folder holds one folder per student, named as the grade sheet should name the
student, with the chapters' student versions as that student completed them:

    submissions/
        ada/diffusion.ipynb
        ada/mixture_scores.ipynb
        grace/diffusion.ipynb
        ...

    python -m mi_lib.teaching grade submissions/ --out grades.csv [--timeout 600] [--jobs 2]

Student code is untrusted. Each notebook runs in its own sandbox, on a copy of its student's
files, and its answers leave the kernel as plain data; the checks run here, in the grader's
process, on inputs the grader computed from the book's own chapter (mi_lib.grading_submission,
mi_lib.grading_reference, mi_lib.sandbox). A notebook that raises, hangs, floods its output or
kills its kernel is reported in the notes and fails the exercises it did not reach.

Each student's results are recorded in the folder OUT.parts (beside the sheet) as soon as they
are in, so a run that is stopped resumes where it stopped: a later run grades only the students
without a record, or whose files changed (``--regrade`` grades everyone again). The sheet (one
row per student: passed, of, one column per exercise of every chapter handed in by anyone,
notes) is written at the end, atomically, by the grader alone.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from mi_lib.checkpoints import atomic_write
from mi_lib.checks import check_positive, check_positive_int
from mi_lib.exercises import CHAPTERS, labels
from mi_lib.grading_reference import Inputs, default_book, kernel_env
from mi_lib.grading_submission import NotebookGrade, Setup, clean, grade_notebook
from mi_lib.sandbox import Limits, probe

GRACE = 120.0  # seconds a sandbox gets beyond the notebook's time-out, to start and stop its kernel


def students_in(root: Path) -> list[Path]:
    """The student folders of `root`; a ValueError that says how to lay it out if it has none."""
    if not root.is_dir():
        raise ValueError(f"submissions must be a folder of student folders, got {str(root)!r}")
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        loose = len(list(root.glob("*.ipynb")))
        raise ValueError(f"submissions must hold one folder per student (STUDENT/CHAPTER.ipynb), got {str(root)!r} "
                         f"with no student folders" + (f" and {loose} notebook(s) at its top: put each in a folder "
                                                      "named after its student" if loose else ""))
    return students


def digest(folder: Path) -> str:
    """sha256 over the names and contents of the files in `folder` (links by their target)."""
    h = hashlib.sha256()
    for base, dirs, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = Path(base) / name
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes() if path.is_file() else b""
            h.update(f"{path.relative_to(folder)}\0{len(data)}\0".encode() + data)
        dirs.sort()
    return h.hexdigest()


def grade_student(student: Path, chapters: list[str], inputs: Inputs, setup: Setup, work: Path) -> dict:
    """One student's record: their folder's digest and, per chapter handed in, its results,
    note and peak memory. A failure of the grading itself marks that chapter, nothing more."""
    record = {"digest": digest(student), "chapters": {}, "complete": True}
    for chapter in chapters:
        path = student / f"{chapter}.ipynb"
        if not path.is_file():
            continue
        try:
            graded = grade_notebook(path, lambda c=chapter: inputs[c], Path(tempfile.mkdtemp(dir=work)), setup)
        except Exception as exc:  # the grader's own failure on this notebook: marked, the run goes on
            graded = NotebookGrade({}, clean(f"could not grade it: {type(exc).__name__}: {exc}"))
            record["complete"] = False  # the grader's failure, not the student's: a later run tries again
        record["chapters"][chapter] = {"results": graded.results, "note": graded.note, "peak_mb": graded.peak_mb}
    return record


def row_of(student: Path, record: dict, chapters: list[str]) -> dict[str, str]:
    """The sheet's row of `student` from their record: passed, of, one column per exercise, notes."""
    row, notes = {"student": student.name}, []
    for chapter in chapters:
        graded = record["chapters"].get(chapter)
        if graded is None:
            row.update({label: f"fail: no {chapter}.ipynb handed in" for label in labels(chapter)})
            continue
        results, note = graded["results"], graded["note"]
        for label in labels(chapter):
            missing = f"not graded ({note})" if note and not results else "its check cell is missing"
            row[label] = results.get(label, f"fail: {missing}")
        if note:
            notes.append(f"{chapter}: {note}")
    ignored = sorted(clean(nb.name) for nb in student.glob("*.ipynb") if nb.stem not in CHAPTERS)
    if ignored:
        notes.append(f"not chapters, ignored: {', '.join(ignored)}")
    columns = [label for chapter in chapters for label in labels(chapter)]
    return {"student": row["student"], "passed": str(sum(row[label] == "pass" for label in columns)),
            "of": str(len(columns)), **{c: row[c] for c in columns}, "notes": " | ".join(notes)}


def setup_for(root: Path, out: Path, state: Path, book: Path, timeout: float, memory_gb: float) -> Setup:
    """The sandbox's settings: the time-out, limits, and what it hides (the submissions, the
    sheet, this run's folder, the book with its solutions, the checks, and the home folder
    unless Python lives in it)."""
    exercises = Path(__file__).resolve().parent / "exercises"
    hidden = [root.resolve(), out.resolve(), state.resolve(), book.resolve(), exercises]
    home = Path.home().resolve()
    needed = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, exercises)]
    if home != Path("/") and not any(p.is_relative_to(home) for p in needed):
        hidden.append(home)
    limits = Limits(seconds=timeout + GRACE, memory=int(memory_gb * (1 << 30)))
    return Setup(timeout, limits, tuple(hidden), kernel_env())


def grade_folder(root: Path, out: Path, timeout: float = 600.0, jobs: int = 1, book: Path | None = None,
                 regrade: bool = False, memory_gb: float = 8.0,
                 log: Callable[[str], None] = lambda _: None) -> list[dict[str, str]]:
    """Grade root/STUDENT/CHAPTER.ipynb for every student, `jobs` notebooks at a time, write the
    sheet `out` and return its rows (see the module's docstring)."""
    check_positive_int("jobs", jobs)
    check_positive("timeout", timeout)
    check_positive("memory_gb", memory_gb)
    root, out = Path(root), Path(out)
    students = students_in(root)
    book = Path(book) if book is not None else default_book()
    if book is None:
        raise ValueError("book must be given: the folder of the book's chapters, with their solutions (--book)")
    state = out.parent / f"{out.name}.parts"
    (state / "work").mkdir(parents=True, exist_ok=True)
    probe(state / "work")
    handed_in = {nb.stem for s in students for nb in s.glob("*.ipynb")}
    chapters = [c for c in CHAPTERS if c in handed_in]
    (state / "students").mkdir(exist_ok=True)
    inputs = Inputs(book, state / "reference", log)
    setup = setup_for(root, out, state, book, timeout, memory_gb)
    records = {s.name: read_record(state, s.name) for s in students}
    todo = [s for s in students if regrade or not (records[s.name] or {}).get("complete")
            or records[s.name]["digest"] != digest(s)]
    if len(todo) < len(students):
        log(f"already graded, kept: {len(students) - len(todo)} student(s) (--regrade grades them again)")
    with ThreadPoolExecutor(jobs) as pool:
        running = {pool.submit(grade_student, s, chapters, inputs, setup, state / "work"): s for s in todo}
        for future in as_completed(running):
            student = running[future]
            try:
                record = future.result()
            except Exception as exc:  # e.g. a folder the grader cannot read: this student only
                note = clean(f"could not grade: {type(exc).__name__}: {exc}")
                record = {"digest": "", "complete": False,
                          "chapters": {c: {"results": {}, "note": note} for c in chapters}}
            text = json.dumps(record).encode()
            atomic_write(state / "students" / f"{student.name}.json", lambda f, t=text: f.write(t))
            records[student.name] = record
            passed = sum(r == "pass" for c in record["chapters"].values() for r in c["results"].values())
            log(f"graded {student.name}: {passed} passed")
    rows = [row_of(s, records[s.name], chapters) for s in students]
    write_csv(rows, out)
    return rows


def read_record(state: Path, student: str) -> dict | None:
    """The recorded results of `student` in the run folder `state`, or None."""
    path = state / "students" / f"{student}.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None


def write_csv(rows: list[dict[str, str]], out: Path) -> None:
    """Write the grade sheet atomically: student, passed, of, one column per exercise, notes."""
    columns = list(rows[0]) if rows else ["student", "passed", "of", "notes"]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out, lambda f: f.write(text.getvalue().encode()))
