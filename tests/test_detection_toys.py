"""The detection chapter's toy set-up (mi_lib.detection_toys) and its tables
(mi_lib.detection_tables): the shipped models load, trajectories and runs have the shapes and
labels the chapter reads, the motion and spread of x0_hat paths are what they say on hand-made
paths, and the tables' cells are what the chapter prints."""

import pytest
import torch

import mi_lib.detection_toys as toys_mod
from mi_lib.detection import auroc, auroc_interval, operating_point
from mi_lib.detection_tables import bank_window_table, ci, operating_table, window_name, window_ops, window_table
from mi_lib.detection_toys import (
    NAMES,
    PAPER,
    WINDOW,
    load_toys,
    path_motion,
    recipe_line,
    record_trajectories,
    sample_runs,
    spread,
    window_rows,
)
from mi_lib.metrics import rate


@pytest.fixture(scope="module")
def toys():
    return load_toys("quick")


def test_the_shipped_toys_load_with_one_schedule(toys):
    assert set(toys.models) == set(NAMES) == set(toys.mixtures) == set(toys.eps_fns)
    assert toys.schedule.T == 1000 and toys.mixtures["2d_grid"].dim == 2
    assert recipe_line(toys, "1d_three").startswith("1D: three modes: 1,500 steps of batch 1,000")
    assert WINDOW["2d_grid"] == (0, 8) and PAPER["1d_three"] == (0.95, 0.98)


def test_trajectories_end_at_the_samples(toys):
    traj, x = record_trajectories(toys, "2d_grid", 5, seed=1)
    assert traj.shape == (1000, 5, 2) and x.shape == (5, 2)
    again, x2 = record_trajectories(toys, "2d_grid", 5, seed=1)
    assert torch.equal(traj, again) and torch.equal(x, x2)


def test_sample_runs_keep_the_papers_window_and_the_sweep(toys, monkeypatch):
    monkeypatch.setattr(toys_mod, "sample_sizes", lambda scale: ({"1d_three": 40, "2d_grid": 30}, 20))
    runs = sample_runs(toys, "quick", 0, {"1d_three": [(0, 4), (0, 14)]})
    assert list(runs["1d_three"]["hals"]) == [(0, 14), (0, 4)] and list(runs["2d_grid"]["hals"]) == [(0, 8)]
    r = runs["2d_grid"]
    assert r["x"].shape == (30, 2) and torch.equal(r["hal"], r["hals"][0, 8])
    assert torch.equal(r["y"], toys.mixtures["2d_grid"].hallucinated(r["x"]))


def test_window_rows_spread_and_path_motion_on_hand_made_paths():
    T = 20
    assert window_rows((0, 14), T) == slice(5, 20) and window_rows((2, 3), T) == slice(16, 18)
    # row i holds step T-1-i; at t = 0 (last row) the predictions are 0..9
    traj = torch.zeros(T, 10, 1)
    traj[-1, :, 0] = torch.arange(10.0)
    assert spread(traj, 0) == pytest.approx(7.2) and spread(traj, 5) == 0
    # sample 0 moves by 0.1 per step over the window, sample 1 stands still
    traj = torch.zeros(T, 2, 1)
    traj[:, 0, 0] = 0.1 * torch.arange(T)
    motion = path_motion(traj, torch.tensor([True, False]), (0, 4))
    assert motion["step_hal"] == pytest.approx(0.1) and motion["largest_step_hal"] == pytest.approx(0.1)
    assert motion["net_hal"] == pytest.approx(0.4) and motion["net_good"] == 0 == motion["step_good"]


@pytest.fixture()
def scores():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(300, generator=g) < 0.3
    return torch.rand(300, generator=g).double() + 0.5 * y, y


def test_table_cells(scores, capsys):
    assert ci(rate(torch.tensor([True] * 3 + [False]))) == "75.0% of 4 (30.1 to 95.4)"
    assert window_name((0, 14)) == "14..0"
    hal, y = scores
    ops = window_ops({(0, 4): hal, (5, 9): -hal}, y, n_boot=50, seed=1)
    assert ops[0, 4]["auroc"] == auroc(hal, y) and ops[5, 9]["auroc"] == auroc(-hal, y)
    assert ops[0, 4]["auroc_ci"] == auroc_interval(hal, y, n_boot=50, seed=1)
    assert ops[0, 4]["kept"] == operating_point(hal, y)["kept"]
    window_table(ops, chosen=(0, 4))
    operating_table({"a": ops[0, 4]}, {"a": (0.95, 0.98)}, {"a": (0, 4)}, {"a": "A"})
    out = capsys.readouterr().out
    assert "4..0 (paper)" in out and "9..5  " in out and "A     4..0      95% / 98%" in out


def test_bank_window_table_reads_the_banks_metrics(capsys):
    class Rec:
        windows = [(0, 4), (0, 8)]

    m = {"auroc": 0.9, "kept": 0.8, "removed_at_95_kept": 0.7}
    bank_window_table({"g": {"recipe": Rec, "metrics": {"windows": {"0-4": m, "0-8": m}}}},
                      {"g": (0.96, 0.95)}, {"g": "G"})
    out = capsys.readouterr().out
    assert "G     4..0      0.900  80.0%" in out and "8..0" in out


def test_strip_frames_are_full_rectangles_and_the_after_the_fact_figure_draws():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from mi_lib.detection_plots import after_the_fact_figure, x0_hat_image_strips

    fig = x0_hat_image_strips(torch.zeros(3, 4, 1, 8, 8), [900, 800, 0], [0, 2], ["hallucinated"] * 4,
                              torch.ones(4), (700, 850))
    framed = [ax for ax in fig.axes if any(isinstance(p, Rectangle) and p.get_edgecolor()[0] > 0.7
                                           for p in ax.patches)]
    assert len(framed) == 2  # t = 800 in each of the two rows; no spines drawn as an L
    assert all(not s.get_visible() for ax in fig.axes for s in ax.spines.values())
    g = torch.Generator().manual_seed(0)
    y = {"a": torch.rand(50, generator=g) < 0.3, "b": torch.rand(50, generator=g) < 0.3}
    during = {k: torch.rand(50, generator=g) + 0.1 for k in y}
    after = {k: [torch.rand(50, generator=g) + 0.1 for _ in range(3)] for k in y}
    fig = after_the_fact_figure(during, after, y, {"a": "A", "b": "B"}, {"a": 0.3, "b": 0.2})
    assert fig.axes[0].get_title() == "A\nrho = 0.30" and len(fig.axes[2].lines) == 3
    assert fig.axes[2].get_legend_handles_labels()[1] == ["during", "after, 1", "after, 3"]
    plt.close("all")
