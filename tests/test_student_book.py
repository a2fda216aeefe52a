"""The student edition (make book-student): the same chapters without a trace of their solutions."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from grading_attacks import solutions

from mi_lib.student_book import write_site

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def test_no_solution_reaches_the_student_edition(tmp_path):
    written = write_site(tmp_path / "site")
    site_book = tmp_path / "site" / "book"
    # The chapters and the studies (book/studies/, pages without exercises).
    expected = sorted(p.relative_to(BOOK) for p in BOOK.rglob("*.ipynb"))
    assert sorted(p.relative_to(site_book) for p in written) == expected
    for path in written:
        text = path.read_text()
        assert "solution-start" not in text and "solution-end" not in text, path.name
        for label, code in solutions(json.loads((BOOK / path.relative_to(site_book)).read_text())).items():
            first = next(line for line in code.splitlines() if line.strip() and not line.startswith("#"))
            assert first not in text, (path.name, label, first)
        checks = [c for c in json.loads(text)["cells"] if "check" in c["metadata"].get("tags", [])]
        assert checks or path.parent != site_book, f"{path.name}: a chapter without check cells"
        assert all({"raises-exception", "remove-output"} <= set(c["metadata"]["tags"]) for c in checks)
    config = yaml.safe_load((tmp_path / "site" / "_config.yml").read_text())
    assert config["title"].endswith("(student edition)") and config["execute"]["execute_notebooks"] == "cache"
    assert "launch_buttons" not in config and "repository" not in config  # no buttons to the solutions
    assert (tmp_path / "site" / "_toc.yml").read_text() == (ROOT / "_toc.yml").read_text()
    assert ({p.relative_to(site_book) for p in site_book.rglob("*.md")}
            == {p.relative_to(BOOK) for p in BOOK.rglob("*.md")})
    assert (site_book / "_ext" / "mi_autodoc.py").is_file()  # the API pages' Sphinx extension
    assert (tmp_path / "site" / "_static" / "mi_code.css").is_file()


def test_executed_chapters_keep_their_outputs_but_not_the_solutions(tmp_path):
    nb = json.loads((BOOK / "intro.ipynb").read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"output of cell {i}\n"}]
    (tmp_path / "executed").mkdir()
    (tmp_path / "executed" / "intro.ipynb").write_text(json.dumps(nb))
    write_site(tmp_path / "site", tmp_path / "executed", repository="https://example.org/class/notebooks")
    student = json.loads((tmp_path / "site" / "book" / "intro.ipynb").read_text())
    kept = {o["text"] for c in student["cells"] if c["cell_type"] == "code" for o in c["outputs"]}
    solved = {f"output of cell {i}\n" for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
              and any(s.strip() and s.strip() in "".join(c["source"]) for s in solutions(nb).values())}
    assert solved and kept and not kept & solved and "output of cell 0\n" in kept
    config = yaml.safe_load((tmp_path / "site" / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["repository"]["url"] == "https://example.org/class/notebooks" and "launch_buttons" in config


def test_no_chapters_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="chapters must be a folder of chapter notebooks"):
        write_site(tmp_path / "site", tmp_path)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_book_student_writes_then_builds_strictly(tmp_path):
    out = subprocess.run(["make", "-n", "book-student", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "-m mi_lib.teaching site _student --chapters book" in out
    assert "jupyter-book build _student -W -n --keep-going" in out
