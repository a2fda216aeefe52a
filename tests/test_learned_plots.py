"""The learned-scores chapter's figures, tables and interval comparisons (mi_lib.learned_plots)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mi_lib import make_generator, mixture_preset  # noqa: E402
from mi_lib.learned_plots import (  # noqa: E402
    density_figure,
    direction_table,
    gap_table,
    histograms_figure,
    loss_figure,
    max_gap_slope,
    scatter_pair,
    score_figure,
    separated,
    spread,
)
from mi_lib.metrics import Rate, direction_rates, gap_rates, wilson_interval  # noqa: E402
from mi_lib.schedules import linear_schedule  # noqa: E402


def _rate(count: int, n: int) -> Rate:
    return Rate(count, n, count / n, *wilson_interval(count, n))


def _legend_is_off_the_axes(fig: plt.Figure) -> None:
    """One figure legend, below every axes' bottom edge; no legend inside an axes."""
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    fig.canvas.draw()
    box = fig.legends[0].get_window_extent()
    assert all(box.y1 <= ax.get_window_extent().y0 for ax in fig.axes)


def test_separated_needs_intervals_apart_in_order():
    low, high = _rate(10, 10_000), _rate(100, 10_000)
    assert separated(low, high) and not separated(high, low)
    assert not separated(_rate(10, 1_000), _rate(14, 1_000))  # overlapping intervals


def test_spread_is_the_largest_rate_over_the_smallest():
    assert spread([_rate(10, 100), _rate(25, 100), _rate(20, 100)]) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="positive"):
        spread([_rate(0, 100), _rate(5, 100)])


def test_max_gap_slope_tells_a_step_from_a_ramp():
    m = mixture_preset("1d_three")
    x = torch.linspace(0.5, 3.5, 3001, dtype=torch.float64)[:, None]
    step = m.x0_denoiser(x, 0.999)[:, 0]
    assert max_gap_slope(x, step, m) > 5
    assert max_gap_slope(x, x[:, 0], m) == pytest.approx(1.0)  # the identity: a ramp
    with pytest.raises(ValueError, match="inside a gap"):
        max_gap_slope(x[:10], x[:10, 0], m)


def test_figures_put_their_legends_below_the_axes():
    m = mixture_preset("1d_three")
    g = make_generator(0)
    x = m.sample(2_000, g)
    figs = [
        loss_figure(torch.rand(50) + 0.5, [1.0] * 10, "recorded"),
        histograms_figure({"a": (x, "C0"), "b": (x, "C1")}, m),
        density_figure(x, m, "title"),
    ]
    s = linear_schedule(100)
    grid = torch.linspace(0.5, 3.5, 301, dtype=torch.float64)[:, None]
    curves = {t: {f"{k} {w}": grid[:, 0] for k in ("true", "learned")
                  for w in ("score", "x0_hat")} for t in (0, 5)}
    figs.append(score_figure(grid, curves, m, s))
    grid2d = {name: mixture_preset(name) for name in ("2d_grid", "2d_diamond")}
    figs.append(scatter_pair({n: mm.sample(500, g) for n, mm in grid2d.items()}, grid2d))
    for fig in figs:
        _legend_is_off_the_axes(fig)
        plt.close(fig)


def test_tables_show_one_row_per_gap_and_per_mixture(monkeypatch):
    shown = []
    monkeypatch.setattr("mi_lib.learned_plots.show_table", lambda h, rows: shown.append((h, rows)))
    m = mixture_preset("1d_three")
    x = torch.tensor([[1.5], [2.5], [2.5], [1.0]], dtype=torch.float64)
    gap_table({"model": gap_rates(x, m)}, digits=1)
    header, rows = shown[-1]
    assert [r[1] for r in rows] == ["1-2", "2-3"] and rows[1][3] == "50.0% (2 of 4)"
    assert rows[1][5] == "50.0%"  # per unit width: the gap is 1 wide
    m2 = mixture_preset("2d_grid")
    x2 = m2.sample(200, make_generator(1))
    d = direction_rates(x2, m2)
    direction_table({"2d_grid": d}, {"2d_grid": _rate(0, 200)})
    header, rows = shown[-1]
    assert header[2:] == ["along an axis", "along a diagonal"] and len(rows) == 1
