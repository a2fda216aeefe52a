"""A class's submissions for the grading tests: correct, blank, gamed, and each attack on the grader.

Built from the book's own student versions (intro and diffusion), each student's notebook is the
student version with its answer cells filled in and, for an attack, cells added. Most are the
exercises part alone (a student may hand in any cells; it keeps the tests fast). `write(root,
sheet)` writes them as root/STUDENT/CHAPTER.ipynb and returns {student: the grades each must get}.
Run as a script to write the folder and look at it: python tests/grading_attacks.py OUT_DIR
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

from mi_lib.teaching import student_version

BOOK = Path(__file__).resolve().parents[1] / "book"
MARKER = "mi-grading-daemon-marker"  # in the command line of the detached process the daemon starts

# Cells an attack adds before the first answer cell (prelude) or after the last check (coda).
PATCH_CHECKS = """import mi_lib.exercises as ex
import mi_lib.exercises._core as core

def passes(*args, **kwargs):
    print("correct")

ex.check = core.check = passes
for e in list(ex.EXERCISES.values()):
    object.__setattr__(e, "fn", passes)"""
SWALLOW = """def swallow(shell, etype, evalue, tb, tb_offset=None):
    print("correct")

get_ipython().set_custom_exc((BaseException,), swallow)"""
TRANSFORM = """def rewrite(lines):
    text = "".join(lines)
    if "check(" in text or "export_answers" in text or "mi_lib" in text:
        return ["print('correct')\\n"]
    return lines

get_ipython().input_transformers_cleanup.append(rewrite)"""
LEAK = """import math
import sys

from mi_lib.exercises import check


def floats(obj, depth=0):
    if isinstance(obj, float):
        yield obj
    elif depth < 3 and isinstance(obj, (list, tuple, set)):
        for x in obj:
            yield from floats(x, depth + 1)
    elif depth < 3 and isinstance(obj, dict):
        for x in obj.values():
            yield from floats(x, depth + 1)


def leaked(label, name):
    try:
        check(label, {name: -1.0})
    except AssertionError as exc:
        tb, found = exc.__traceback__, []
        while tb is not None:
            found += [x for x in floats(tb.tb_frame.f_locals) if x > 0]
            tb = tb.tb_next
        for x in found:
            try:
                check(label, {name: x})
                return x
            except AssertionError:
                pass


p_1d, p_2d = leaked("ex-intro-1d", "p_1d"), leaked("ex-intro-2d", "p_2d")"""
ALWAYS_EQUAL = """class Anything(float):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = float.__hash__


class Same:
    def __eq__(self, other):
        return True

    def __float__(self):
        return float("nan")


p_1d, p_2d = Anything(0.0), Same()"""
DAEMON = """import subprocess
import sys

code = "import time; time.sleep(3); open({sheet!r}, 'w').write('student,passed\\\\ndaemon,99\\\\n')"
subprocess.Popen([sys.executable, "-c", code, "{marker}"], start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)"""
VANDAL = """import os
import shutil

for target in ({root!r}, {sheet!r}):
    for base, dirs, files in os.walk(target):
        for name in files:
            try:
                os.remove(os.path.join(base, name))
            except OSError:
                pass
    shutil.rmtree(target, ignore_errors=True)
for name in os.listdir(".."):
    shutil.rmtree(os.path.join("..", name), ignore_errors=True)"""
# Kills the process that runs its kernel: the old grader's own worker. (Not os.kill(-1, ...): run
# outside a sandbox as root, that ends every process on the machine.)
KILLER = """import os
import signal

os.kill(os.getppid(), signal.SIGKILL)"""
FLOOD = """line = "x" * (1 << 20)
for _ in range(200):
    print(line)
try:
    hog = bytearray(6 << 30)
except MemoryError:
    pass"""
SCHEDULE = """import torch


class schedule:  # alpha_bar below 0.01 from t = 5 on: the in-notebook check now wants 5 and 0.5
    alpha_bar = torch.cat([torch.ones(5), torch.zeros(5)]).double()"""
SUBCLASS = """import torch


class Zeros(torch.Tensor):
    def __sub__(self, other):
        return torch.zeros_like(other)


by_hand = torch.zeros(5, 1).as_subclass(Zeros)"""


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def solutions(nb: dict) -> dict[str, str]:
    """label -> the code of its worked solution in book notebook `nb` (its code cells, joined)."""
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


def notebook(chapter: str, answers: dict[str, str] | None = None, prelude: str = "", coda: str = "",
             whole: bool = False) -> dict:
    """The student version of `chapter` with answers[label] in each answer cell (blank where
    missing, the book's solution for the value "solution"), `prelude` added before the first
    answer cell and `coda` after the last cell; only the chapter's set-up and exercises unless
    `whole` (the set-up: its first code cells up to the imports, and each exercise's own)."""
    book = json.loads((BOOK / f"{chapter}.ipynb").read_text())
    nb, solved = student_version(book), solutions(book)
    cells, added = [], 0
    for i, cell in enumerate(nb["cells"]):
        tags = cell["metadata"].get("tags", [])
        if not whole and cell["cell_type"] == "code" and i not in KEEP[chapter] and i < FIRST[chapter]:
            continue
        if "answer" in tags:
            if prelude and not added:
                cells.append(code_cell(prelude, "attack-prelude"))
                added = 1
            label = cell["metadata"]["exercise"]["label"]
            given = (answers or {}).get(label)
            cell = copy.deepcopy(cell)
            cell["source"] = solved[label] if given == "solution" else given or _src(cell)
        cells.append(cell)
    if coda:
        cells.append(code_cell(coda, "attack-coda"))
    nb["cells"] = cells
    return nb


def code_cell(source: str, cell_id: str) -> dict:
    """A code cell with `source`, as a notebook file holds it."""
    return {"cell_type": "code", "id": cell_id, "metadata": {}, "outputs": [], "execution_count": None,
            "source": source}


# The code cells a short submission keeps, by their index in the student version: the imports,
# and the cells that compute the exercises' inputs (diffusion: the schedule, the data, the step).
KEEP = {"intro": {2, 3}, "diffusion": {2, 3, 5, 7}}
FIRST = {"intro": 9, "diffusion": 24}  # from here on, everything: the exercises


def submissions(root: Path, sheet: Path) -> dict[str, dict[str, tuple[dict, int]]]:
    """{student: {chapter: (notebook, exercises it must pass)}} for the class (see the module)."""
    sol = "solution"
    both = {"ex-intro-1d": sol, "ex-intro-2d": sol}
    return {
        "ada": {"intro": (notebook("intro", both, whole=True), 2)},
        "grace": {"diffusion": (notebook("diffusion", {"ex-diffusion-signal": sol, "ex-diffusion-step": sol},
                                         whole=True), 2)},
        "blank": {"intro": (notebook("intro"), 0)},
        "gamed": {"intro": (notebook("intro", {"ex-intro-1d": "p_1d = 2e-9", "ex-intro-2d": "p_2d = 1.5e-8"}), 0)},
        "patcher": {"intro": (notebook("intro", prelude=PATCH_CHECKS), 0)},
        "handler": {"intro": (notebook("intro", prelude=SWALLOW), 0)},
        "transformer": {"intro": (notebook("intro", prelude=TRANSFORM), 0)},
        "leaker": {"intro": (notebook("intro", prelude=LEAK), 0)},
        "nan": {"intro": (notebook("intro", {"ex-intro-1d": "p_1d = float('nan')", "ex-intro-2d": "p_2d = math.inf"}),
                          0)},
        "alwayseq": {"intro": (notebook("intro", prelude=ALWAYS_EQUAL), 0)},
        "schedule": {"diffusion": (notebook("diffusion", {"ex-diffusion-signal": "t_one_percent, share = 5, 0.5"},
                                            prelude=SCHEDULE), 0)},
        "subclass": {"diffusion": (notebook("diffusion", {
            "ex-diffusion-step": SUBCLASS, "ex-diffusion-signal": "t_one_percent, share = 5, float('nan')"}), 0)},
        "vandal": {"intro": (notebook("intro", prelude=VANDAL.format(root=str(root), sheet=str(sheet))), 0)},
        "victim": {"intro": (notebook("intro", both), 2)},  # beside the vandal, in the sheet and in time
        "daemon": {"intro": (notebook("intro", prelude=DAEMON.format(sheet=str(sheet), marker=MARKER)), 0)},
        "killer": {"intro": (notebook("intro", prelude=KILLER), 0)},
        "flood": {"intro": (notebook("intro", prelude=FLOOD), 0)},
    }


def write(root: Path, sheet: Path) -> dict[str, int]:
    """Write the class's submissions as root/STUDENT/CHAPTER.ipynb; {student: exercises to pass}."""
    expected = {}
    for student, chapters in submissions(root, sheet).items():
        (root / student).mkdir(parents=True)
        for chapter, (nb, _) in chapters.items():
            (root / student / f"{chapter}.ipynb").write_text(json.dumps(nb, indent=1))
        expected[student] = sum(passes for _, passes in chapters.values())
    return expected


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print(write(out / "submissions", out / "grades.csv"))
