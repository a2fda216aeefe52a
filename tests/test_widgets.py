"""mi_lib.widgets: the slider in a live notebook, one static figure where MI_WIDGETS=0."""

import pytest

from mi_lib.widgets import t_slider


def test_slider_redraws_at_the_step_it_is_moved_to(monkeypatch):
    monkeypatch.setenv("MI_WIDGETS", "1")
    seen = []

    def draw(t: int) -> None:
        seen.append(t)

    w = t_slider(draw, ts=[0, 5, 10], value=5)
    w.children[0].value = 10
    assert seen == [5, 10]


def test_without_widgets_it_draws_once_at_the_start(monkeypatch):
    monkeypatch.setenv("MI_WIDGETS", "0")
    seen = []
    assert t_slider(seen.append, ts=[0, 5, 10], value=5) is None
    assert seen == [5]


@pytest.mark.parametrize("ts, value, match", [([], None, "ts must hold at least one step"),
                                              ([0, 5], 3, "value must be one of the slider's steps")])
def test_bad_steps_are_refused_either_way(monkeypatch, ts, value, match):
    for flag in ("0", "1"):
        monkeypatch.setenv("MI_WIDGETS", flag)
        with pytest.raises(ValueError, match=match):
            t_slider(print, ts=ts, value=value)
