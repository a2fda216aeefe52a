"""Answers as plain data: what leaves a student's kernel to be graded.

An answer travels as JSON built from a few exact types: None, bool, int, float, str, list,
tuple, dict, a torch tensor or numpy array (dtype, shape and values) and a Rate (its five
fields). `encode` refuses anything else, subclasses included (a float or tensor subclass, or an
object whose ``__eq__`` is always true, could compare equal to any reference), and `decode`
builds the values afresh, so a check only ever sees values whose comparisons it can trust.
`plain` is the two in a row: what an in-notebook check and the grader both check.

While a notebook is graded, each check cell is replaced by a call to `export_answers`, which
runs in the student's kernel and writes that exercise's answers to LABEL.json; the grader reads
them back with `read_answers` (the file is untrusted: size-limited, parsed strictly).
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from mi_lib.checkpoints import atomic_write
from mi_lib.metrics import Rate

SCALARS = (type(None), bool, int, float, str)
NUMPY_SCALARS = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                 np.float16, np.float32, np.float64)
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64")
MAX_BYTES = 64 << 20  # one exercise's answers, as JSON
MAX_DEPTH = 16
GRADED = "answers are graded as plain numbers, strings, lists, tuples, dicts, tensors, arrays or Rates"


class NotPlain(TypeError):
    """A value that is not an answer the grader takes; the message says which and why."""


def _array(v: torch.Tensor | np.ndarray, tag: str, path: str) -> dict:
    dtype = str(v.dtype).removeprefix("torch.")
    if dtype not in DTYPES or (tag == "tensor" and v.layout != torch.strided):
        raise NotPlain(f"a {tag} of {dtype} at {path} (it should hold one of {', '.join(DTYPES)})")
    data = v.detach().cpu() if tag == "tensor" else v
    return {tag: {"dtype": dtype, "shape": list(v.shape), "data": data.reshape(-1).tolist()}}


def encode(v: object, path: str = "answer", depth: int = 0) -> object:
    """`v` as JSON-ready data (see the module's docstring); raises NotPlain naming where in `v`
    (e.g. rates_by_k[3.0][0]) an unsupported type sits."""
    if depth > MAX_DEPTH:
        raise NotPlain(f"{path}, nested more than {MAX_DEPTH} levels deep")
    kind = type(v)
    if kind in SCALARS:
        return v
    if kind in NUMPY_SCALARS:
        return v.item()
    if kind in (list, tuple):
        return {kind.__name__: [encode(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v)]}
    if kind is dict:
        return {"dict": [[encode(k, f"{path} key", depth + 1), encode(x, f"{path}[{k!r}]", depth + 1)]
                         for k, x in v.items()]}
    if kind is torch.Tensor:
        return _array(v, "tensor", path)
    if kind is np.ndarray:
        return _array(v, "array", path)
    if kind is Rate:
        return {"rate": [encode(x, f"{path}.{f}", depth + 1) for f, x in zip(Rate._fields, v, strict=True)]}
    where = f" in {path}" if depth else ""
    raise NotPlain(f"a {kind.__name__}{where} ({GRADED}, not subclasses)")


def _decode_array(spec: object, tag: str, path: str) -> torch.Tensor | np.ndarray:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data"} or spec["dtype"] not in DTYPES:
        raise NotPlain(f"{path} is not a well-formed {tag}")
    shape, data = spec["shape"], spec["data"]
    if (not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape)
            or not isinstance(data, list) or len(data) != math.prod(shape)
            or not all(type(x) in (bool, int, float) for x in data)):
        raise NotPlain(f"{path} is not a well-formed {tag}")
    if tag == "array":
        return np.array(data, dtype=spec["dtype"]).reshape(shape)
    return torch.tensor(data, dtype=getattr(torch, spec["dtype"])).reshape(shape)


def decode(obj: object, path: str = "answer", depth: int = 0) -> object:
    """The value that `encode` turned into `obj`, built afresh from plain types; raises NotPlain
    on anything `encode` would not have written."""
    if depth > MAX_DEPTH:
        raise NotPlain(f"{path} is nested more than {MAX_DEPTH} levels deep")
    if type(obj) in SCALARS:
        return obj
    if type(obj) is not dict or len(obj) != 1:
        raise NotPlain(f"{path} is not an encoded answer")
    (tag, body), = obj.items()
    if tag in ("tensor", "array"):
        return _decode_array(body, tag, path)
    if type(body) is not list:
        raise NotPlain(f"{path} is not an encoded answer")
    items = [decode(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(body)] if tag != "dict" else None
    if tag == "list":
        return items
    if tag == "tuple":
        return tuple(items)
    if tag == "rate" and len(items) == 5 and all(type(x) is int for x in items[:2]):
        return Rate(*items)
    if tag == "dict" and all(type(p) is list and len(p) == 2 for p in body):
        pairs = [(decode(k, f"{path} key", depth + 1), decode(x, f"{path} value", depth + 1)) for k, x in body]
        if all(type(k) in SCALARS or type(k) is tuple for k, _ in pairs):
            return dict(pairs)
    raise NotPlain(f"{path} is not an encoded answer")


def plain(v: object, path: str = "answer") -> object:
    """`v` as the grader receives it: encoded and decoded (raises NotPlain if it cannot be)."""
    return decode(encode(v, path), path)


def finite(v: object) -> bool:
    """Whether every number in the plain value `v` (in its lists, dicts, tensors, arrays and
    Rates) is finite: NaN and infinities are never an answer."""
    if type(v) is float:
        return math.isfinite(v)
    if isinstance(v, torch.Tensor | np.ndarray):
        return bool(np.isfinite(np.asarray(v, dtype=np.float64)).all())
    if isinstance(v, dict):
        return all(finite(k) and finite(x) for k, x in v.items())
    if isinstance(v, list | tuple):  # Rate is a tuple
        return all(finite(x) for x in v)
    return True


def export_answers(label: str, names: Iterable[str], namespace: Mapping[str, object], folder: str | Path) -> None:
    """Write folder/LABEL.json: each of `names` as found in `namespace`, encoded, or why not
    (missing from the namespace, or not plain data). Runs in the student's kernel."""
    record = {}
    for name in names:
        if name not in namespace:
            record[name] = {"missing": True}
            continue
        try:
            record[name] = {"value": encode(namespace[name], name)}
        except NotPlain as exc:
            record[name] = {"refused": str(exc)}
    text = json.dumps({"label": label, "answers": record}).encode()
    if len(text) > MAX_BYTES:
        text = json.dumps({"label": label, "answers": {
            n: {"refused": f"{n} is over {MAX_BYTES >> 20} MB as data"} for n in record}}).encode()
    atomic_write(Path(folder) / f"{label}.json", lambda f: f.write(text))


class Refused:
    """An answer that did not leave the kernel as data, with the reason (checks fail it)."""

    def __init__(self, why: str) -> None:
        self.why = why


def _read_untrusted(dir_fd: int, name: str) -> bytes | None:
    """The bytes of regular file `name` in the folder open as dir_fd, without following links;
    None if it is missing, not a regular file or over MAX_BYTES."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            return None
        return f.read(MAX_BYTES + 1)


def read_answers(folder: Path, label: str) -> dict[str, object] | None:
    """The answers to `label` that a graded kernel exported into `folder` (name -> value, or a
    Refused; names reported missing are left out), or None if it wrote no readable record."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        raw = _read_untrusted(dir_fd, f"{label}.json")
    finally:
        os.close(dir_fd)
    try:
        record = json.loads(raw) if raw is not None and len(raw) <= MAX_BYTES else None
    except (ValueError, RecursionError):
        return None
    if type(record) is not dict or record.get("label") != label or type(record.get("answers")) is not dict:
        return None
    answers: dict[str, object] = {}
    for name, entry in record["answers"].items():
        if type(entry) is not dict or entry.get("missing") is True:
            continue
        if type(entry.get("refused")) is str:
            answers[name] = Refused(entry["refused"][:300])
            continue
        try:
            answers[name] = decode(entry.get("value"), name)
        except (NotPlain, ValueError, TypeError, RecursionError) as exc:
            answers[name] = Refused(str(exc)[:300])
    return answers
