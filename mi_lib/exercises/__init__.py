"""Checks of the book's exercises, one per exercise label, grouped by chapter (one module each).

A chapter's check cell calls ``check("ex-...", globals())``: it reads the names the exercise
asks for, recomputes the reference answer from the chapter's inputs, and raises ExerciseFailed
(an AssertionError) with a message that says what the answer should be and what it got
(never the reference value itself). The
reference answers live here rather than on the page, so the student version gives nothing away.
"""

from mi_lib.exercises import (
    collapse,
    detection,
    diffusion,
    hands,
    intro,
    learned_scores,
    mixture_scores,
    simple_shapes,
)
from mi_lib.exercises._core import ANSWER_KINDS, EXERCISES, Exercise, ExerciseFailed, check, verdict

CHAPTERS = ("intro", "diffusion", "mixture_scores", "learned_scores", "simple_shapes", "detection", "hands",
            "collapse")

__all__ = ["ANSWER_KINDS", "CHAPTERS", "EXERCISES", "Exercise", "ExerciseFailed", "check", "labels", "verdict"]


def labels(chapter: str | None = None) -> list[str]:
    """The exercise labels in book order (chapter by chapter, each in its page order), or those of one chapter."""
    ordered = sorted(EXERCISES.values(), key=lambda ex: CHAPTERS.index(ex.chapter))  # stable: page order kept
    return [ex.label for ex in ordered if chapter in (None, ex.chapter)]
del collapse, detection, diffusion, hands, intro, learned_scores, mixture_scores, simple_shapes
