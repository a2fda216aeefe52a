"""The exercises as a student meets them, and as the grader checks them.

Each chapter's student version runs once, cell by cell, in one kernel. At each exercise three
answers go into the answer cell in turn, each followed by the check cell: the blank answer
(the check must fail and say what to define), a gamed answer (a constant or a shortcut; the
check must fail on the value), and the book's solution (the check must pass, which leaves the
kernel in the solved state for the chapter's later cells). The gamed answer and the solution
also leave the kernel as the grader takes them (mi_lib.answers), with the exercise's inputs,
and must fail and pass the same way in this process (mi_lib.exercises.verdict).
"""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from grading_attacks import solutions
from nbclient import NotebookClient

from mi_lib import linear_schedule
from mi_lib.answers import read_answers
from mi_lib.exercises import CHAPTERS, EXERCISES, ExerciseFailed, check, labels, verdict
from mi_lib.teaching import check_source, exercise_of, main, student_version

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

# An answer per exercise that a student might hand in to get past a check without computing
# what the exercise asks for; every check must reject it.
GAMED = {
    "ex-intro-1d": "p_1d = 2e-9",
    "ex-intro-2d": "p_2d = 1.5e-8",
    "ex-diffusion-signal": "t_one_percent = 400\nshare = 0.6",
    "ex-diffusion-step": "by_hand = xt.clone()",
    "ex-scores-weights": "x_star = crossing = 1.5",
    "ex-scores-sigma": "width_by_sigma = {0.02: 0.001, 0.05: 0.005, 0.1: 0.02, 0.2: 0.08}\nexponent = 2.0",
    "ex-learned-threshold": (  # the threshold forgotten: the 6 sigma rates at every k
        "rates_by_k = {k: (hallucination_rate(x_learned, mixture), hallucination_rate(x_data, mixture))"
        " for k in (3.0, 4.0, 6.0, 8.0)}"
    ),
    "ex-learned-gap-map": "share_true = 1.0\nshare_learned = 0.0",
    "ex-shapes-readable": "rate_readable = hal",
    "ex-shapes-noise": "accuracy_by_std = {0.3: 1.0, 0.5: 1.0, 0.7: 0.5, 1.0: 0.0}\nfailing_std = 0.5",
    "ex-detection-heldout": (  # the in-sample operating point of part 3
        'thr_half = results["1d_three"]["threshold"]\n'
        'removed_half, kept_half = results["1d_three"]["removed"], results["1d_three"]["kept"]'
    ),
    "ex-detection-borderline": 'kept_core, removed_far = results["1d_three"]["kept"], results["1d_three"]["removed"]',
    "ex-hands-blend": "six_by_lam = {0.1: 0.0, 0.25: 0.5, 0.5: 0.9, 0.75: 0.5, 0.9: 0.0}",
    "ex-hands-heldout": 'thr_half = op["threshold"]\nremoved_half, kept_half = op["removed"], op["kept"]',
    "ex-collapse-ratio": "kept_share = {1.025: 0.1, 1.1: 0.05, 1.25: 0.02, 2.0: 0.0}",
    "ex-collapse-floor": "floors = [1.0, 1.0, 1.0, 1.0, 1.0]",
}


def client_for(nb: nbformat.NotebookNode, folder: Path, timeout: float) -> NotebookClient:
    """An nbclient client that runs `nb` in `folder`, lets cells raise, and times each cell out."""
    return NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                          resources={"metadata": {"path": str(folder)}})


def run_cell(client: NotebookClient, cell: nbformat.NotebookNode, index: int) -> str | None:
    """Execute `cell` in the client's kernel: "ErrorName: first line" if it raised, else None."""
    client.execute_cell(cell, index)
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            first = (out.get("evalue") or "").strip().splitlines()
            return f"{out.get('ename')}: {first[0] if first else ''}".rstrip(": ")
    return None


def graded_outside(client: NotebookClient, label: str, index: int, folder: Path) -> str | None:
    """Export the kernel's answers to `label` and its inputs, as a grader would read them, and
    check them here: None if they pass, else the message."""
    ex = EXERCISES[label]
    export = (f"from mi_lib.answers import export_answers\nimport torch as _t\n"
              f"export_answers({label!r}, {list(ex.answers)!r}, globals(), {str(folder)!r})\n"
              f"_t.save({{n: globals()[n] for n in {ex.inputs!r}}}, {str(folder / 'inputs.pt')!r})")
    assert run_cell(client, nbformat.v4.new_code_cell(export), index) is None
    inputs = torch.load(folder / "inputs.pt", weights_only=False)
    return verdict(label, read_answers(folder, label), inputs)


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_every_exercise_has_a_check_and_a_gamed_answer():
    in_book = {}
    for chapter in CHAPTERS:
        nb = json.loads((BOOK / f"{chapter}.ipynb").read_text())
        in_book[chapter] = re.findall(r"```\{exercise\}\n:label: (\S+)", "\n".join(_src(c) for c in nb["cells"]))
    assert in_book == {c: labels(c) for c in CHAPTERS}  # registered per chapter, in page order
    assert set(GAMED) == set(EXERCISES)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_exercises_fail_blank_and_gamed_and_pass_solved(chapter, tmp_path):
    book = json.loads((BOOK / f"{chapter}.ipynb").read_text())
    solved = solutions(book)
    nb = nbformat.reads(json.dumps(student_version(book)), as_version=4)
    client = client_for(nb, BOOK, timeout=600)
    done = []
    with client.setup_kernel():
        cells = list(enumerate(nb.cells))
        for i, cell in cells:
            if cell.cell_type != "code" or exercise_of(cell):
                continue  # check cells run with their answers, below
            if "answer" not in cell.metadata.get("tags", []):
                assert run_cell(client, cell, i) is None, f"{chapter}: cell {i} raised:\n{_src(cell)[:300]}"
                continue
            label, answers = cell.metadata.exercise.label, cell.metadata.exercise.answers
            check = next(c for _, c in cells[i:] if (exercise_of(c) or {}).get("label") == label)
            assert _src(check) == check_source(label)

            def attempt(answer: str, label=label, i=i, check=check) -> str | None:
                assert run_cell(client, nbformat.v4.new_code_cell(answer), i) is None, f"{label}: answer raised"
                return run_cell(client, check, i + 1)

            blank = attempt(_src(cell))
            assert blank and blank.startswith(f"ExerciseFailed: define {answers[0]} ("), f"{label}: {blank}"
            gamed = attempt(GAMED[label])
            assert gamed and gamed.startswith("ExerciseFailed: ") and " should be " in gamed, f"{label}: {gamed}"
            assert graded_outside(client, label, i, tmp_path) == gamed.removeprefix("ExerciseFailed: ")
            passed = attempt(solved[label])
            assert passed is None, f"{label}, solution: {passed}"
            assert graded_outside(client, label, i, tmp_path) is None, label
            done.append(label)
    assert done == labels(chapter)


def test_check_reads_answers_by_name_and_says_what_is_wrong(capsys):
    p_1d = math.erfc(6 / math.sqrt(2))
    check("ex-intro-1d", {"p_1d": np.float64(p_1d)})  # a namespace, as globals() in a notebook
    check("ex-intro-1d", p_1d=torch.tensor(p_1d, dtype=torch.float64))  # or by name
    assert capsys.readouterr().out == "ex-intro-1d: correct\nex-intro-1d: correct\n"
    with pytest.raises(ExerciseFailed, match=r"^p_1d should be a float, got str$"):
        check("ex-intro-1d", p_1d="2e-9")
    with pytest.raises(ExerciseFailed, match=r"^t_one_percent should be an int, got float$"):
        check("ex-diffusion-signal", t_one_percent=209.0, share=0.79)
    with pytest.raises(ExerciseFailed, match=r"^schedule is not defined: run the chapter's cells above"):
        check("ex-diffusion-signal", t_one_percent=209, share=0.79)
    with pytest.raises(ExerciseFailed, match=r"^the answer could not be checked \(ValueError"):
        check("ex-scores-sigma", width_by_sigma=dict.fromkeys((0.02, 0.05, 0.1, 0.2), "wide"), exponent=2.0,
              schedule=linear_schedule(1000))
    with pytest.raises(ValueError, match="label must be one of the book's exercises"):
        check("ex-nowhere", {})
    assert issubclass(ExerciseFailed, AssertionError)


def test_the_older_student_command_still_works(tmp_path):
    main([str(BOOK / "intro.ipynb"), "--out", str(tmp_path)])  # python -m mi_lib.teaching CHAPTERS --out DIR
    assert json.loads((tmp_path / "intro.ipynb").read_text()) == student_version(
        json.loads((BOOK / "intro.ipynb").read_text()))


def test_cli_writes_student_versions(tmp_path):
    chapters = sorted(str(p) for p in BOOK.glob("*.ipynb"))
    cli = subprocess.run([sys.executable, "-m", "mi_lib.teaching", "student", *chapters, "--out",
                          str(tmp_path / "student")], cwd=ROOT, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    written = sorted(p.stem for p in (tmp_path / "student").glob("*.ipynb"))
    assert written == sorted(CHAPTERS)
    intro = json.loads((tmp_path / "student" / "intro.ipynb").read_text())
    assert "solution-start" not in json.dumps(intro)
    assert [_src(c) for c in intro["cells"] if "check" in c["metadata"].get("tags", [])] == [
        check_source(label) for label in labels("intro")]
