"""The hands chapter's rates and figures (mi_lib.fingers.finger_rates, mi_lib.hands_plots)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mi_lib.detection_plots import window_aurocs  # noqa: E402
from mi_lib.fingers import FINGER_CLASSES, counter_confusion, finger_rates  # noqa: E402
from mi_lib.hands import hands_dataset, render_hands  # noqa: E402
from mi_lib.hands_plots import (  # noqa: E402
    angle_gaps,
    angle_histograms,
    confusion_table,
    finger_pixels,
    finger_title,
    flux_hands,
    hal_per_pixel_sweep,
    hands_gallery,
    kind_aurocs,
    loss_curves,
    nearest_pairs,
    nearest_training,
    x0_hat_rows,
)


def test_finger_rates_split_every_hand_into_one_class():
    fingers = np.array([5, 5, 5, 6, 4, 3, 7, -1, -1, 5])
    r = finger_rates(fingers)
    assert sum(r[k].count for k in FINGER_CLASSES) == len(fingers)
    assert [r[k].count for k in ("five", "six", "four", "other", "unreadable")] == [4, 1, 1, 2, 2]
    assert (r["not five"].count, r["not five"].n) == (4, 8)  # among the readable hands only
    assert r["six"].low < 0.1 < r["six"].high
    assert "not five" not in finger_rates(np.array([-1, -1]))


@pytest.mark.parametrize("bad", [np.array([]), np.zeros((2, 2), dtype=int)])
def test_finger_rates_refuses_what_is_not_a_list_of_counts(bad):
    with pytest.raises(ValueError, match="fingers must be a non-empty 1D array of finger counts"):
        finger_rates(bad)


def test_nearest_training_finds_a_copy_and_counts_the_pixels_a_finger_changes():
    train = hands_dataset(40, seed=3).images
    idx, differ = nearest_training(train[[7, 21]], train, chunk=1)
    assert idx.tolist() == [7, 21] and differ.tolist() == [0, 0]
    six = render_hands(1, seed=4, n_fingers=6).images
    five = render_hands(1, seed=4, n_fingers=5).images
    _, extra = nearest_training(six, torch.cat([train, five]))
    assert 15 < int(extra[0]) < 200  # one finger's worth of silhouette, not a whole hand


def test_figures_draw_without_error():
    gapped, continuous = hands_dataset(30, 0, poses="gapped"), hands_dataset(30, 0, poses="continuous")
    figs = [angle_histograms(gapped, continuous), hands_gallery(gapped.images[:4], np.array([5, 6, 4, -1]), ncols=4)]
    idx, differ = nearest_training(gapped.images[:2], gapped.images)
    figs.append(nearest_pairs(gapped.images[:2], np.array([6, 4]), gapped.images, idx, differ, ncols=4))
    fig, ax = plt.subplots()
    window_aurocs(ax, ["850..700", "100..0"], [0.6, 0.7], [(0.5, 0.7), (0.6, 0.8)], chosen=0)
    figs.append(fig)
    confusion_table(counter_confusion(3, seed=1))
    assert [finger_title(n) for n in (-1, 1, 5)] == ["unreadable", "1 finger", "5 fingers"]
    assert all(len(f.axes) >= 1 for f in figs)
    plt.close("all")


def test_chapter_helpers_measure_gaps_fingers_and_kinds():
    gapped, continuous = hands_dataset(300, 0, poses="gapped"), hands_dataset(300, 0, poses="continuous")
    gaps, filled = angle_gaps(gapped), angle_gaps(continuous)
    assert all(gaps[d] > 15 for d in ("thumb", "index", "ring", "little")) and filled["thumb"] < gaps["thumb"]
    assert 15 < finger_pixels(20, seed=4) < 200  # one finger's silhouette, not a hand
    fingers = np.array([5] * 6 + [6] * 2 + [4] * 2 + [-1])
    hal = torch.tensor([1.0] * 6 + [3.0] * 2 + [0.5] * 2 + [9.0])
    six, four, rho = kind_aurocs(hal, fingers, hal * 10)
    assert six == 1.0 and four == 0.0 and rho == pytest.approx(1.0)

    class Rec:
        hal_windows = ((0, 5), (5, 9))

    art = {"images": gapped.images[:11], "hal": torch.stack([hal, -hal]), "recipe": Rec}
    sweep = hal_per_pixel_sweep(art, fingers)
    assert [w for w, _, _ in sweep] == [(0, 5), (5, 9)] and all(0 <= a <= 1 for _, a, b in sweep for a in (a, b))
    assert flux_hands(False, 0) == "RUN_FLUX is False"


def test_x0_hat_rows_frames_the_window_with_full_rectangles():
    fig = x0_hat_rows(torch.zeros(3, 4, 1, 8, 8), [900, 800, 0], [0, 2], ["six", "five"], (700, 850))
    assert len(fig.axes) == 6 and fig.axes[1].get_title() == "t = 800" and fig.axes[0].get_ylabel() == "six"
    frames = [ax for ax in fig.axes if ax.patches]
    assert frames == [fig.axes[1], fig.axes[4]]  # t = 800 only, in both rows
    assert all(not side.get_visible() for side in fig.axes[1].spines.values())  # no L-shaped spines
    fig = loss_curves({"gapped": {"losses": torch.rand(300)}}, window=10)
    assert len(fig.axes[0].lines) == 1
    plt.close("all")
