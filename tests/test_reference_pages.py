"""The Reference part of the book: the API page documents every module of mi_lib, where its
objects are defined, the status page holds the execution table, and every docstring
it renders is valid reStructuredText."""

import importlib
import inspect
import io
import pkgutil
import re
from pathlib import Path

import docutils.core
import docutils.utils
import yaml

import mi_lib

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> set[str]:
    found = pkgutil.walk_packages(mi_lib.__path__, prefix="mi_lib.")
    return {m.name for m in found if not m.name.endswith("__main__")}


def test_api_page_documents_each_module_once_where_its_objects_are_defined():
    pages = [ROOT / "book" / "api.md", *sorted((ROOT / "book" / "api").glob("*.md"))]
    documented = [m for page in pages for m in re.findall(r"^\.\. automodule:: (\S+)$", page.read_text(), re.M)]
    assert sorted(documented) == sorted(set(documented)), "a module documented twice"
    # mi_lib itself only re-exports: documenting it too would describe every object twice.
    assert set(documented) == _modules()


def test_reference_is_the_last_part_of_the_toc():
    last = yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"][-1]
    assert last["caption"] == "Reference"
    assert [c["file"] for c in last["chapters"]] == ["book/api", "book/status"]
    # One API page per topic, each listed under the API page and linked from it.
    topics = [s["file"] for s in last["chapters"][0]["sections"]]
    assert sorted(topics) == sorted(f"book/api/{p.stem}" for p in (ROOT / "book" / "api").glob("*.md"))
    index = (ROOT / "book" / "api.md").read_text()
    assert [t.removeprefix("book/") for t in topics] == re.findall(r"\{doc\}`(api/\w+)`", index)


def test_api_pages_leave_out_namedtuple_field_entries():
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from mi_autodoc import _skip_field

    from mi_lib.artifacts.build import BuildOptions

    assert _skip_field(None, "class", "work_dir", BuildOptions.work_dir, False, {}) is True
    assert _skip_field(None, "class", "build", BuildOptions.__init__, False, {}) is None


def test_status_page_has_the_execution_table():
    assert "```{nb-exec-table}" in (ROOT / "book" / "status.md").read_text()


def _docstrings():
    """(qualified name, docstring) of every module, class, function and method of mi_lib."""
    for name in sorted(_modules()):
        module = importlib.import_module(name)
        yield name, module.__doc__
        for attr, obj in vars(module).items():
            if getattr(obj, "__module__", None) != name or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            yield f"{name}.{attr}", obj.__doc__
            if inspect.isclass(obj):
                for meth, fn in vars(obj).items():
                    if inspect.isfunction(fn):
                        yield f"{name}.{attr}.{meth}", fn.__doc__


def test_docstrings_are_valid_restructuredtext():
    # The API page renders every docstring as reST under -W: a stray |z| or an unclosed
    # `backquote` fails the book build long after the unit tests passed.
    bad = []
    for where, doc in _docstrings():
        if not doc:
            continue
        stream = io.StringIO()
        settings = {"report_level": docutils.utils.Reporter.WARNING_LEVEL, "halt_level": 5, "warning_stream": stream}
        docutils.core.publish_doctree(inspect.cleandoc(doc), settings_overrides=settings)
        bad += [f"{where}: {line}" for line in stream.getvalue().splitlines() if line.strip()]
    assert not bad, "\n".join(bad)
