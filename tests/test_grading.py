"""Grading a class that tries to game or break the grader (tests/grading_attacks.py).

One grading run of the whole class, through the command line, with two notebooks at a time:
it is killed once three students are recorded and run again, which must resume. Every blank or
gaming submission must get 0, every correct one full marks (one of them graded beside a vandal),
no submission may change the submissions folder or the sheet, and the sheet must say why.
"""

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grading_attacks
import pytest

from mi_lib.grading import grade_folder
from mi_lib.grading_reference import kernel_env
from mi_lib.grading_submission import Setup, grade_notebook
from mi_lib.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("grading")  # one grading run for the module (make test: --dist loadgroup)


# Runs a command and prints its peak memory in MB (its own: the sandboxes' processes are not its
# children's children as far as the kernel's accounting goes, they are reaped inside the sandbox).
PEAK = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, file=sys.stderr); sys.exit(code)")


def tree_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def marked_processes() -> list[str]:
    """The pids of live processes whose command line holds the daemon's marker."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if grading_attacks.MARKER.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    root, sheet = base / "submissions", base / "out" / "grades.csv"
    expected = grading_attacks.write(root, sheet)
    before = tree_digest(root)
    cmd = [sys.executable, "-m", "mi_lib.teaching", "grade", str(root), "--out", str(sheet), "--jobs", "2",
           "--timeout", "300", "--memory-gb", "4"]
    records = sheet.parent / "grades.csv.parts" / "students"
    first = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 400
    while len(list(records.glob("*.json"))) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # the grader, mid-run
    first.wait()
    recorded_before = len(list(records.glob("*.json")))
    sheet_after_kill = sheet.exists()
    second = subprocess.run([sys.executable, "-c", PEAK, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout + second.stderr
    grader_mb = float(second.stderr.strip().splitlines()[-1])
    time.sleep(4)  # the daemon's process would rewrite the sheet 3 s after it started
    return {"expected": expected, "rows": {r["student"]: r for r in csv.DictReader(sheet.open())},
            "before": before, "after": tree_digest(root), "log": second.stdout, "sheet": sheet,
            "recorded_before": recorded_before, "sheet_after_kill": sheet_after_kill, "grader_mb": grader_mb,
            "records": {p.stem: json.loads(p.read_text()) for p in records.glob("*.json")}}


def test_blank_and_gaming_submissions_get_0_and_correct_ones_full_marks(graded):
    assert {s: int(r["passed"]) for s, r in graded["rows"].items()} == graded["expected"]
    assert graded["expected"]["victim"] == 2 and graded["expected"]["ada"] == 2  # the vandal's neighbour too
    assert all(r["of"] == "4" for r in graded["rows"].values())


def test_the_sheet_says_why_each_one_failed(graded):
    rows = graded["rows"]
    assert rows["gamed"]["ex-intro-1d"].endswith("to 6 digits, got 2e-09")
    assert "only finite numbers are graded" in rows["nan"]["ex-intro-1d"]
    assert "only finite numbers are graded" in rows["nan"]["ex-intro-2d"]  # math.inf
    assert "got a Anything (answers are graded as plain numbers" in rows["alwayseq"]["ex-intro-1d"]
    assert "got a Same (" in rows["alwayseq"]["ex-intro-2d"]
    assert "by_hand should be a tensor, got a Zeros (" in rows["subclass"]["ex-diffusion-step"]
    # checked against the grader's schedule, not the one the notebook redefined
    assert rows["schedule"]["ex-diffusion-signal"] == (
        "fail: t_one_percent should be the first step where alpha_bar < 0.01, got 5")
    for student in ("blank", "patcher", "handler", "leaker", "vandal", "daemon", "flood"):
        assert rows[student]["ex-intro-1d"].startswith("fail: define p_1d (a float)"), student
    assert "(its check cell did not run through)" in rows["transformer"]["ex-intro-1d"]
    assert "No module named 'mi_lib.exercises._core'" in rows["patcher"]["notes"]  # the checks are out of sight
    assert "cannot import name 'check' from 'mi_lib.exercises'" in rows["leaker"]["notes"]
    assert rows["killer"]["notes"].startswith("intro: the run ended without its report (exit status")
    assert rows["killer"]["ex-intro-1d"] == "fail: not reached (the run stopped before it)"
    assert "printed 200 MB (not kept)" in rows["flood"]["notes"]


def test_no_submission_changed_the_submissions_or_the_sheet(graded):
    assert graded["after"] == graded["before"]  # the vandal deleted nothing
    assert list(graded["rows"]) == sorted(graded["expected"])  # the daemon did not rewrite the sheet
    assert marked_processes() == []  # nor did its detached process outlive its sandbox


def test_a_killed_grader_resumes_and_writes_a_complete_sheet(graded):
    assert not graded["sheet_after_kill"]  # the sheet is written at the end, by the grader alone
    assert graded["recorded_before"] >= 3
    assert f"already graded, kept: {graded['recorded_before']} student(s)" in graded["log"]
    assert set(graded["rows"]) == set(graded["expected"])


def test_a_printing_flood_costs_the_grader_no_memory(graded):
    # 200 MB printed: the grader never sees it, and the sandbox's runner keeps none of it (the old
    # grader kept it all: 3.9 GB after 15 s); what it holds at once is capped by --memory-gb.
    assert graded["grader_mb"] < 1000
    flood = graded["records"]["flood"]["chapters"]["intro"]
    assert 0 < flood["peak_mb"] < 2000, flood


def test_a_folder_without_student_folders_is_a_clear_error(tmp_path):
    (tmp_path / "intro.ipynb").write_text("{}")
    with pytest.raises(ValueError, match=r"one folder per student .* 1 notebook\(s\) at its top"):
        grade_folder(tmp_path, tmp_path / "grades.csv")
    cli = subprocess.run([sys.executable, "-m", "mi_lib.teaching", "grade", str(tmp_path), "--out",
                          str(tmp_path / "grades.csv")], cwd=ROOT, capture_output=True, text=True)
    assert cli.returncode != 0 and cli.stdout == ""
    assert cli.stderr.startswith("python -m mi_lib.teaching grade: error: submissions must hold one folder per student")
    assert len(cli.stderr.splitlines()) == 1 and not (tmp_path / "grades.csv").exists()


def test_grade_folder_reports_what_it_cannot_grade(tmp_path):
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    (tmp_path / "subs" / "ada" / "intro.ipynb").write_text("{not json")
    (tmp_path / "subs" / "ada" / "notes.ipynb").write_text("{}")
    (tmp_path / "subs" / "bob").mkdir()
    (tmp_path / "subs" / "bob" / "diffusion.ipynb").write_text("{not json either")
    rows = grade_folder(tmp_path / "subs", tmp_path / "grades.csv", timeout=10)
    assert [r["student"] for r in rows] == ["ada", "bob"]
    assert list(rows[0])[3:-1] == ["ex-intro-1d", "ex-intro-2d", "ex-diffusion-signal", "ex-diffusion-step"]
    assert rows[0]["ex-intro-1d"].startswith("fail: not graded (could not read the notebook: NotJSONError")
    assert rows[0]["ex-diffusion-step"] == "fail: no diffusion.ipynb handed in"
    assert rows[0]["notes"].startswith("intro: could not read") and rows[0]["notes"].endswith("ignored: notes.ipynb")
    assert rows[1]["passed"] == "0" and rows[1]["of"] == "4"
    assert list(csv.DictReader((tmp_path / "grades.csv").open())) == rows


def test_a_notebook_goes_on_after_errors_and_a_hang_is_cut_off(tmp_path):
    import nbformat

    check = {"tags": ["check"], "exercise": {"label": "ex-intro-1d", "answers": ["p_1d"]}}
    cells = [nbformat.v4.new_code_cell("import math\np_1d = math.erfc(6 / math.sqrt(2))"),
             nbformat.v4.new_code_cell("pass  # an edited check is replaced all the same", metadata=check),
             nbformat.v4.new_code_cell("1 / 0"),
             nbformat.v4.new_code_cell("", metadata={**check, "exercise": {"label": "ex-intro-2d"}})]
    (tmp_path / "ada").mkdir()
    path = tmp_path / "ada" / "intro.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    setup = Setup(60, Limits(120), (), kernel_env())
    graded = grade_notebook(path, dict, tmp_path / "work", setup)
    assert graded.results == {"ex-intro-1d": "pass", "ex-intro-2d": "fail: define p_2d (a float) in the answer cell, "
                              "then run this check again"}
    assert graded.note == "1 cell(s) raised, first: cell 2 raised ZeroDivisionError: division by zero"
    assert not (tmp_path / "work").exists()
    cells.insert(1, nbformat.v4.new_code_cell("import time\ntime.sleep(60)"))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    graded = grade_notebook(path, dict, tmp_path / "work", Setup(5, Limits(60), (), kernel_env()))
    assert graded.note == "timed out after 5 s, in cell 1"
    assert set(graded.results.values()) == {"fail: not reached (the run stopped before it)"}
