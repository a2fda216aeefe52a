import numpy as np
import pytest
import torch

from mi_lib.shapes import COLUMN, KINDS, STAMPS, draw, read_image, simple_shapes


@pytest.fixture(scope="module")
def data():
    return simple_shapes(5000, seed=0)


def test_shape_geometry_matches_the_authors_generator():
    # PAPER.md: square 8 x 8 = 64 px; triangle of side 11 (~65 px); pentagon of circumradius 5 (~70 px).
    assert STAMPS["square"].shape == (8, 8) and STAMPS["square"].sum() == 64
    assert STAMPS["triangle"].shape[1] == 11 and abs(int(STAMPS["triangle"].sum()) - 65) <= 4
    assert abs(int(STAMPS["pentagon"].sum()) - 70) <= 4
    tri = STAMPS["triangle"]
    assert tri[0].sum() > tri[-1].sum()  # pointing down


def test_positions_stay_in_their_columns_and_the_canvas(data):
    for k, kind in enumerate(KINDS):
        h, w = STAMPS[kind].shape
        tl = data.top_left[data.present[:, k], k]
        assert tl[:, 0].min() >= 0 and tl[:, 0].max() == 63 - h  # every row position is used
        assert tl[:, 1].min() == k * COLUMN and tl[:, 1].max() == k * COLUMN + COLUMN - w
    assert (data.images[:, 0, 63, :] == -1).all() and (data.images[:, 0, :, 63] == -1).all()
    assert set(data.images.unique().tolist()) == {-1.0, 1.0}


def test_shares_of_one_two_and_three_shapes(data):
    # Each shape with p = 1/2, blanks dropped: 1, 2, 3 shapes with probabilities 3/7, 3/7, 1/7.
    counts = np.bincount(data.present.sum(1).numpy(), minlength=4)[1:]
    expected = 5000 * np.array([3, 3, 1]) / 7
    assert counts.sum() == 5000 and (np.abs(counts - expected) < 4 * np.sqrt(expected)).all()
    assert (data.present.float().mean(0) - 4 / 7).abs().max() < 0.03


def test_data_is_seeded(data):
    again = simple_shapes(50, seed=0)
    assert torch.equal(again.images, data.images[:50])
    assert not torch.equal(simple_shapes(50, seed=1).images, again.images)


def test_counter_reads_every_training_image(data):
    for image, present in zip(data.images, data.present, strict=True):
        reading = read_image(image)
        assert reading.label == "in support"
        assert (np.diag(reading.counts) == present.numpy()).all() and reading.counts.sum() == present.sum()


@pytest.mark.parametrize("k", range(3))
def test_counter_catches_two_shapes_of_one_kind(k):
    kind = KINDS[k]
    h, w = STAMPS[kind].shape
    img = draw(np.array([True, True, True]), np.array([[2, 3], [30, 26], [50, 45]]))
    # A second copy of `kind` in its own column, far from the first.
    second = draw(np.eye(3, dtype=bool)[k], np.array([[63 - h - 1 - 40 * (k == 2), k * COLUMN + COLUMN - w]] * 3))
    composite = np.maximum(img, second)
    reading = read_image(composite)
    assert reading.label == "hallucinated" and reading.counts[:, k].sum() == 2


def test_counter_reads_grey_noisy_images(data):
    g = torch.Generator().manual_seed(0)
    noisy = 0.8 * data.images[:300] + 0.15 * torch.randn(data.images[:300].shape, generator=g)
    ok = [(np.diag(read_image(im).counts) == p.numpy()).all() for im, p in zip(noisy, data.present[:300], strict=True)]
    assert sum(ok) == 300


def test_counter_calls_blobs_that_are_no_shape_unreadable():
    img = -np.ones((64, 64), dtype=np.float32)
    img[10:30, 25:35] = 1.0  # a 20 x 10 bar
    assert read_image(img).label == "unreadable"


def test_counter_calls_blank_images_and_misplaced_shapes_unreadable():
    blank = -np.ones((64, 64), dtype=np.float32)
    assert read_image(blank).label == "unreadable"  # the data has no blank image
    square = STAMPS["square"]
    h, w = square.shape
    misplaced = blank.copy()
    misplaced[5 : 5 + h, 2 : 2 + w][square > 0] = 1.0  # a square in the triangles' column
    reading = read_image(misplaced)
    assert reading.counts[0, KINDS.index("square")] == 1 and reading.label == "unreadable"
    placed = blank.copy()
    placed[5 : 5 + h, 23 : 23 + w][square > 0] = 1.0  # the same square in its own column
    assert read_image(placed).label == "in support"


def test_bad_shapes_input():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        simple_shapes(0)
    with pytest.raises(ValueError, match="image must be one 64 x 64 image"):
        read_image(np.zeros((2, 64, 64)))


@pytest.mark.parametrize("kind", KINDS)
def test_two_of_a_kind_composites_are_caught(kind):
    from mi_lib.shapes import two_of_a_kind

    images = two_of_a_kind(60, kind, seed=3)
    k = KINDS.index(kind)
    for image in images:
        reading = read_image(image)
        assert reading.label == "hallucinated" and reading.counts[:, k].sum() == 2
    with pytest.raises(ValueError, match="kind must be one of"):
        two_of_a_kind(2, "circle")
