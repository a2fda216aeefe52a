import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mi_lib.hands
from mi_lib.fingers import N_CLASSES, READ_AS, count_fingers, counter_confusion, read_hand
from mi_lib.hands import (
    DIGITS,
    JITTER,
    POSES,
    RING_RADIUS,
    SIDE_STATES,
    SLOTS,
    _draw,
    _geometry,
    _uniforms,
    hands_dataset,
    load_11k_hands,
    pose_pairs,
    render_hands,
)

MODES = {d: sorted({SLOTS[s] for s in SIDE_STATES.get(d, (3,))}) for d in DIGITS}  # two per digit, one for middle


@pytest.fixture(scope="module")
def data():
    return hands_dataset(1000, seed=0)


@pytest.fixture(scope="module")
def continuous():
    return hands_dataset(1000, seed=0, poses="continuous")


def test_data_is_seeded(data):
    again = hands_dataset(1000, seed=0)
    assert again.images.numpy().tobytes() == data.images.numpy().tobytes()
    assert torch.equal(render_hands(40, seed=0).images, data.images[:40])  # the first n of a longer call
    assert torch.equal(render_hands(300, seed=0).images, data.images[:300])  # drawn in other chunks
    assert not torch.equal(render_hands(40, seed=1).images, data.images[:40])
    noisy = render_hands(20, seed=4, blur=0.8, noise=0.1)
    assert torch.equal(noisy.images, render_hands(20, seed=4, blur=0.8, noise=0.1).images)


def test_shapes_ranges_and_white_background(data):
    images = data.images
    assert images.shape == (1000, 1, 64, 64) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    border = torch.cat([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], dim=-1)
    assert (border == 1.0).all()  # the hand never touches the image's edge
    white = (images == 1.0).float().mean((1, 2, 3))
    assert white.min() > 0.5 and images.amin((1, 2, 3)).max() < 0.3  # mostly white, every hand darker
    assert data.n_fingers.eq(5).all() and data.pose.ge(0).all() and data.angles[:, 5:].isnan().all()
    big = render_hands(8, seed=0, size=128)
    assert big.images.shape == (8, 1, 128, 128) and torch.equal(big.angles.nan_to_num(), data.angles[:8].nan_to_num())
    assert count_fingers(big.images).tolist() == [5] * 8


@pytest.mark.parametrize(("size", "n_fingers"), [(64, 5), (128, 7), (32, 3)])
def test_windowed_drawing_equals_measuring_every_capsule_everywhere(size, n_fingers):
    u = _uniforms(40, 5)
    _, _, _, (a, b, r) = _geometry(u, "gapped", n_fingers)
    assert torch.equal(_draw(size, u, a, b, r), _draw(size, u, a, b, r, w=size))


def test_digits_pass_through_their_slots():
    angles, kinds, _, (a, b, r) = _geometry(_uniforms(200, 0), "gapped", 7)
    # the first segment of each digit, extended, passes through the point at its angle and 2 palm radii
    phi = np.deg2rad(angles)
    slot = RING_RADIUS * np.stack([np.sin(phi), np.cos(phi)], -1)
    start, end = a.reshape(200, 7, 3, 2)[:, :, 0], b.reshape(200, 7, 3, 2)[:, :, 0]
    e = (end - start) / np.linalg.norm(end - start, axis=-1, keepdims=True)
    off_line = np.abs(e[..., 0] * (slot - start)[..., 1] - e[..., 1] * (slot - start)[..., 0])
    assert off_line.max() < 1e-9 and (kinds >= 0).all() and np.isfinite(r).all()


def test_every_training_image_reads_as_five_fingers(data):
    read = count_fingers(data.images)
    assert (read == 5).mean() >= 0.99
    assert count_fingers(data.images[:3].clone().requires_grad_()).tolist() == read[:3].tolist()
    assert count_fingers(data.images[:3, 0].numpy()).tolist() == read[:3].tolist()  # (N, S, S) too
    assert read_hand(data.images[0]).n_fingers == read_hand(data.images[0, 0].numpy()).n_fingers == read[0]


def test_gapped_angles_cluster_at_their_modes_with_empty_gaps(data):
    for k, digit in enumerate(DIGITS):
        a = data.angles[:, k].numpy()
        nearest = np.min([np.abs(a - m) for m in MODES[digit]], axis=0)
        assert nearest.max() <= JITTER + 1e-4  # every angle within the jitter of a mode
        if len(MODES[digit]) == 2:
            lo, hi = MODES[digit]
            assert not ((a > lo + JITTER + 1e-4) & (a < hi - JITTER - 1e-4)).any()  # nothing in the gap
            share_hi = (a > (lo + hi) / 2).mean()
            assert 0.2 < share_hi < 0.8  # both modes in use
    counts = np.bincount(data.pose.numpy(), minlength=len(POSES))
    assert len(counts) == 9 and (np.abs(counts - 1000 / 9) < 4 * np.sqrt(1000 / 9)).all()


def test_continuous_poses_fill_the_gaps(continuous, data):
    assert continuous.pose.eq(-1).all() and count_fingers(continuous.images[:300]).tolist() == [5] * 300
    for k, digit in enumerate(DIGITS):
        if len(MODES[digit]) == 2:
            lo, hi = MODES[digit]
            a = continuous.angles[:, k].numpy()
            assert lo - JITTER - 1e-4 <= a.min() and a.max() <= hi + JITTER + 1e-4  # the same range
            in_gap = (a > lo + JITTER) & (a < hi - JITTER)
            assert in_gap.mean() > 0.3  # the gap is filled
            hist = np.histogram(a, bins=6, range=(lo, hi))[0]
            assert (hist > 0.01 * len(a)).all()  # with no empty stretch (the density is linear in the angle)
    for angles in (data.angles, continuous.angles):  # neighbours never closer than a finger's room
        assert (angles[:, :5].diff(dim=1) > 20).all()


def test_left_hands_are_mirrored_right_hands():
    right, left = render_hands(50, seed=3, hands="right"), render_hands(50, seed=3, hands="left")
    assert torch.equal(left.images, right.images.flip(-1))
    assert left.left.all() and not right.left.any() and torch.equal(left.angles.nan_to_num(), right.angles.nan_to_num())
    both = render_hands(400, seed=3)
    assert 0.4 < both.left.float().mean() < 0.6
    # A right hand's thumb is on the image's left (it points up and out of the palm's left side),
    # a left hand's on the right: with the thumb out (-80 degrees) and the little finger closed
    # (50), a hand reaches farther to the thumb's side than to the other.
    out = (right.pose // 3 >= 1) & (right.pose % 3 == 0)
    assert out.sum() >= 5
    for d, thumb_on_left in ((right, True), (left, False)):
        for hand in (d.images[out, 0] < 0.5).numpy():
            cols = np.flatnonzero(hand.any(0))
            centre = np.average(np.arange(64), weights=hand.sum(0))
            assert (centre - cols.min() > cols.max() - centre) == thumb_on_left


def test_pose_pairs_differ_in_one_finger_and_blend_into_six_or_four():
    first, second = pose_pairs(200, seed=6)
    moved = (first.angles[:, :5] - second.angles[:, :5]).abs() > 2 * JITTER
    assert moved.sum(1).eq(1).all() and moved.any(0).tolist() == [True, True, False, True, True]  # never the middle
    assert torch.equal(first.left, second.left) and first.pose.ne(second.pose).all()
    assert count_fingers(first.images).tolist() == [5] * 200 == count_fingers(second.images).tolist()
    assert (count_fingers(torch.minimum(first.images, second.images)) == 6).all()  # drawn in both places
    assert (count_fingers(torch.maximum(first.images, second.images)) == 4).all()  # in neither
    assert (count_fingers((first.images + second.images) / 2) == 6).mean() > 0.8  # the pixel average


@pytest.mark.parametrize("k", N_CLASSES)
def test_renders_with_3_to_7_fingers(k):
    d = render_hands(30, seed=k, n_fingers=k)
    assert d.n_fingers.eq(k).all() and (~d.angles.isnan()).sum(1).eq(k).all()
    present = d.angles.sort(dim=1).values[:, :k]
    assert (present.diff(dim=1) > 20).all()  # extra fingers sit in empty slots, never on a finger
    on_slots = torch.stack([(d.angles - s).abs() <= JITTER + 1e-4 for s in SLOTS]).any(0)
    assert on_slots.sum(1).eq(k).all()


def test_counter_reads_3_to_7_fingers():
    clean = counter_confusion(200, seed=0)
    assert clean.counts.shape == (len(N_CLASSES), len(READ_AS)) and clean.counts.sum(1).tolist() == [200] * 5
    assert (clean.accuracy >= 0.99).all()
    noisy = counter_confusion(200, seed=0, blur=0.8, noise=0.1)  # like a sampler's output
    assert (noisy.accuracy >= 0.97).all()
    assert "accuracy" in str(clean) and clean._repr_html_().startswith("<table>")


def _canvas():
    return np.ones((64, 64), dtype=np.float32)


def test_counter_calls_images_without_one_hand_unreadable():
    blank = _canvas()
    reading = read_hand(blank)
    assert reading.n_fingers is None and reading.why == "no hand" and math.isnan(reading.palm_radius)
    noise = np.clip(_canvas() + 0.2 * np.random.default_rng(0).standard_normal((64, 64)), -1, 1)
    assert read_hand(noise).n_fingers is None
    assert read_hand(-_canvas()).why == "no white background"
    two = render_hands(2, seed=1).images[:, 0]
    pair = _canvas()
    pair[16:48, :32], pair[16:48, 32:] = (torch.nn.functional.avg_pool2d(h[None, None], 2)[0, 0].numpy() for h in two)
    assert read_hand(pair).why == "several blobs"
    stack = torch.from_numpy(np.stack([blank, pair]))[:, None]
    assert count_fingers(torch.cat([stack, render_hands(2, seed=1).images])).tolist() == [-1, -1, 5, 5]
    speck = _canvas()
    speck[30:34, 30:34] = -1.0
    assert read_hand(speck).why == "no hand"


def test_counter_needs_a_palm():
    line = _canvas()
    line[5:60, 30] = -1.0  # a one-pixel stroke: no palm to read fingers from
    assert read_hand(line, smooth=0.0).why == "no palm"


def test_counter_ignores_specks_beside_a_hand():
    image = render_hands(1, seed=2).images[0, 0].numpy().copy()
    image[1:3, 1:3] = -1.0
    reading = read_hand(image)
    assert reading.n_fingers == 5 and reading.why == "read" and reading.palm_radius > 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"n": 2.0}, "n must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": 1.5}, "seed must be a non-negative integer"),
        ({"size": 16}, "size must be an integer of at least 32"),
        ({"size": 64.0}, "size must be an integer of at least 32"),
        ({"poses": "spread"}, "poses must be one of"),
        ({"n_fingers": 8}, "n_fingers must be one of"),
        ({"n_fingers": 5.0}, "n_fingers must be an integer from 3 to 7"),
        ({"n_fingers": 6, "poses": "continuous"}, "n_fingers other than 5 needs poses='gapped'"),
        ({"blur": float("nan")}, "blur must be a finite number >= 0, got nan"),
        ({"blur": -1.0}, "blur must be a finite number >= 0"),
        ({"noise": float("inf")}, "noise must be a finite number >= 0, got inf"),
        ({"noise": "0.1"}, "noise must be a finite number >= 0"),
        ({"hands": "two"}, "hands must be one of"),
    ],
)
def test_bad_render_input(kwargs, message):
    args = {"n": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        render_hands(**args)


def test_bad_counter_input():
    with pytest.raises(ValueError, match="images must be"):
        count_fingers(np.ones((2, 1, 64, 32)))
    with pytest.raises(ValueError, match="image must be one image"):
        read_hand(np.ones((2, 64, 64)))
    with pytest.raises(ValueError, match="threshold must be a number in"):
        read_hand(_canvas(), threshold=float("nan"))
    with pytest.raises(ValueError, match="smooth must be a finite number >= 0"):
        read_hand(_canvas(), smooth=-0.5)
    with pytest.raises(ValueError, match="n_per_class must be a positive integer"):
        counter_confusion(0)
    with pytest.raises(ValueError, match="blur must be a finite number >= 0"):
        counter_confusion(1, blur=float("inf"))
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        counter_confusion(1, seed=-2)
    with pytest.raises(ValueError, match="size must be an integer of at least 32"):
        counter_confusion(1, size=16)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        hands_dataset(0)


COLUMNS = ["id", "age", "gender", "skinColor", "accessories", "nailPolish", "aspectOfHand", "imageName",
           "irregularities"]
ROWS = [("0000000", "dorsal right", "Hand_0000002.jpg"), ("0000000", "palmar right", "Hand_0000003.jpg"),
        ("0000001", "dorsal right", "Hand_0000004.jpg"), ("0000001", "dorsal left", "Hand_0000005.jpg")]


def _write_11k(root, columns=COLUMNS, rows=ROWS, images=True):
    """A tiny 11k Hands in the real layout: HandInfo.csv and Hands/*.jpg (40 x 30, a white page
    with a dark hand-sized block)."""
    (root / "Hands").mkdir(parents=True)
    with (root / "HandInfo.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for person, aspect, name in rows:
            row = {"id": person, "age": "23", "gender": "male", "skinColor": "fair", "accessories": "0",
                   "nailPolish": "0", "aspectOfHand": aspect, "imageName": name, "irregularities": "0"}
            writer.writerow([row[c] for c in columns])
    if images:
        for k, (_, _, name) in enumerate(rows):
            page = np.full((30, 40), 255, dtype=np.uint8)
            page[8:22, 10 + k : 25 + k] = 60
            Image.fromarray(page).save(root / "Hands" / name, quality=95)
    return root


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*"))


def test_load_11k_hands_fixture(tmp_path):
    root = _write_11k(tmp_path / "11k")
    before = _files(root)
    images = load_11k_hands(root)
    assert images.shape == (2, 1, 64, 64) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert (images[:, 0, :4, :4] > 0.9).all() and (images[:, 0, 32, 32] < -0.3).all()  # white page, dark hand
    assert load_11k_hands(root, n=1).shape == (1, 1, 64, 64) and torch.equal(load_11k_hands(root, n=1), images[:1])
    assert load_11k_hands(str(root), aspect="dorsal left", size=32).shape == (1, 1, 32, 32)
    assert _files(root) == before  # nothing written


def test_load_11k_hands_errors_before_reading_an_image(tmp_path, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("an image was read")

    good = _write_11k(tmp_path / "good")
    monkeypatch.setattr(mi_lib.hands.Image, "open", no_reading)
    with pytest.raises(ValueError, match="not a folder"):
        load_11k_hands(tmp_path / "absent")
    with pytest.raises(ValueError, match="not a folder"):
        load_11k_hands(good / "HandInfo.csv")
    with pytest.raises(ValueError, match="aspect must be one of"):
        load_11k_hands(good, aspect="dorsal")
    with pytest.raises(ValueError, match="size must be a positive integer"):
        load_11k_hands(good, size=0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        load_11k_hands(good, n=0)
    with pytest.raises(ValueError, match="lists no image with aspectOfHand 'palmar left'"):
        load_11k_hands(good, aspect="palmar left")
    no_csv = _write_11k(tmp_path / "no_csv")
    (no_csv / "HandInfo.csv").unlink()
    with pytest.raises(ValueError, match="has no HandInfo.csv"):
        load_11k_hands(no_csv)
    no_folder = tmp_path / "no_folder"
    no_folder.mkdir()
    (no_folder / "HandInfo.csv").write_text((good / "HandInfo.csv").read_text())
    with pytest.raises(ValueError, match="has no Hands folder"):
        load_11k_hands(no_folder)
    malformed = _write_11k(tmp_path / "malformed", columns=[c for c in COLUMNS if c != "aspectOfHand"])
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['aspectOfHand'\]"):
        load_11k_hands(malformed)
    empty = tmp_path / "empty"
    (empty / "Hands").mkdir(parents=True)
    (empty / "HandInfo.csv").write_text("")
    with pytest.raises(ValueError, match="lacks the column"):
        load_11k_hands(empty)
    gone = _write_11k(tmp_path / "gone")
    (gone / "Hands" / "Hand_0000004.jpg").unlink()
    with pytest.raises(ValueError, match=r"1 image\(s\) listed in HandInfo.csv are not in .*Hand_0000004.jpg"):
        load_11k_hands(gone)


def _chapter_cell(marker: str) -> str:
    """The source of the hands chapter's code cell that contains `marker`."""
    book = json.loads((Path(__file__).resolve().parents[1] / "book" / "hands.ipynb").read_text())
    cells = ["".join(c["source"]) for c in book["cells"] if c["cell_type"] == "code"]
    (src,) = [c for c in cells if marker in c]
    return src


def test_chapter_real_data_cell_reads_a_folder_in_the_11k_layout_and_skips_without_one(tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mi_lib.fingers import count_fingers
    from mi_lib.hands_plots import hands_gallery

    src = _chapter_cell("load_11k_hands(HANDS_DIR")
    shown = []
    names = {"Path": Path, "load_11k_hands": load_11k_hands, "count_fingers": count_fingers, "plt": plt,
             "hands_gallery": lambda images, fingers, ncols: shown.append((images.shape, fingers)) or
             hands_gallery(images, fingers, ncols)}
    exec(src, {**names, "HANDS_DIR": str(_write_11k(tmp_path / "11k"))})
    assert len(shown) == 1 and shown[0][0] == (2, 1, 64, 64)  # the two dorsal right hands of the fixture
    exec(src, {**names, "HANDS_DIR": None})
    exec(src, {**names, "HANDS_DIR": str(tmp_path / "absent")})
    out = capsys.readouterr().out
    assert out.count("the real-data cell is skipped") == 2
    plt.close("all")


def test_chapter_flux_cell_says_why_it_skips_and_never_raises(capsys):
    from mi_lib.hands_plots import flux_hands

    src = _chapter_cell("flux_hands(RUN_FLUX")
    for run_flux in (False, True):
        exec(src, {"flux_hands": flux_hands, "SEED": 0, "RUN_FLUX": run_flux})
    said = capsys.readouterr().out.splitlines()
    assert said[0] == "FLUX cell: RUN_FLUX is False"
    if not torch.cuda.is_available():
        assert said[1] == "FLUX cell: no CUDA GPU"
