"""The machinery of the exercise checks: a registry of one check function per exercise label,
the answer types a check accepts, and the comparisons that say what was expected.

A check cell in a chapter is one call, ``check("ex-diffusion-signal", globals())``: the check
reads the student's answers and the chapter's inputs by name, recomputes the reference answer
and raises ExerciseFailed (an AssertionError) with a message that says what was expected. That
is feedback for the student. Grades come from `verdict`, called by the grader in its own process
with the answers read out of the student's kernel as plain data (mi_lib.answers) and inputs the
grader computed itself (mi_lib.grading_reference).
"""

from __future__ import annotations

import math
import numbers
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from mi_lib.answers import NotPlain, Refused, finite, plain
from mi_lib.metrics import Rate


class ExerciseFailed(AssertionError):
    """An answer is missing, of the wrong type, or wrong; the message says which and why."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows in place of a traceback: the message alone (the check's own code
        would only distract, and would show the reference computation)."""
        return [f"ExerciseFailed: {self}"]


def _as_int(v: object) -> int:
    if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.is_floating_point():
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError
    return int(v)


def _as_float(v: object) -> float:
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError
    return float(v)


def _of(kind: type) -> Callable[[object], object]:
    def coerce(v: object) -> object:
        if not isinstance(v, kind):
            raise TypeError
        return v

    return coerce


# What an answer may be: the words the student reads, and the function that accepts a value.
ANSWER_KINDS: dict[str, tuple[str, Callable[[object], object]]] = {
    "int": ("an int", _as_int),
    "float": ("a float", _as_float),
    "Rate": ("a Rate", _of(Rate)),
    "dict": ("a dict", _of(dict)),
    "list": ("a list", _of((list, tuple))),
    "tensor": ("a tensor", _of(torch.Tensor)),
}


@dataclass(frozen=True)
class Exercise:
    """One exercise: its label, its chapter, the names the student defines (name -> kind), the
    chapter's names the check reads, and the check itself (called with all of them)."""

    label: str
    chapter: str
    answers: dict[str, str]
    inputs: tuple[str, ...]
    fn: Callable[..., None] = field(repr=False)

    def define_line(self) -> str:
        """What the answer cell of the student version asks for, e.g. 't_one_percent (an int)'."""
        return ", ".join(f"{name} ({ANSWER_KINDS[kind][0]})" for name, kind in self.answers.items())


EXERCISES: dict[str, Exercise] = {}


def exercise(label: str, answers: dict[str, str], inputs: tuple[str, ...] = ()):
    """Register the decorated function as the check of exercise `label`. The chapter is the
    name of the module it sits in (mi_lib/exercises/<chapter>.py)."""
    for kind in answers.values():
        if kind not in ANSWER_KINDS:
            raise ValueError(f"answer kinds must be among {sorted(ANSWER_KINDS)}, got {kind!r}")

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        if label in EXERCISES:
            raise ValueError(f"exercise {label!r} is registered twice")
        chapter = fn.__module__.rsplit(".", 1)[-1]
        EXERCISES[label] = Exercise(label, chapter, dict(answers), tuple(inputs), fn)
        return fn

    return register


def _coerce(name: str, kind: str, value: object) -> object:
    """The answer `name` as the plain value of `kind` that the check compares (see
    mi_lib.answers: only exact plain types pass, and only finite numbers)."""
    words, coerce = ANSWER_KINDS[kind]
    if isinstance(value, Refused):
        raise ExerciseFailed(f"{name} should be {words}, got {value.why}")
    try:
        value = coerce(plain(value, name))
    except NotPlain as exc:
        raise ExerciseFailed(f"{name} should be {words}, got {exc}") from None
    except (TypeError, ValueError):
        raise ExerciseFailed(f"{name} should be {words}, got {type(value).__name__}") from None
    if not finite(value):
        raise ExerciseFailed(f"{name} should be {words}, got NaN or infinity (only finite numbers are graded)")
    return value


def _run(ex: Exercise, answers: Mapping[str, object], inputs: Mapping[str, object]) -> None:
    args = {}
    for name, kind in ex.answers.items():
        if name not in answers:
            words = ANSWER_KINDS[kind][0]
            raise ExerciseFailed(f"define {name} ({words}) in the answer cell, then run this check again")
        args[name] = _coerce(name, kind, answers[name])
    for name in ex.inputs:
        if name not in inputs:
            raise ExerciseFailed(f"{name} is not defined: run the chapter's cells above this exercise first")
        args[name] = inputs[name]
    try:
        ex.fn(**args)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError, ArithmeticError) as exc:
        # an answer of the wrong make
        raise ExerciseFailed(f"the answer could not be checked ({type(exc).__name__}: {exc}); "
                             "see what the exercise asks for") from None


def verdict(label: str, answers: Mapping[str, object], inputs: Mapping[str, object]) -> str | None:
    """None if `answers` (name -> value) pass exercise `label`'s check on `inputs` (the
    chapter's names it reads), else the check's message. The reference is computed and dropped
    in here: the frames that held it are cleared before this returns, so no traceback or frame
    the caller can reach holds the expected value. The grader calls this in its own process."""
    if label not in EXERCISES:
        raise ValueError(f"label must be one of the book's exercises {sorted(EXERCISES)}, got {label!r}")
    try:
        _run(EXERCISES[label], answers, inputs)
    except ExerciseFailed as exc:
        message, seen = str(exc), exc
        while seen is not None:  # the failure and what it was raised from
            traceback.clear_frames(seen.__traceback__)
            seen = seen.__context__
        return message
    return None


def check(label: str, namespace: Mapping[str, object] | None = None, /, **names: object) -> None:
    """Check the answer to exercise `label` (feedback in a notebook). Pass the notebook's
    `globals()`, or the answers and inputs by name; raises ExerciseFailed with a message that
    says what is wrong, from this frame alone (it holds the answers, never the reference)."""
    scope = {**(namespace or {}), **names}
    message = verdict(label, scope, scope)
    if message is not None:
        raise ExerciseFailed(message)
    print(f"{label}: correct")


# Comparisons. Each raises ExerciseFailed with "<name> should be <what>, got <g>". A wrong value
# never shows the reference value (the grade would then be one copy away); a wrong shape, type or
# set of keys says what was expected, since that is part of the question.


def fail(name: str, what: str, got: object, expected: object | None = None) -> None:
    """Fail with what `name` should be and what it is; `expected` is shown only when given,
    for the form of an answer (shape, keys, type), never for its value."""
    shown = f": expected {expected}, got {got}" if expected is not None else f", got {got}"
    raise ExerciseFailed(f"{name} should be {what}{shown}")


def expect_equal(name: str, got: object, expected: object, what: str) -> None:
    if got != expected:
        fail(name, what, got)


def expect_close(name: str, got: float, expected: float, what: str, rel: float = 1e-6, abs_: float = 0.0) -> None:
    if not math.isclose(got, expected, rel_tol=rel, abs_tol=abs_):
        fail(name, what, f"{got:.6g}")


def expect_keys(name: str, got: Mapping, keys: list, what: str) -> None:
    if sorted(got) != sorted(keys):
        fail(name, f"a dict with one entry per {what}", f"keys {sorted(got)}", f"keys {sorted(keys)}")


def expect_rate(name: str, got: object, expected: Rate, what: str) -> None:
    """A Rate counted on the right samples: the same count out of the same n."""
    if not isinstance(got, Rate):
        fail(name, f"a Rate ({what})", type(got).__name__, "a Rate")
    if (got.count, got.n) != (expected.count, expected.n):
        fail(name, what, f"{got.count:,} of {got.n:,}")
