"""The Simple Shapes chapter's tables, figures and feature measurements (mi_lib.shapes_plots)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mi_lib.shapes import STAMPS, draw, read_image, simple_shapes, two_of_a_kind  # noqa: E402
from mi_lib.shapes_plots import (  # noqa: E402
    GROUPS,
    between,
    between_table,
    bottleneck_features,
    caught_two,
    combination_table,
    combo_name,
    kind_counts,
    labelled_gallery,
    lambda_histograms,
    loss_curve,
    nearest_training,
    neighbours,
    pairs_figure,
    shapes_grid,
    share_read_exactly,
    square_groups,
    square_row,
    tsne_map,
)


@pytest.fixture(scope="module")
def data():
    return simple_shapes(300, seed=4)


def test_combo_name_lists_the_shapes_present():
    assert combo_name((True, False, True)) == "triangle + pentagon"
    assert combo_name(torch.tensor([False, True, False])) == "square"


def test_combination_table_counts_every_image_once(data):
    combos = combination_table(data.present)
    assert len(combos) == 7 and sum(c for c, _, _ in combos.values()) == 300
    assert list(combos)[:3] == ["pentagon", "square", "triangle"]  # one shape first
    assert all(lo <= c / 300 <= hi for c, lo, hi in combos.values())


def test_the_counter_checks_read_the_data_and_catch_two_of_a_kind(data):
    readings = [read_image(im) for im in data.images]
    assert share_read_exactly(readings, data.present).rate == 1
    assert share_read_exactly(readings, ~data.present).rate == 0
    assert caught_two(two_of_a_kind(20, "square", seed=1), "square").rate == 1
    assert caught_two(data.images[:20], "square").rate == 0
    assert (kind_counts(readings) == data.present.numpy()).all()


def test_nearest_training_finds_a_copy_and_counts_the_pixels_of_a_moved_shape(data):
    idx, differ = nearest_training(data.images[[5, 9]], data.images)
    assert idx.tolist() == [5, 9] and differ.tolist() == [0, 0]
    moved = torch.roll(data.images[5:6], shifts=20, dims=-2)
    moved[..., 63, :] = moved[..., :, 63] = -1
    _, d = nearest_training(moved, data.images[5:6])
    assert d.item() > 100  # every shape moved 20 rows: its pixels on and off


def _square_at(row: int, second: int | None = None) -> torch.Tensor:
    present, tl = np.array([False, True, False]), np.zeros((3, 2), dtype=np.int64)
    tl[1] = row, 25
    img = draw(present, tl)
    if second is not None:
        tl[1] = second, 25
        img = np.maximum(img, draw(present, tl))
    return torch.from_numpy(img)[None]


def test_square_row_and_groups_split_top_bottom_and_two_squares():
    images = torch.stack([_square_at(2), _square_at(50), _square_at(5, 40), _square_at(30)])
    assert square_row(images[0]) == pytest.approx(2 + 3.5)
    groups = square_groups(images, [read_image(im) for im in images])
    assert list(groups) == list(GROUPS)
    assert groups[GROUPS[0]].tolist() == [0] and groups[GROUPS[1]].tolist() == [1, 3]
    assert groups[GROUPS[2]].tolist() == [2]


def _clusters(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Top around 0, bottom around 10 e_0, 'two' around the midpoint, in 8 dimensions."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.zeros(8)
    centre[0] = 10
    feats = torch.cat([torch.randn(n, 8, generator=g), centre + torch.randn(n, 8, generator=g),
                       centre / 2 + torch.randn(n // 3, 8, generator=g)])
    groups = dict(zip(GROUPS, [np.arange(n), np.arange(n, 2 * n), np.arange(2 * n, 2 * n + n // 3)], strict=True))
    return feats, groups


def test_between_puts_the_middle_cluster_at_one_half_and_near_the_segment():
    feats, groups = _clusters()
    b = between(feats, groups)
    assert b.length == pytest.approx(10, abs=0.5)
    assert float(b.position[GROUPS[0]].mean()) == pytest.approx(0, abs=1e-5)
    assert float(b.position[GROUPS[1]].mean()) == pytest.approx(1, abs=1e-5)
    summary = between_table(b)
    assert summary[GROUPS[2]]["median"] == pytest.approx(0.5, abs=0.05)
    assert summary[GROUPS[0]]["nearer top"] == 1 and summary[GROUPS[1]]["nearer top"] == 0
    ratio = summary[GROUPS[2]]["off"] / summary[GROUPS[0]]["off"]
    assert 0.7 < ratio < 1.4
    far = feats.clone()
    far[groups[GROUPS[2]], 3] += 30  # the same projection, far off the segment
    assert between_table(between(far, groups))[GROUPS[2]]["off"] > 10


def test_neighbours_see_a_gathered_group_above_chance_and_a_scattered_one_at_it():
    feats, groups = _clusters()
    near = neighbours(feats, groups, k=5, draws=200)
    assert near.share > 0.9 > near.chance_99 and near.chance == pytest.approx(20 / 140, abs=0.03)
    assert min(near.own.values()) > 0.9
    scattered = dict(groups)
    scattered[GROUPS[2]] = np.concatenate([groups[GROUPS[0]][:10], groups[GROUPS[1]][:10]])
    scattered[GROUPS[0]], scattered[GROUPS[1]] = groups[GROUPS[0]][10:], groups[GROUPS[1]][10:]
    near = neighbours(feats, scattered, k=5, draws=200)
    assert near.share < near.chance_99 and near.top > 0.3 and near.bottom > 0.3


def test_bottleneck_features_reads_in_chunks_one_row_per_image():
    class Stub(torch.nn.Module):
        def features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return x[:, :, :4, :4] + t

    images = torch.randn(7, 1, 64, 64)
    out = bottleneck_features(Stub(), images, t=2, chunk=3)
    assert out.shape == (7, 16) and torch.equal(out, images[:, 0, :4, :4].reshape(7, 16) + 2)


def test_figures_draw_with_readable_titles_and_legends_off_the_data(data):
    feats, groups = _clusters(n=30)
    fig = tsne_map(feats, groups)
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # beside the map, not on it
    plt.close(fig)
    fig = lambda_histograms(between(feats, groups))
    fig.canvas.draw()
    assert fig.axes[0].get_legend().get_window_extent().y0 >= fig.axes[0].get_window_extent().y1 - 1
    plt.close(fig)
    fig, smooth = loss_curve(torch.linspace(1, 0.1, 200), window=50)
    assert len(smooth) == 151 and smooth[-1] < smooth[0]
    plt.close(fig)
    fig = shapes_grid(data.images[:6], ["triangle + square + pentagon"] * 6)
    assert fig.axes[0].get_title() == "triangle + square +\npentagon"
    assert fig.axes[0].title.get_fontsize() >= 10
    plt.close(fig)
    labels = np.array(["in support", "hallucinated", "unreadable"])
    plt.close(labelled_gallery(data.images[:3], labels))
    plt.close(pairs_figure(data.images[:2], data.images[2:4], torch.tensor([3, 4])))
    assert STAMPS["square"].sum() == 64
