"""A Sphinx extension for the API pages: a NamedTuple's fields are named in its signature and
described in its docstring, so autodoc's entry per field ("Alias for field number 0") is left
out."""

from __future__ import annotations


def _skip_field(app, what, name, obj, skip, options):
    doc = getattr(obj, "__doc__", None) or ""
    if what == "class" and doc.startswith("Alias for field number"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_field)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
