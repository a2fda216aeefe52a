"""The book without its solutions, for a class: ``python -m mi_lib.teaching site OUT``.

OUT gets a Jupyter Book of its own from the same sources: ``_config.yml`` and ``_toc.yml``, the
chapters' other pages, and every chapter as its student version (mi_lib.teaching: each worked
solution replaced by an empty answer cell). Its check cells may raise (the answers are blank)
and their output is not shown. ``make book-student`` builds it strictly into ``OUT/_build/html``;
``OUT/book/*.ipynb`` are the notebooks to hand out (the site's download button serves them too).

Chapters that were executed already (those ``make test`` leaves in ``.executed/book``) keep their
outputs, less the solutions', and the build executes nothing. The site links to no repository
(its Colab and Binder buttons would open the chapters with their solutions) unless one that
holds the student notebooks is given: then its buttons open ``OUT/book``'s notebooks from there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from mi_lib.teaching import exercise_of, student_version

ROOT = Path(__file__).resolve().parents[1]


def classroom_notebook(nb: dict) -> dict:
    """The student version of chapter `nb`, with each check cell allowed to raise, its output
    hidden, and the answer and check cells' outputs cleared."""
    out = student_version(nb)
    for cell in out["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if exercise_of(cell) is not None:
            cell["metadata"]["tags"] = [*tags, "raises-exception", "remove-output"]
        if "answer" in tags or exercise_of(cell) is not None:
            cell["outputs"], cell["execution_count"] = [], None
    return out


def classroom_config(config: dict, executed: bool, repository: str | None) -> dict:
    """The book's _config.yml for the student edition: its title marked, execution off for
    chapters executed already, and the repository links pointed at `repository` (or removed)."""
    config = json.loads(json.dumps(config))
    config["title"] = f"{config.get('title', 'The book')} (student edition)"
    if executed:
        config.setdefault("execute", {})["execute_notebooks"] = "off"
    if repository:
        config["repository"] = {**config.get("repository", {}), "url": repository}
    else:
        config.pop("launch_buttons", None)
        config.pop("repository", None)
        for key in ("use_repository_button", "use_issues_button"):
            config.setdefault("html", {})[key] = False
    return config


def _pages(chapters: Path) -> list[Path]:
    """The book's source files under `chapters`, its sub-folders included (the studies, the API
    pages, the Sphinx extension), without build outputs, caches or hidden files."""
    skip = {"_build", "__pycache__", ".ipynb_checkpoints"}
    return sorted(p for p in chapters.rglob("*") if p.is_file()
                  and not any(part in skip or part.startswith(".") for part in p.relative_to(chapters).parts))


def write_site(out: Path, chapters: Path | None = None, repository: str | None = None) -> list[Path]:
    """Write the student edition's sources into `out` (see the module's docstring) from the
    chapters in `chapters` (default: the book's own); return the notebooks written."""
    chapters = Path(chapters) if chapters is not None else ROOT / "book"
    pages = _pages(chapters)
    notebooks = [p for p in pages if p.suffix == ".ipynb"]
    if not notebooks:
        raise ValueError(f"chapters must be a folder of chapter notebooks, got {str(chapters)!r} with none")
    sources = [json.loads(p.read_text()) for p in notebooks]
    executed = all(any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code") for nb in sources)
    out = Path(out)
    shutil.rmtree(out / "book", ignore_errors=True)
    (out / "book").mkdir(parents=True)
    for page in pages:
        if page.suffix != ".ipynb":
            (out / "book" / page.relative_to(chapters)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(page, out / "book" / page.relative_to(chapters))
    written = []
    for path, nb in zip(notebooks, sources, strict=True):
        target = out / "book" / path.relative_to(chapters)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(classroom_notebook(nb), indent=1) + "\n")
        written.append(target)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    (out / "_config.yml").write_text(yaml.safe_dump(classroom_config(config, executed, repository), sort_keys=False))
    shutil.copy(ROOT / "_toc.yml", out / "_toc.yml")
    shutil.copytree(ROOT / "_static", out / "_static", dirs_exist_ok=True)  # the pages' CSS
    return written
