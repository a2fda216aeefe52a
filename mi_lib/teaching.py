"""Student versions of the chapters, for instructors who hand them out as assignments.

Each exercise's worked solution sits between a ``{solution-start}`` and a ``{solution-end}``
markdown cell (sphinx-exercise's gated syntax). The student version drops the solution's
cells but keeps those tagged ``check``: they grade the answer the student writes in the empty
cell left in its place.

    python -m mi_lib.teaching book/diffusion.ipynb book/mixture_scores.ipynb --out student/
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

ANSWER_CELL = {
    "cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
    "source": "# Your answer here: define the names the exercise asks for, then run the check below.\n",
}


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _opens(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and _source(cell).lstrip().startswith("```{solution-start}")


def _closes(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and _source(cell).lstrip().startswith("```{solution-end}")


def student_version(nb: dict) -> dict:
    """A copy of notebook `nb` with every worked solution replaced by an answer cell, followed
    by the solution's `check` cells. Raises ValueError on an unclosed or nested solution."""
    out, inside, checks = [], False, []
    for cell in nb["cells"]:
        if _opens(cell):
            if inside:
                raise ValueError("nb has a solution-start inside another solution; solutions cannot nest")
            inside, checks = True, []
        elif _closes(cell):
            if not inside:
                raise ValueError("nb has a solution-end without a solution-start")
            out += [copy.deepcopy(ANSWER_CELL), *checks]
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write student versions of chapters (solutions removed).")
    parser.add_argument("chapters", nargs="+", type=Path, help="chapter notebooks (.ipynb)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the student notebooks")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.chapters:
        if path.suffix != ".ipynb" or not path.is_file():
            raise ValueError(f"chapters must be existing .ipynb files, got {str(path)!r}")
        nb = student_version(json.loads(path.read_text()))
        (args.out / path.name).write_text(json.dumps(nb, indent=1) + "\n")
        print(f"wrote {args.out / path.name}")


if __name__ == "__main__":
    main()
