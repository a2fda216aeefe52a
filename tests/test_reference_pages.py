"""The Reference part of the book: the API page documents every module of mi_lib, where its
objects are defined, and the status page holds the execution table."""

import pkgutil
import re
from pathlib import Path

import yaml

import mi_lib

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> set[str]:
    found = pkgutil.walk_packages(mi_lib.__path__, prefix="mi_lib.")
    return {m.name for m in found if not m.name.endswith("__main__")}


def test_api_page_documents_each_module_once_where_its_objects_are_defined():
    documented = re.findall(r"^\.\. automodule:: (\S+)$", (ROOT / "book" / "api.md").read_text(), re.M)
    assert sorted(documented) == sorted(set(documented)), "a module documented twice"
    # mi_lib itself only re-exports: documenting it too would describe every object twice.
    assert set(documented) == _modules()


def test_reference_is_the_last_part_of_the_toc():
    last = yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"][-1]
    assert last["caption"] == "Reference"
    assert [c["file"] for c in last["chapters"]] == ["book/api", "book/status"]


def test_status_page_has_the_execution_table():
    assert "```{nb-exec-table}" in (ROOT / "book" / "status.md").read_text()
