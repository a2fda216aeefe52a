"""The chapters' figure helpers draw what they are given (axes, lines, labels), on small
synthetic inputs; and the detection summaries agree with the functions they wrap."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mi_lib import mixture_preset  # noqa: E402
from mi_lib.collapse_plots import (  # noqa: E402
    FILTERS,
    corner_series,
    digit_tiles,
    fid_curves,
    fid_seed_curves,
    filter_curves,
    hal_confidence_rho,
    long_run_curves,
    mode_maps,
    per_filter,
    rho_curves,
    scatter_row,
    scatter_rows,
    series,
)
from mi_lib.detection import (  # noqa: E402
    auroc,
    auroc_interval,
    detection_rates,
    operating_point,
    threshold_for_kept,
    threshold_for_removed,
)
from mi_lib.detection_plots import (  # noqa: E402
    first_of_each,
    hal_against_distance,
    hal_histograms,
    roc_with_paper,
    window_sweep,
    x0_hat_image_strips,
    x0_hat_paths_1d,
    x0_hat_paths_2d,
)


@pytest.fixture()
def scores():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(400, generator=g) < 0.2
    hal = torch.rand(400, generator=g).double() + 0.8 * y
    return hal, y


def test_operating_point_equals_its_parts(scores):
    hal, y = scores
    op = operating_point(hal, y, removed=0.95, kept=0.9)
    thr = threshold_for_removed(hal, y, 0.95)
    assert op["threshold"] == thr and (op["removed"], op["kept"]) == detection_rates(hal, y, thr)
    assert (op["removed_at_kept"], op["kept_at_kept"]) == detection_rates(hal, y, threshold_for_kept(hal, y, 0.9))
    assert op["auroc"] == auroc(hal, y)


def test_auroc_interval_is_the_percentile_bootstrap(scores):
    hal, y = scores
    lo, hi = auroc_interval(hal, y, n_boot=200, seed=3)
    gen = np.random.default_rng(3)
    boot = []
    for _ in range(200):
        idx = torch.from_numpy(gen.integers(0, len(hal), len(hal)))
        boot.append(auroc(hal[idx], y[idx]))
    assert (lo, hi) == tuple(np.percentile(boot, [2.5, 97.5]))
    assert lo < auroc(hal, y) < hi
    with pytest.raises(ValueError, match="level"):
        auroc_interval(hal, y, level=1.0)
    with pytest.raises(ValueError, match="n_boot"):
        auroc_interval(hal, y, n_boot=0)


def test_detection_figures_draw_what_they_are_given(scores):
    hal, y = scores
    assert first_of_each(torch.tensor([True, False, False, True]), 1) == ([1], [0])
    traj = torch.randn(400, 8, 1)
    labels = torch.tensor([False, True] * 4)
    fig = x0_hat_paths_1d(traj, labels, mixture_preset("1d_three"), (0, 14))
    assert len(fig.axes[0].lines) == 6 + 3 and fig.axes[1].get_title() == "last 60 steps"
    fig = x0_hat_paths_2d(torch.randn(40, 8, 2), torch.randn(8, 2), labels, mixture_preset("2d_grid"), last=30)
    assert len(fig.axes) == 6
    fig, axes = plt.subplots(1, 3)
    hal_histograms(axes[0], hal, y, "t", threshold=0.9)
    assert len(axes[0].patches) == 2 * 49 and axes[0].lines[0].get_xdata()[0] == pytest.approx(np.log10(0.9))
    binned = hal_against_distance(axes[1], torch.rand(400) * 12, hal, y, "d", [0, 3, 6, 8, 15])
    assert [b[:2] for b in binned] == [(0, 3), (3, 6), (6, 8), (8, 15)] and sum(len(b[2]) for b in binned) == 400
    op = operating_point(hal, y)
    roc_with_paper(axes[2], hal, y, op["auroc"], op["removed"], op["kept"], (0.95, 0.98))
    assert axes[2].get_legend_handles_labels()[1][0] == f"Hal, AUROC {op['auroc']:.3f}"
    sweep = {(a, a + 14): 0.6 for a in (0, 5, 15)} | {(0, n - 1): 0.7 for n in (2, 3, 30)}
    fig = window_sweep(sweep, 15, (0, 14))
    assert len(fig.axes[0].lines[0].get_xdata()) == 3 and len(fig.axes[1].lines[0].get_xdata()) == 4
    fig = x0_hat_image_strips(torch.zeros(3, 4, 1, 8, 8), [900, 800, 0], [0, 2], ["hallucinated"] * 4,
                              torch.ones(4), (700, 850))
    assert len(fig.axes) == 6 and fig.axes[1].get_title() == "t = 800"
    plt.close("all")


def test_collapse_figures_read_the_runs():
    mix = mixture_preset("2d_grid")
    gens = 3
    metrics = {f: [{"drawn_hallucinated": 0.1 * g, "kept_hallucinated": 0.05 * g, "drawn_mode_evenness": 0.9}
                   for g in range(gens)] for f in ("none", "random", "hal")}
    samples = {f: [mix.sample(50, torch.Generator().manual_seed(g)) for g in range(gens)] for f in metrics}

    class Rec:
        generations = gens

    run = {"metrics": metrics, "samples": samples, "recipe": Rec}
    assert series(run, "hal", "kept_hallucinated").tolist() == pytest.approx([0, 0.05, 0.1])
    assert per_filter({"none": [1], "random": [2], "hal": [3]}, 0) == "1 / 2 / 3"
    fig = filter_curves(run)
    assert len(fig.axes[0].lines) == 6 and len(fig.axes[1].lines) == 3
    fig, axes = plt.subplots(1, gens)
    scatter_row(axes, run, "none", mix)
    assert axes[2].get_title().startswith("generation 2")
    digits = {"samples": {f: [torch.zeros(16, 64)] * gens for f in metrics}, "recipe": Rec}
    fig = digit_tiles(digits)
    assert len(fig.axes) == (1 + 2 * (gens - 1)) * 8  # generation 0 once, then a row per filter
    assert fig.axes[8].get_ylabel() == "generation 1\nno filter"
    fig = scatter_rows(run, FILTERS, mix)
    assert len(fig.axes) == 3 * gens and fig.axes[4].get_title() == "generation 1\n10.0% hallucinated"
    fig = fid_curves({"none": np.array([1.0, 2.0, 3.0])}, floor=0.5)
    assert fig.axes[0].lines[-1].get_ydata()[0] == 0.5
    fig = fid_seed_curves({s: {"none": np.arange(3.0), "hal": np.arange(3.0) + s} for s in (0, 1)}, floor=0.5)
    assert len(fig.axes[0].lines) == 5 and fig.axes[0].lines[3].get_ydata().tolist() == [1.0, 2.0, 3.0]
    plt.close("all")


def test_long_run_figures_read_seeds_generations_and_modes():
    mix = mixture_preset("2d_grid")
    gens = 3
    corners = [0, 4, 20, 24]

    def at(modes, n=40):
        return torch.cat([mix.means[m].expand(n // len(modes), 2) for m in modes]).float()

    def run(last_modes):
        samples = {f: torch.stack([at(range(25), 100), at(range(25), 100), at(last_modes, 100)]) for f in FILTERS}
        hal = {f: torch.rand(gens, 100, generator=torch.Generator().manual_seed(1)) for f in FILTERS}
        metrics = {f: [{"drawn_hallucinated": 0.1 * g, "drawn_modes_covered": 25 - g} for g in range(gens)]
                   for f in FILTERS}

        class Rec:
            generations = gens

        return {"samples": samples, "hal": hal, "metrics": metrics, "recipe": Rec}

    runs = {0: run(corners), 1: run([12])}
    assert corner_series(runs[0], "hal", mix).tolist() == pytest.approx([0.16, 0.16, 1.0])
    assert corner_series(runs[1], "hal", mix)[-1] == 0.0
    fig = long_run_curves(runs, mix)
    assert [len(ax.lines) for ax in fig.axes] == [6, 6, 7]  # 3 filters x 2 seeds, and the data's 4 / 25
    assert list(fig.axes[0].get_xticks()) == [0, 2]  # whole generations: every fifth and the last
    assert len(fig.legends[0].get_texts()) == 6  # 3 filters, 2 seeds, the data
    assert fig.axes[2].lines[2].get_ydata().tolist() == pytest.approx([0.16, 0.16, 1.0])
    fig = mode_maps(runs, mix)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 4
    assert images[1][0, 0] == pytest.approx(0.25) and images[3][2, 2] == 1.0  # top left is mode 4; the centre 12
    fig, axes = plt.subplots(1, 2)
    scatter_row(axes, runs[0], "hal", mix, generations=[0, 2])
    assert axes[1].get_title() == "generation 2\n20.0% hallucinated"  # the whole draw's share, from the metrics
    assert axes[1].get_xlim()[1] > float(mix.means.max())  # every mode in view
    with pytest.raises(ValueError, match="one generation per axis"):
        scatter_row(axes, runs[0], "hal", mix, generations=[0])
    plt.close("all")


def test_hal_confidence_rho_reads_each_generation_and_pools_the_filters():
    from mi_lib.digits import DigitsNet, digit_confidence

    net = DigitsNet()
    torch.manual_seed(0)
    x = {f: torch.rand(3, 20, 64) * 2 - 1 for f in ("none", "hal")}
    conf = {f: torch.stack([digit_confidence(net, xg) for xg in x[f]]) for f in x}
    # Hal falls with confidence in generations 0 and 1 and rises with it in generation 2.
    hal = {f: torch.stack([-conf[f][0], -conf[f][1], conf[f][2]]) for f in x}
    rho = hal_confidence_rho({"samples": x, "hal": hal, "classifier": net})
    assert rho.tolist() == pytest.approx([-1.0, -1.0, 1.0])
    # Generation 0 reads one filter only: a second filter's different digits leave it unchanged.
    hal["hal"][0] = torch.rand(20)
    assert hal_confidence_rho({"samples": x, "hal": hal, "classifier": net})[0] == pytest.approx(-1.0)
    fig = rho_curves({0: rho, 1: -rho})
    assert len(fig.axes[0].lines) == 3
    plt.close("all")
