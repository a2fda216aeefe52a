"""The exercises as a student meets them, and grading.

Each chapter's student version runs once, cell by cell, in one kernel. At each exercise three
answers go into the answer cell in turn, each followed by the check cell: the blank answer
(the check must fail and say what to define), a gamed answer (a constant or a shortcut; the
check must fail on the value), and the book's solution (the check must pass, which leaves the
kernel in the solved state for the chapter's later cells).
"""

import csv
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

from mi_lib import linear_schedule
from mi_lib.exercises import CHAPTERS, EXERCISES, ExerciseFailed, check, labels
from mi_lib.grading import check_source, client_for, grade_folder, grade_notebook, run_cell
from mi_lib.teaching import exercise_of, main, student_version

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


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def solutions(nb: dict) -> dict[str, str]:
    """label -> the code of its worked solution (its code cells, joined)."""
    out, label = {}, None
    for cell in nb["cells"]:
        s = _src(cell)
        if m := re.match(r"```\{solution-start\} (\S+)", s):
            label, out[m.group(1)] = m.group(1), ""
        elif s.startswith("```{solution-end}"):
            label = None
        elif label and cell["cell_type"] == "code" and "check" not in cell["metadata"].get("tags", []):
            out[label] += s + "\n\n"
    return out


def test_every_exercise_has_a_check_and_a_gamed_answer():
    in_book = {}
    for chapter in CHAPTERS:
        nb = json.loads((BOOK / f"{chapter}.ipynb").read_text())
        in_book[chapter] = re.findall(r"```\{exercise\}\n:label: (\S+)", "\n".join(_src(c) for c in nb["cells"]))
    assert in_book == {c: labels(c) for c in CHAPTERS}  # registered per chapter, in page order
    assert set(GAMED) == set(EXERCISES)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_exercises_fail_blank_and_gamed_and_pass_solved(chapter):
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
            passed = attempt(solved[label])
            assert passed is None, f"{label}, solution: {passed}"
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


def test_grade_notebook_goes_on_after_errors_and_reports_a_hang(tmp_path):
    cells = [
        nbformat.v4.new_code_cell("import math\np_1d = math.erfc(6 / math.sqrt(2))"),
        nbformat.v4.new_code_cell("pass  # an edited check is reset to the real one", metadata={
            "tags": ["check"], "exercise": {"label": "ex-intro-1d", "answers": ["p_1d"]}}),
        nbformat.v4.new_code_cell("1 / 0"),
        nbformat.v4.new_code_cell(check_source("ex-intro-2d"), metadata={
            "tags": ["check"], "exercise": {"label": "ex-intro-2d", "answers": ["p_2d"]}}),
    ]
    path = tmp_path / "intro.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    results, note = grade_notebook(path, timeout=60)
    assert results == {"ex-intro-1d": "pass", "ex-intro-2d": "fail: define p_2d (a float) in the answer cell, "
                       "then run this check again"}
    assert note == "1 cell(s) raised, first: cell 2 raised ZeroDivisionError: division by zero"
    cells.insert(1, nbformat.v4.new_code_cell("import time\ntime.sleep(60)"))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    results, note = grade_notebook(path, timeout=5)
    assert note == "timed out after 5 s, in cell 1"
    assert set(results.values()) == {"fail: not reached (the run stopped before it)"}


def test_grade_folder_reports_what_it_cannot_grade(tmp_path):
    (tmp_path / "ada").mkdir()
    (tmp_path / "ada" / "intro.ipynb").write_text("{not json")
    (tmp_path / "ada" / "notes.ipynb").write_text("{}")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "diffusion.ipynb").write_text("{not json either")
    rows = grade_folder(tmp_path, timeout=10)
    assert [r["student"] for r in rows] == ["ada", "bob"]
    assert list(rows[0])[1:-3] == labels("intro") + labels("diffusion")
    assert rows[0]["ex-intro-1d"].startswith("fail: not graded (could not read the notebook: NotJSONError")
    assert rows[0]["ex-diffusion-step"] == "fail: no diffusion.ipynb handed in"
    assert rows[0]["notes"].startswith("intro: could not read") and rows[0]["notes"].endswith("ignored: notes.ipynb")
    assert rows[1]["passed"] == "0" and rows[1]["of"] == "4"


def test_the_older_student_command_still_works(tmp_path):
    main([str(BOOK / "intro.ipynb"), "--out", str(tmp_path)])  # python -m mi_lib.teaching CHAPTERS --out DIR
    assert json.loads((tmp_path / "intro.ipynb").read_text()) == student_version(
        json.loads((BOOK / "intro.ipynb").read_text()))


def test_cli_writes_student_versions_and_grades_a_folder(tmp_path):
    def cli(*args):
        subprocess.run([sys.executable, "-m", "mi_lib.teaching", *args], check=True, cwd=ROOT, capture_output=True)

    cli("student", *sorted(str(p) for p in BOOK.glob("*.ipynb")), "--out", str(tmp_path / "student"))
    written = sorted(p.stem for p in (tmp_path / "student").glob("*.ipynb"))
    assert written == sorted(CHAPTERS)
    intro = json.loads((tmp_path / "student" / "intro.ipynb").read_text())
    assert "solution-start" not in json.dumps(intro)
    solved = solutions(json.loads((BOOK / "intro.ipynb").read_text()))
    for student, answer in {"ada": solved.get, "bob": None, "cyd": GAMED.get}.items():
        nb = json.loads(json.dumps(intro))
        for cell in nb["cells"]:
            if answer and "answer" in cell["metadata"].get("tags", []):
                cell["source"] = answer(cell["metadata"]["exercise"]["label"])
        (tmp_path / "subs" / student).mkdir(parents=True)
        (tmp_path / "subs" / student / "intro.ipynb").write_text(json.dumps(nb))
    cli("grade", str(tmp_path / "subs"), "--out", str(tmp_path / "grades.csv"), "--timeout", "300", "--jobs", "2")
    define = "fail: define {} (a float) in the answer cell, then run this check again"
    should = "fail: {} should be P({}) for a standard {}Gaussian z, to 6 digits, got {}"
    assert list(csv.reader((tmp_path / "grades.csv").open())) == [
        ["student", "passed", "of", "ex-intro-1d", "ex-intro-2d", "notes"],
        ["ada", "2", "2", "pass", "pass", ""],
        ["bob", "0", "2", define.format("p_1d"), define.format("p_2d"), ""],
        ["cyd", "0", "2", should.format("p_1d", "|z| > 6", "", "2e-09"),
         should.format("p_2d", "||z|| > 6", "2D ", "1.5e-08"), ""],
    ]
