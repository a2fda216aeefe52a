import math
import sys
import types

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from mi_lib import ToyMLP, linear_schedule, make_generator, mixture_preset, read_image, simple_shapes
from mi_lib.collapse import ddpm_sample_fn, ddpm_train_fn, generation_path, load_generation, recursive_training
from mi_lib.collapse_filters import keep_all, keep_lowest_hal, keep_random, select
from mi_lib.collapse_metrics import (
    COMBINATIONS,
    class_coverage,
    combination_coverage,
    corner_modes,
    coverage_from_counts,
    half_split_distance,
    mixture_metrics,
    mode_coverage,
    mode_median_hal,
    mode_share,
    mode_width,
    shapes_metrics,
)
from mi_lib.digits import (
    DigitsNet,
    digit_confidence,
    digits_features,
    digits_metrics,
    frechet_distance,
    load_digits_images,
    train_digits_classifier,
)
from mi_lib.shapes import two_of_a_kind

# --- filters -----------------------------------------------------------------------------------


def test_hal_filter_keeps_exactly_the_lowest_hal_and_shuffles_them():
    hal = torch.rand(200, generator=make_generator(0), dtype=torch.float64)
    samples = torch.arange(200.0)[:, None]
    kept, idx = select(samples, hal, 50, "hal", make_generator(1))
    assert kept.shape == (50, 1) and len(set(idx.tolist())) == 50
    lowest = set(torch.argsort(hal)[:50].tolist())
    assert set(idx.tolist()) == lowest
    assert float(hal[idx].max()) < float(hal[sorted(set(range(200)) - lowest)].min())
    torch.testing.assert_close(kept[:, 0], idx.double().float())
    # shuffled: not in order of Hal, nor in the order drawn
    assert not bool((hal[idx].diff() >= 0).all()) and not bool((idx.diff() > 0).all())
    assert keep_lowest_hal(samples, hal, 50, make_generator(1)).tolist() == torch.argsort(hal)[:50].tolist()


def test_hal_filter_ranks_nan_last_and_needs_hal():
    hal = torch.tensor([0.3, float("nan"), 0.1, 0.2])
    assert keep_lowest_hal(torch.zeros(4, 1), hal, 3, make_generator(0)).tolist() == [2, 3, 0]
    with pytest.raises(ValueError, match="hal must be given for filter 'hal'"):
        keep_lowest_hal(torch.zeros(4, 1), None, 3, make_generator(0))


def test_random_filter_is_seeded_and_none_keeps_everything():
    x = torch.zeros(100, 2)
    a = keep_random(x, None, 30, make_generator(5))
    assert a.tolist() == keep_random(x, None, 30, make_generator(5)).tolist()
    assert a.tolist() != keep_random(x, None, 30, make_generator(6)).tolist()
    assert len(set(a.tolist())) == 30 and 0 <= int(a.min()) and int(a.max()) < 100
    assert keep_all(x, None, 100, make_generator(0)).tolist() == list(range(100))
    with pytest.raises(ValueError, match="n_keep must equal the number of samples"):
        keep_all(x, None, 30, make_generator(0))
    kept, idx = select(torch.arange(100.0)[:, None], None, 100, "none", make_generator(0))
    assert sorted(idx.tolist()) == list(range(100)) and idx.tolist() != list(range(100))


def test_a_custom_filter_must_return_distinct_indices():
    with pytest.raises(ValueError, match="filter must return 3 distinct integer indices"):
        select(torch.zeros(5, 1), None, 3, lambda s, h, n, g: torch.tensor([0, 0, 1]), make_generator(0))
    with pytest.raises(ValueError, match="filter must return 2 distinct integer indices"):
        select(torch.zeros(5, 1), None, 2, lambda s, h, n, g: torch.tensor([0.0, 1.0]), make_generator(0))


# --- the loop, with a stand-in model (fast) -----------------------------------------------------


def _fake_run(filter="hal", n_keep=6, n_draw=10, generations=3, log=None, work_dir=None, seed=0):
    """Generation g 'samples' rows 100 g + i with Hal from a seeded permutation; training
    records what it saw."""
    log = [] if log is None else log

    def train_fn(model, data, g):
        log.append(("train", g, data.clone()))
        return {"rows": len(data)}

    def sample_fn(model, n, g):
        hal = torch.randperm(n, generator=make_generator(g)).double()
        return 100.0 * g + torch.arange(n, dtype=torch.float32)[:, None], hal

    def metrics_fn(x):
        return {"mean": x.mean(), "n": len(x)}

    data = torch.arange(4.0)[:, None]
    return list(recursive_training(data, lambda: nn.Linear(1, 1), train_fn, sample_fn, metrics_fn, generations,
                                   n_keep, n_draw, filter, seed, work_dir, progress=False)), log


def test_each_generation_trains_on_the_shuffled_kept_samples_of_the_one_before():
    records, log = _fake_run()
    assert [r.generation for r in records] == [0, 1, 2]
    torch.testing.assert_close(log[0][2], torch.arange(4.0)[:, None])
    for g, r in enumerate(records):
        hal = torch.randperm(10, generator=make_generator(g)).double()
        rows = (r.kept[:, 0] - 100 * g).long()
        assert set(rows.tolist()) == set(torch.argsort(hal)[:6].tolist())  # the lowest Hal
        assert not bool((hal[rows].diff() >= 0).all())  # not left sorted by Hal
        if g + 1 < len(records):
            torch.testing.assert_close(log[g + 1][2], r.kept)
        m = r.metrics
        assert m["train_rows"] == (4 if g == 0 else 6) and m["drawn_n"] == 10 and m["kept_n"] == 6
        assert m["kept_mean"] == pytest.approx(float(r.kept.mean()))
        assert m["hal_kept_mean"] == pytest.approx(float(hal[rows].mean())) and m["hal_kept_mean"] < m["hal_drawn_mean"]
        assert (m["n_draw"], m["n_keep"]) == (10, 6) and not r.resumed


def test_random_and_none_filters_and_the_seed():
    rand, _ = _fake_run("random")
    again, _ = _fake_run("random")
    other, _ = _fake_run("random", seed=1)
    assert all(torch.equal(a.kept, b.kept) for a, b in zip(rand, again, strict=True))
    assert not torch.equal(rand[0].kept, other[0].kept)
    none, _ = _fake_run("none", n_keep=10, n_draw=None)
    assert sorted(none[0].kept[:, 0].tolist()) == list(range(10))


def test_bad_arguments_fail_on_the_call_before_any_work(tmp_path):
    def never(*args):
        raise AssertionError("no work may start")

    data = torch.zeros(8, 2)
    ok = dict(data=data, make_model=never, train_fn=never, sample_fn=never, metrics_fn=None, generations=2,
              n_keep=4, n_draw=6, filter="hal")
    (tmp_path / "a_file").write_text("x")
    cases = [
        (dict(n_draw=3), r"n_draw must be larger than n_keep = 4 for filter 'hal'.*got 3"),
        (dict(n_draw=4, filter="random"), r"n_draw must be larger than n_keep = 4 for filter 'random'"),
        (dict(n_draw=None), r"n_draw must be given, larger than n_keep = 4, for filter 'hal'"),
        (dict(filter="none"), r"n_draw must equal n_keep = 4 \(or be None\) for filter 'none', got 6"),
        (dict(filter="lowest"), r"filter must be one of \('none', 'random', 'hal'\), got 'lowest'"),
        (dict(generations=0), r"generations must be a positive integer, got 0"),
        (dict(generations=2.0), r"generations must be a positive integer, got 2.0"),
        (dict(n_keep=0), r"n_keep must be a positive integer, got 0"),
        (dict(seed=-1), r"seed must be a non-negative integer, got -1"),
        (dict(data=torch.zeros(5)), r"data must be a tensor of shape \(N, ...\)"),
        (dict(train_fn="train"), r"train_fn must be callable, got 'train'"),
        (dict(work_dir=tmp_path / "a_file"), r"work_dir must be a directory"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            recursive_training(**(ok | change))


def test_bad_sample_fn_output_is_named():
    def run(sample_fn, filter="random"):
        return list(recursive_training(torch.zeros(4, 1), lambda: nn.Linear(1, 1), lambda m, d, g: None, sample_fn,
                                       None, 1, 2, 3, filter, progress=False))

    with pytest.raises(ValueError, match="sample_fn must return n_draw = 3 samples, got 2"):
        run(lambda m, n, g: (torch.zeros(2, 1), None))
    with pytest.raises(ValueError, match=r"sample_fn's hal must have shape \(3,\)"):
        run(lambda m, n, g: (torch.zeros(3, 1), torch.zeros(2)))
    with pytest.raises(ValueError, match="hal must be given for filter 'hal'"):
        run(lambda m, n, g: (torch.zeros(3, 1), None), "hal")


# --- resuming a real run: a tiny ToyMLP on the 2D grid --------------------------------------------


def _toy_args(work_dir, train_fn=None):
    mix, s = mixture_preset("2d_grid"), linear_schedule(20)
    return dict(
        data=mix.sample(200, make_generator(0)), make_model=lambda: ToyMLP(2, 16, 1),
        train_fn=train_fn or ddpm_train_fn(s, steps=4, batch_size=50, seed=3, progress=False),
        sample_fn=ddpm_sample_fn(s, 2, (0, 4), seed=4, progress=False), metrics_fn=mixture_metrics(mix),
        generations=3, n_keep=60, n_draw=80, filter="hal", seed=7, work_dir=work_dir, progress=False,
    )


def test_an_interrupted_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    torch.manual_seed(0)  # the global generator's state differs from run to run: init must not read it
    full = list(recursive_training(**_toy_args(tmp_path / "full")))
    base = ddpm_train_fn(linear_schedule(20), steps=4, batch_size=50, seed=3, progress=False)
    calls = []

    def interrupted(model, data, g):
        calls.append(g)
        if g == 2:
            raise KeyboardInterrupt  # the run dies inside generation 2
        return base(model, data, g)

    torch.manual_seed(1)
    with pytest.raises(KeyboardInterrupt):
        list(recursive_training(**_toy_args(tmp_path / "part", interrupted)))
    assert generation_path(tmp_path / "part", 1).is_file() and not generation_path(tmp_path / "part", 2).exists()
    assert not list((tmp_path / "part").glob("*.tmp"))

    calls.clear()

    def counted(model, data, g):
        calls.append(g)
        return base(model, data, g)

    torch.manual_seed(2)
    resumed = list(recursive_training(**_toy_args(tmp_path / "part", counted)))
    assert calls == [2]  # generations 0 and 1 were loaded, not trained again
    assert [r.resumed for r in resumed] == [True, True, False]
    for a, b in zip(full, resumed, strict=True):
        assert a.generation == b.generation and a.metrics == b.metrics
        torch.testing.assert_close(a.kept, b.kept, rtol=0, atol=0)
        for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
            assert ka == kb and torch.equal(va, vb)
    assert 0 <= full[0].metrics["drawn_hallucinated"] <= 1 and full[0].metrics["drawn_modes_covered"] <= 25

    # a finished run is only read back, and extends when asked for more generations
    assert calls == [2]
    again = list(recursive_training(**_toy_args(tmp_path / "full", counted)))
    assert calls == [2] and all(r.resumed for r in again)
    loaded = load_generation(tmp_path / "full", 2, lambda: ToyMLP(2, 16, 1))
    torch.testing.assert_close(loaded.kept, full[2].kept, rtol=0, atol=0)
    with pytest.raises(ValueError, match="holds a run made with other arguments"):
        recursive_training(**(_toy_args(tmp_path / "full") | {"n_draw": 90}))
    with pytest.raises(ValueError, match="generation must be a finished generation"):
        load_generation(tmp_path / "full", 3, lambda: ToyMLP(2, 16, 1))


# --- coverage -----------------------------------------------------------------------------------


def test_mode_coverage_counts_modes_and_their_evenness():
    mix = mixture_preset("2d_grid")
    g = make_generator(0)
    on = torch.cat([mix.means[k] + mix.sigmas[k] * torch.randn(30, 2, generator=g, dtype=torch.float64)
                    for k in (0, 7, 24)])
    gap = (mix.means[0] + mix.means[1]) / 2  # halfway between two modes: a hallucination
    x = torch.cat([on, gap.expand(10, 2)]).float()
    cov = mode_coverage(x, mix)
    assert (cov.covered, cov.total, cov.counted) == (3, 25, 90)
    assert cov.evenness == pytest.approx(math.log(3) / math.log(25))
    assert cov.shares[[0, 7, 24]].tolist() == pytest.approx([1 / 3] * 3) and float(cov.shares.sum()) == pytest.approx(1)
    m = mixture_metrics(mix)(x)
    assert m == pytest.approx({"hallucinated": 10 / 100, "modes_covered": 3, "mode_evenness": cov.evenness})
    every = mix.sample(2500, make_generator(1))
    assert mode_coverage(every, mix).covered == 25 and mode_coverage(every, mix).evenness > 0.999


def test_corners_shares_and_median_hal_per_mode():
    mix = mixture_preset("2d_grid")
    assert corner_modes(mix) == [0, 4, 20, 24]
    assert all(float(mix.means[m].abs().min()) == pytest.approx(1.414, abs=1e-3) for m in corner_modes(mix))
    with pytest.raises(ValueError, match="must be 2D"):
        corner_modes(mixture_preset("1d_three"))
    g = make_generator(0)
    on = {k: mix.means[k] + mix.sigmas[k] * torch.randn(n, 2, generator=g, dtype=torch.float64)
          for k, n in ((0, 30), (24, 10), (12, 60))}
    gap = ((mix.means[0] + mix.means[1]) / 2).expand(5, 2)
    x = torch.cat([*on.values(), gap]).float()
    assert mode_share(x, mix, corner_modes(mix)) == pytest.approx(40 / 100)  # the gap counts for no mode
    assert math.isnan(mode_share(gap.float(), mix, [0]))
    hal = torch.cat([torch.full((30,), 1.0), torch.arange(10.0), torch.full((60,), 3.0), torch.full((5,), 99.0)])
    med = mode_median_hal(x, hal, mix)
    assert med.shape == (25,) and med[[0, 12]].tolist() == [1.0, 3.0] and float(med[24]) == 4.0  # torch's lower median
    assert int(torch.isnan(med).sum()) == 22  # modes without a sample; the gap's Hal goes nowhere
    with pytest.raises(ValueError, match=r"hal must have shape \(105,\)"):
        mode_median_hal(x, hal[:-1], mix)


def test_coverage_from_counts_edges():
    assert coverage_from_counts([5, 0, 0, 0]).evenness == 0.0
    assert coverage_from_counts([5, 0, 0, 0]).covered == 1
    assert coverage_from_counts([0, 0]).covered == 0 and coverage_from_counts([0, 0]).counted == 0
    assert coverage_from_counts([100, 1]).covered == 1  # 1% is under a tenth of the fair share (5%)
    assert coverage_from_counts([100, 1], min_share=0.005).covered == 2
    with pytest.raises(ValueError, match="counts must be a non-empty 1D array"):
        coverage_from_counts([-1, 2])
    with pytest.raises(ValueError, match=r"min_share must lie in \(0, 1\], got 0"):
        coverage_from_counts([1, 2], min_share=0)


def test_combination_coverage_reads_the_shapes_data():
    data = simple_shapes(40, seed=2)
    readings = [read_image(img) for img in data.images]
    cov = combination_coverage(readings)
    masks = (data.present.long() * torch.tensor([1, 2, 4])).sum(1)
    expected = torch.bincount(masks - 1, minlength=7).double() / 40
    torch.testing.assert_close(cov.shares, expected)
    assert cov.counted == 40 and cov.covered == int((expected >= 0.1 / 7).sum())
    assert len(COMBINATIONS) == 7 and COMBINATIONS[0] == ("triangle",) and COMBINATIONS[-1] == tuple(
        ["triangle", "square", "pentagon"])


def test_shapes_metrics_reads_images():
    good = simple_shapes(6, seed=3).images
    bad = two_of_a_kind(4, "square", seed=3)
    m = shapes_metrics(torch.cat([good, bad]))
    assert m["hallucinated"] == pytest.approx(0.4) and m["unreadable"] == 0.0
    assert m["combinations_covered"] == combination_coverage([read_image(i) for i in good]).covered


def test_combination_coverage_from_counts_leaves_out_hallucinations():
    counts = np.zeros((4, 3, 3), dtype=np.int64)
    counts[0, 0, 0] = 1  # a triangle
    counts[1, 1, 1] = 1  # a square
    counts[2, 1, 1] = 2  # two squares: hallucinated
    counts[3, 0, 0], counts[3, 2, 2] = 1, 1  # triangle and pentagon
    cov = combination_coverage(counts)
    assert cov.counted == 3 and cov.covered == 3
    assert cov.shares[[0, 1, 4]].tolist() == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError, match=r"counts of shape \(N, 3, 3\)"):
        combination_coverage(np.zeros((4, 3)))


def test_class_coverage():
    cov = class_coverage(torch.tensor([0, 0, 1, 9]))
    assert (cov.covered, cov.total, cov.counted) == (3, 10, 4)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        class_coverage(torch.tensor([10]))


# --- Frechet distance ----------------------------------------------------------------------------


def test_frechet_distance_zero_shift_and_closed_form():
    g = np.random.default_rng(0)
    a = g.normal(size=(500, 6)) @ g.normal(size=(6, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.arange(6.0)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-8)
    # 1D: (m_a - m_b)^2 + (s_a - s_b)^2 with the sample moments
    x, y = g.normal(1.0, 2.0, size=300), g.normal(-0.5, 0.5, size=400)
    closed = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert frechet_distance(torch.from_numpy(x), y) == pytest.approx(closed, rel=1e-10)
    assert frechet_distance(x[:, None], y[:, None]) == pytest.approx(closed, rel=1e-10)


def test_frechet_distance_matches_the_sqrtm_formula_and_survives_singular_covariances():
    g = np.random.default_rng(1)
    a, b = g.normal(size=(400, 5)), g.normal(size=(300, 5)) * 1.5 + 0.3
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(sa + sb - 2 * scipy.linalg.sqrtm(sa @ sb).real)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)
    few = frechet_distance(g.normal(size=(5, 20)), g.normal(size=(6, 20)))  # fewer samples than dimensions
    assert math.isfinite(few) and few > 0


def test_frechet_distance_bad_input():
    with pytest.raises(ValueError, match=r"feats_b must have the dimension of feats_a \(3\), got 4"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"feats_a must have shape \(N, d\) with N >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="feats_b must be finite"):
        frechet_distance(np.zeros((5, 3)), np.full((5, 3), np.nan))


# --- digits --------------------------------------------------------------------------------------


def test_sklearn_digits_load_offline_in_minus_one_to_one():
    images, labels = load_digits_images()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32 and labels.shape == (1797,)
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0
    assert sorted(set(labels.tolist())) == list(range(10))
    with pytest.raises(ValueError, match=r"source must be one of \('sklearn', 'mnist'\), got 'emnist'"):
        load_digits_images("emnist")


def test_mnist_without_torchvision_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ValueError, match="source='mnist' needs torchvision, which is not installed"):
        load_digits_images("mnist", root="/nowhere")


def _fake_torchvision(monkeypatch, have_copy):
    """torchvision.datasets.MNIST as torchvision behaves, without the network: with
    download=False and no copy under root it raises RuntimeError('Dataset not found...')."""
    seen = {}

    class MNIST:
        def __init__(self, root, train=True, download=False):
            seen.update(root=root, train=train, download=download)
            if not (have_copy or download):
                raise RuntimeError("Dataset not found. You can use download=True to download it")
            self.data = torch.tensor([[[0, 255], [255, 0]]], dtype=torch.uint8).expand(3, 2, 2)
            self.targets = torch.tensor([1, 2, 3])

    tv, ds = types.ModuleType("torchvision"), types.ModuleType("torchvision.datasets")
    ds.MNIST, tv.datasets = MNIST, ds
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", ds)
    return seen


def test_mnist_without_a_local_copy_or_download_is_a_clear_error(monkeypatch, tmp_path):
    seen = _fake_torchvision(monkeypatch, have_copy=False)
    with pytest.raises(ValueError, match="root must hold MNIST when download=False.*download=True"):
        load_digits_images("mnist", root=tmp_path)
    assert seen["download"] is False
    with pytest.raises(ValueError, match="root must be a folder for MNIST"):
        load_digits_images("mnist")
    images, labels = load_digits_images("mnist", root=tmp_path, download=True)  # the fake 'downloads'
    assert seen == {"root": str(tmp_path), "train": True, "download": True}
    assert images.shape == (3, 1, 2, 2) and images.tolist()[0][0] == [[-1.0, 1.0], [1.0, -1.0]]
    assert labels.tolist() == [1, 2, 3]


def test_digits_classifier_learns_and_its_features_feed_the_frechet_distance():
    images, labels = load_digits_images()
    perm = torch.randperm(len(images), generator=make_generator(0))
    train_idx, test_idx = perm[:1400], perm[1400:]
    net = train_digits_classifier(images[train_idx], labels[train_idx], steps=150, seed=0, progress=False)
    with torch.no_grad():
        acc = float((net(images[test_idx]).argmax(1) == labels[test_idx]).float().mean())
    assert acc > 0.85
    same = train_digits_classifier(images[train_idx], labels[train_idx], steps=3, seed=0, progress=False)
    again = train_digits_classifier(images[train_idx], labels[train_idx], steps=3, seed=0, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), again.state_dict().values(), strict=True))
    feats = digits_features(net, images[:10])
    assert feats.shape == (10, 64) and feats.dtype == torch.float64
    assert DigitsNet().features(torch.zeros(2, 1, 28, 28)).shape == (2, 64)  # MNIST's size too
    metrics = digits_metrics(net, images[train_idx])
    real = metrics(images[test_idx])
    noise = metrics(torch.rand(len(test_idx), 1, 8, 8, generator=make_generator(0)) * 2 - 1)
    ones = metrics(images[train_idx][labels[train_idx] == 1])
    assert real["fid"] < noise["fid"] and real["fid"] < ones["fid"]
    assert real["classes_covered"] == 10 and real["class_evenness"] > 0.95
    assert ones["classes_covered"] < 4 and ones["class_evenness"] < 0.5
    conf = digit_confidence(net, images[test_idx].flatten(1))  # flattened, as the collapse runs store them
    assert torch.equal(conf, digit_confidence(net, images[test_idx]))
    assert conf.median() > 0.9 and digit_confidence(net, torch.zeros(4, 64)).max() < conf.median()
    with pytest.raises(ValueError, match="must be square, got 63"):
        digit_confidence(net, torch.zeros(2, 63))


def test_mode_width_is_sqrt_d_on_the_data_and_grows_when_the_modes_blur():
    mix = mixture_preset("2d_grid")
    x = mix.sample(20_000, torch.Generator().manual_seed(0))
    assert mode_width(x, mix) == pytest.approx(2**0.5, abs=0.03)  # E|z|^2 = 2 within 6 sigma
    means = mix.means[torch.randint(0, mix.n_modes, (20_000,), generator=torch.Generator().manual_seed(1))]
    blurred = means + 3 * (x - mix.means[mix.distance_to_nearest_mode(x)[1]])
    assert mode_width(blurred, mix) > 2 * mode_width(x, mix)


def test_half_split_distance_is_seeded_and_zero_free():
    from mi_lib.digits import DigitsNet, load_digits_images

    real, _ = load_digits_images("sklearn")
    net = DigitsNet().eval()
    a, b = (half_split_distance(real, net, 3) for _ in range(2))
    assert a == b and a > 0 and half_split_distance(real, net, 4) != a
