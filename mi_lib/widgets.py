"""Interactive wrappers around plain plotting functions. Each widget calls a function the
chapter can also call directly, so the static page shows the same figure."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence


def t_slider(plot_at_t: Callable[[int], None], ts: Sequence[int], value: int | None = None):
    """A slider over the steps `ts` that redraws `plot_at_t(t)`; returns the ipywidgets object.

    With MI_WIDGETS=0 in the environment (the book's builds and tests set it: a page shows no
    live widget) it draws `plot_at_t` once at the starting step and returns None. A notebook
    client that runs the widget can wait for the cell's reply until its time-out (nbclient
    issue 312: its stand-in for the slider's Output widget talks on the channel it waits on)."""
    ts = list(ts)
    if not ts:
        raise ValueError("ts must hold at least one step, got an empty sequence")
    start = ts[0] if value is None else value
    if start not in ts:
        raise ValueError(f"value must be one of the slider's steps {ts[0]}..{ts[-1]}, got {value!r}")
    if os.environ.get("MI_WIDGETS", "1") == "0":
        plot_at_t(start)
        return None
    import ipywidgets as widgets

    slider = widgets.SelectionSlider(options=ts, value=start, description="t", continuous_update=False)
    return widgets.interactive(plot_at_t, t=slider)
