"""The first two chapters' figures (mi_lib.foundation_plots) and the shared helpers they lean
on (mi_lib.plotting): each draws what it is given, fits the text column, and keeps its legend
off the data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mi_lib import linear_schedule, make_generator, mixture_preset, q_sample  # noqa: E402
from mi_lib.foundation_plots import (  # noqa: E402
    denoiser_curves,
    loss_floor_curve,
    noised_histograms,
    sample_paths,
    schedule_curve,
    score_fields,
)
from mi_lib.plotting import density_over_pdf, image_strip, scatter_2d  # noqa: E402

WIDTH = 8.0  # inches: wider figures shrink their fonts below ~9 pt on the page


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def schedule():
    return linear_schedule(1000)


@pytest.fixture(scope="module")
def mixture():
    return mixture_preset("1d_three")


def _legend_labels(legend):
    return [t.get_text() for t in legend.get_texts()]


def test_schedule_curve_lists_the_marked_values_in_a_legend_not_on_the_curve(schedule):
    fig = schedule_curve(schedule, marks=[20, 100, 200])
    ax = fig.axes[0]
    labels = _legend_labels(ax.get_legend())
    assert len(labels) == 4 and labels[0].startswith("t = 20") and "0.939" in labels[0]
    assert "from t = 296" in labels[-1]  # the first step below 1e-4
    assert not ax.texts  # no annotations stacked on the curve
    assert ax.get_ylim()[0] == pytest.approx(1e-6) and fig.get_figwidth() <= WIDTH


def test_noised_histograms_put_six_panels_in_two_rows_with_short_titles(schedule, mixture):
    x0 = mixture.sample(500, make_generator(0))
    eps = torch.randn(x0.shape, generator=make_generator(1))
    ts = [0, 5, 20, 50, 100, 300]
    fig = noised_histograms({t: q_sample(x0, t, schedule, eps) for t in ts}, mixture, schedule)
    axes = fig.axes
    assert len(axes) == 6 and fig.get_figwidth() <= WIDTH
    rows = {round(ax.get_position().y0, 3) for ax in axes}
    assert len(rows) == 2
    titles = [ax.get_title() for ax in axes]
    assert titles[0].startswith("t = 0,") and "7.56e-05" in titles[-1]
    assert max(len(t) for t in titles) < 35


def test_noised_histograms_switch_off_empty_panels(schedule, mixture):
    x0 = mixture.sample(100, make_generator(0))
    fig = noised_histograms({0: x0, 50: x0}, mixture, schedule)
    assert sum(ax.axison for ax in fig.axes) == 2 and len(fig.axes) == 3


def test_loss_floor_curve_ticks_are_plain_steps():
    fig = loss_floor_curve([0, 2, 10, 35, 500], [0.7, 0.4, 0.14, 0.67, 0.0])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "10", "100", "500"]
    assert ax.get_ylim()[0] == 0


def test_sample_paths_colour_by_final_mode_and_keep_the_legend_below():
    paths = torch.randn(300, 6).cumsum(0)
    modes = torch.tensor([0, 1, 2, 0, 1, 2])
    fig = sample_paths(paths, modes, 53.0, "median last switch (t = 53)")
    ax = fig.axes[0]
    assert len(ax.lines) == 6 + 1  # the paths and the dashed line
    assert {ax.lines[0].get_color(), ax.lines[3].get_color()} == {ax.lines[0].get_color()}
    assert ax.lines[0].get_color() != ax.lines[1].get_color()
    legend = ax.get_legend()
    assert _legend_labels(legend)[-1].startswith("median last switch")
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert box.y1 <= ax.get_window_extent().y0  # under the axes, off the paths


def test_denoiser_curves_draw_one_curve_per_step_in_both_panels(schedule, mixture):
    fig = denoiser_curves(mixture, schedule, ts=[0, 5, 10, 20])
    score_ax, denoiser_ax = fig.axes
    assert len(score_ax.lines) == len(denoiser_ax.lines) == 4
    assert fig.get_figwidth() <= WIDTH and len(fig.legends) == 1
    assert _legend_labels(fig.legends[0]) == ["t = 0", "t = 5", "t = 10", "t = 20"]
    x, y = denoiser_ax.lines[2].get_data()  # t = 10: flat at the mode, a step between
    at_mode = abs(x - 2 * schedule.at(10) ** 0.5).argmin()
    assert abs(y[at_mode] - 2.0) < 0.01


def test_score_fields_one_panel_per_step(schedule):
    fig = score_fields(mixture_preset("2d_grid"), schedule, ts=[3, 30, 100])
    assert [ax.get_title().split(",")[0] for ax in fig.axes] == ["t = 3", "t = 30", "t = 100"]
    assert fig.get_figwidth() <= WIDTH + 0.5


def test_density_over_pdf_leaves_room_for_its_legend_above_the_peaks(mixture):
    x = mixture.sample(2_000, make_generator(0))
    fig, ax = plt.subplots(figsize=(7, 2.8))
    density_over_pdf(ax, x, mixture)
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    peak = max(patch.get_height() for patch in ax.patches)
    peak_px = ax.transData.transform((0, peak))[1]
    assert legend.y0 > peak_px


def test_scatter_2d_puts_its_legend_under_the_axes_when_asked():
    mix = mixture_preset("2d_grid")
    x = mix.sample(200, make_generator(0)).double()
    x[:5] = 0.35  # between modes
    fig, ax = plt.subplots()
    scatter_2d(ax, x, mix, mix.hallucinated(x), legend=True)
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().y1 <= ax.get_window_extent().y0
    fig2, ax2 = plt.subplots()
    scatter_2d(ax2, x, mix, mix.hallucinated(x))
    assert ax2.get_legend() is None


def test_image_strip_titles_take_the_font_size_asked_for():
    fig = image_strip(torch.zeros(3, 8, 8), ["a", "b", "c"], size=1.2, fontsize=11)
    assert [ax.title.get_fontsize() for ax in fig.axes] == [11, 11, 11]
