"""Checks of the chapters as files: committed clean, built the same way, teachable."""

import json
import re
from pathlib import Path

import pytest
import yaml

from mi_lib.exercises import EXERCISES
from mi_lib.teaching import check_source, exercise_of, student_version

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
# The studies at the paper's protocol: pages of their own, built like chapters, without exercises.
STUDIES = sorted((ROOT / "book" / "studies").glob("*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _files(entries: list[dict]) -> set[str]:
    return {f for e in entries for f in {e["file"], *_files(e.get("sections", []))}}


def test_every_chapter_and_study_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]} | _files([c for part in toc["parts"] for c in part["chapters"]])
    # The Reference part's pages (book/api.md, book/api/, book/status.md) are markdown.
    notebooks = {str(p.relative_to(ROOT).with_suffix("")) for p in CHAPTERS + STUDIES}
    assert notebooks == {f for f in files if not (ROOT / f"{f}.md").exists()}
    numbered = _files([c for part in toc["parts"] if part.get("numbered") for c in part["chapters"]])
    assert numbered == {f"book/{p.stem}" for p in CHAPTERS} - {toc["root"]}


@pytest.mark.parametrize("path", CHAPTERS + STUDIES, ids=lambda p: p.name)
def test_chapter_is_committed_without_outputs(path):
    for cell in _load(path)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: strip outputs"


@pytest.mark.parametrize("path", CHAPTERS + STUDIES, ids=lambda p: p.name)
def test_chapter_installs_mi_lib_in_colab_from_the_configured_repository(path):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    first = _load(path)["cells"][0]
    assert "remove-cell" in first["metadata"].get("tags", [])
    assert '"google.colab" in sys.modules' in _src(first)
    assert f'repo = "{url}"' in _src(first) and '"mi-lib @ git+{repo}"' in _src(first), path.name


@pytest.mark.parametrize("path", CHAPTERS + STUDIES, ids=lambda p: p.name)
def test_chapter_reads_its_scale_once_in_a_parameters_cell(path):
    cells = _load(path)["cells"]
    params = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and re.search(r"^SCALE = None", _src(params[0]), re.M)
    assert sum("get_scale(SCALE)" in _src(c) for c in cells) == 1


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_exercises_with_solutions_and_a_student_version(path):
    nb = _load(path)
    sources = [_src(c) for c in nb["cells"]]
    exercises = re.findall(r"```\{exercise\}\n:label: (\S+)", "\n".join(sources))
    solved = re.findall(r"```\{solution-start\} (\S+)", "\n".join(sources))
    assert len(exercises) >= 2 and sorted(exercises) == sorted(solved)
    student = student_version(nb)
    text = "\n".join(_src(c) for c in student["cells"])
    assert "solution-start" not in text and "solution-end" not in text
    assert len(re.findall(r"```\{exercise\}", text)) == len(exercises)
    checks = [c for c in nb["cells"] if "check" in c["metadata"].get("tags", [])]
    assert [_src(c) for c in student["cells"] if "check" in c["metadata"].get("tags", [])] == [_src(c) for c in checks]
    assert len(student["cells"]) < len(nb["cells"])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_exercises_come_last_in_one_layout(path):
    """After the chapter's `## Exercises` heading, and nowhere before it: each exercise is its
    directive, optional setup code cells, its solution between solution-start and solution-end,
    then its check cell (outside the dropdown), whose metadata names the label and the answers."""
    cells = _load(path)["cells"]
    heading = [i for i, c in enumerate(cells) if re.search(r"^## Exercises$", _src(c), re.M)]
    assert len(heading) == 1, f"{path.name}: one '## Exercises' heading"
    assert not re.search(r"^## ", _src(cells[heading[0]]).split("## Exercises", 1)[1], re.M)
    for c in cells[: heading[0]]:
        assert "{exercise}" not in _src(c) and "{solution-" not in _src(c) and not exercise_of(c), path.name
    state, label = "directive", None
    for c in cells[heading[0] + 1 :]:
        s, tags = _src(c), c["metadata"].get("tags", [])
        heading_here = c["cell_type"] == "markdown" and re.search(r"^#{1,2} ", s, re.M)
        assert not heading_here or state == "solution", f"{path.name}: a section after the exercises"
        if state == "directive":
            m = re.match(r"```\{exercise\}\n:label: (\S+)", s)
            assert m, f"{path.name}: expected an exercise directive, got {s[:60]!r}"
            label, state = m.group(1), "setup"
        elif state == "setup" and c["cell_type"] == "code":
            assert not tags, f"{path.name}: {label}'s setup cell is tagged {tags}"
        elif state == "setup":
            assert s.startswith(f"```{{solution-start}} {label}\n:class: dropdown"), f"{path.name}: {label}"
            state = "solution"
        elif state == "solution":
            assert "check" not in tags, f"{path.name}: {label}'s check cell sits inside its solution"
            state = "check" if s.startswith("```{solution-end}") else state
        else:
            assert "check" in tags and s == check_source(label), f"{path.name}: {label} needs its check cell"
            record = c["metadata"]["exercise"]
            assert record == {"label": label, "answers": list(EXERCISES[label].answers)}, path.name
            assert EXERCISES[label].chapter == path.stem
            state = "directive"
    assert state == "directive", f"{path.name}: the last exercise is incomplete ({state})"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_student_answer_cells_name_what_to_define(path):
    for cell in student_version(_load(path))["cells"]:
        if "answer" in cell["metadata"].get("tags", []):
            label = cell["metadata"]["exercise"]["label"]
            assert _src(cell).startswith(f"# Define: {EXERCISES[label].define_line()}\n"), _src(cell)


def test_student_version_rejects_broken_solutions():
    start = {"cell_type": "markdown", "metadata": {}, "source": "```{solution-start} ex\n```"}
    end = {"cell_type": "markdown", "metadata": {}, "source": "```{solution-end}\n```"}
    with pytest.raises(ValueError, match="no solution-end"):
        student_version({"cells": [start]})
    with pytest.raises(ValueError, match="without a solution-start"):
        student_version({"cells": [end]})
    with pytest.raises(ValueError, match="cannot nest"):
        student_version({"cells": [start, start, end]})


@pytest.mark.parametrize("path", CHAPTERS + STUDIES, ids=lambda p: p.name)
def test_code_fits_the_text_column(path):
    """Every code line fits the page's code box (79 characters, comments included), and no
    cell a reader sees is over 20 lines (issue 25: code cut off at the column's edge)."""
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        lines = _src(cell).splitlines()
        wide = [line for line in lines if len(line) > 79]
        assert not wide, f"{path.name} cell {i}: {len(wide)} lines over 79 characters: {wide[0]!r}"
        if not {"remove-cell", "remove-input"} & set(cell["metadata"].get("tags", [])):
            assert len(lines) <= 20, f"{path.name} cell {i}: {len(lines)} lines shown"
