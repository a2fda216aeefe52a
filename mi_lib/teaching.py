"""Student versions of the chapters, and grading of what students hand back.

Each exercise of a chapter follows one layout (sphinx-exercise's gated syntax)::

    ```{exercise} with its :label:   the question; it names the answers
    an optional setup code cell       the exercise's inputs, shown
    ```{solution-start} <label>       the worked solution (a dropdown)
    ...
    ```{solution-end}
    a code cell tagged `check`        check("<label>", globals())

The check cell sits outside the dropdown; its metadata records {"exercise": {"label": ...,
"answers": [...]}}. The student version drops each solution and leaves in its
place an answer cell that lists the names to define; the check cell that follows gives feedback
on them (mi_lib.exercises recomputes the reference), and grading checks them again outside the
student's kernel (mi_lib.grading)::

    python -m mi_lib.teaching student book/*.ipynb --out student/
    python -m mi_lib.teaching site _student       # mi_lib.student_book
    python -m mi_lib.teaching grade submissions/ --out grades.csv

The last one is described in mi_lib.grading; the first also works without the word `student`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from mi_lib.exercises import EXERCISES

ANSWER_SOURCE = "# Define: {names}\n# then run the check below.\n"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _opens(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and _source(cell).lstrip().startswith("```{solution-start}")


def _closes(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and _source(cell).lstrip().startswith("```{solution-end}")


def check_source(label: str) -> str:
    """The canonical source of the check cell of exercise `label`, as every chapter has it."""
    return (
        "# Check: run this cell after your answer.\n"
        f'from mi_lib.exercises import check\n\ncheck("{label}", globals())'
    )


def exercise_of(cell: dict) -> dict | None:
    """The {"label", "answers"} record of a check cell, or None for any other cell."""
    meta = cell.get("metadata", {})
    record = meta.get("exercise") if "check" in meta.get("tags", []) else None
    return record if isinstance(record, dict) else None


def answer_cell(label: str, nb: dict) -> dict:
    """The empty cell that replaces the solution of exercise `label`: it lists the names to
    define, from the check cell's metadata, with their types where mi_lib.exercises knows them."""
    record = next((r for c in nb["cells"] if (r := exercise_of(c)) and r.get("label") == label), None)
    if record is None:
        names = "the names the exercise asks for"
    elif label in EXERCISES:
        names = EXERCISES[label].define_line()
    else:
        names = ", ".join(record["answers"])
    return {
        "cell_type": "code", "execution_count": None, "outputs": [], "source": ANSWER_SOURCE.format(names=names),
        "metadata": {"tags": ["answer"], "exercise": {"label": label, "answers": (record or {}).get("answers", [])}},
    }


def student_version(nb: dict) -> dict:
    """A copy of notebook `nb` with every worked solution replaced by an answer cell. A `check`
    cell found inside a solution is kept, after the answer cell. Raises ValueError on an
    unclosed or nested solution."""
    out, inside, checks = [], False, []
    for cell in nb["cells"]:
        if _opens(cell):
            if inside:
                raise ValueError("nb has a solution-start inside another solution; solutions cannot nest")
            label = _source(cell).split("}", 1)[1].split("\n", 1)[0].strip()
            inside, checks = True, []
        elif _closes(cell):
            if not inside:
                raise ValueError("nb has a solution-end without a solution-start")
            out += [answer_cell(label, nb), *checks]
            inside = False
        elif inside:
            if "check" in cell.get("metadata", {}).get("tags", []):
                checks.append(copy.deepcopy(cell))
        else:
            out.append(copy.deepcopy(cell))
    if inside:
        raise ValueError("nb ends inside a solution: a solution-start has no solution-end")
    student = copy.deepcopy({k: v for k, v in nb.items() if k != "cells"})
    student["cells"] = out
    for i, cell in enumerate(student["cells"]):
        cell["id"] = f"s{i:02d}"
    return student


def write_student_versions(chapters: list[Path], out: Path) -> list[Path]:
    """Write the student version of each chapter notebook into folder `out`, under its own name."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in chapters:
        if path.suffix != ".ipynb" or not path.is_file():
            raise ValueError(f"chapters must be existing .ipynb files, got {str(path)!r}")
        nb = student_version(json.loads(path.read_text()))
        (out / path.name).write_text(json.dumps(nb, indent=1) + "\n")
        written.append(out / path.name)
    return written


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in ("student", "grade", "site", "-h", "--help"):
        argv.insert(0, "student")  # the older form: python -m mi_lib.teaching CHAPTERS --out DIR
    parser = argparse.ArgumentParser(prog="python -m mi_lib.teaching", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write student versions of chapters (solutions removed)")
    student.add_argument("chapters", nargs="+", type=Path, help="chapter notebooks (.ipynb)")
    student.add_argument("--out", type=Path, required=True, help="folder for the student notebooks")
    site = sub.add_parser("site", help="write the book without solutions, for a class (built by make book-student)")
    site.add_argument("out", type=Path, help="folder for the student edition's sources (e.g. _student)")
    site.add_argument("--chapters", type=Path, default=None, help="the chapters (default: book/; executed ones keep "
                      "their outputs and the build executes nothing)")
    site.add_argument("--repository", default=None, help="a repository holding the student notebooks, for the "
                      "site's Colab and Binder buttons (default: no such buttons)")
    grade = sub.add_parser("grade", help="run every submitted notebook and write who passed which exercise")
    grade.add_argument("submissions", type=Path, help="a folder with one folder per student: STUDENT/CHAPTER.ipynb")
    grade.add_argument("--out", type=Path, required=True, help="the CSV to write (one row per student)")
    grade.add_argument("--timeout", type=float, default=600.0, help="seconds per notebook (default 600)")
    grade.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default 1; one per core)")
    grade.add_argument("--book", type=Path, default=None,
                       help="the book's chapters, with solutions, that the grader's inputs come from (default: book/)")
    grade.add_argument("--regrade", action="store_true", help="grade every student again, not only those without "
                       "results in OUT.parts or whose files changed")
    grade.add_argument("--memory-gb", type=float, default=8.0, help="address space per sandboxed process (default 8)")
    args = parser.parse_args(argv)
    if args.command == "student":
        for path in write_student_versions(args.chapters, args.out):
            print(f"wrote {path}")
        return
    if args.command == "site":
        from mi_lib.student_book import write_site

        written = write_site(args.out, args.chapters, args.repository)
        print(f"wrote the student edition's sources to {args.out} ({len(written)} chapters, no solutions)")
        return
    from mi_lib.grading import grade_folder

    try:
        rows = grade_folder(args.submissions, args.out, timeout=args.timeout, jobs=args.jobs, book=args.book,
                            regrade=args.regrade, memory_gb=args.memory_gb, log=lambda line: print(line, flush=True))
    except (ValueError, RuntimeError) as exc:
        sys.exit(f"python -m mi_lib.teaching grade: error: {exc}")
    print(f"wrote {args.out}: {len(rows)} students (their records: {args.out}.parts)")


if __name__ == "__main__":
    main()
