"""Toy models at the paper's protocol (mi_lib.artifacts.protocol) and their compact banks
(mi_lib.artifacts.compact), at tiny sizes; and the shipped ones."""

import dataclasses

import pytest
import torch

from mi_lib.artifacts import protocol as P
from mi_lib.artifacts.build import KINDS, kind_of
from mi_lib.artifacts.compact import compact_bank, histogram_edges
from mi_lib.artifacts.manifest import ARTIFACT_DIR
from mi_lib.hal import sample_chunks
from mi_lib.learned import model_eps_fn
from mi_lib.mixtures import mixture_preset


def tiny(name: str) -> P.ProtocolRecipe:
    rec = P.RECIPES[name]
    toy = dataclasses.replace(rec.toy, n_data=400, batch_size=100, steps=6, T=50, n_samples=600, sample_chunk=100)
    return dataclasses.replace(rec, toy=toy, part=200, n_subsample=150, windows=((0, 4), (2, 9)))


@pytest.mark.parametrize("name", ["protocol_1d_three", "protocol_2d_grid"])
def test_builds_resumes_redraws_and_loads_back(name, tmp_path, monkeypatch):
    rec = tiny(name)
    manifest = P.build_protocol(name, tmp_path, tmp_path / "work", rec, progress=False)
    art = P.load_protocol(name, tmp_path)
    m, dim = art["metrics"], rec.toy.mixture().dim
    assert art["recipe"] == rec and len(art["losses"]) == 6 and m["n"] == 600
    assert int(art["histogram"].sum()) + m["outside_histogram"] == 600
    assert art["sub_x"].shape == (150, dim) and art["sub_hal"].shape == (2, 150)
    assert art["tail_hal"].shape == (2, len(art["tail_x"]))
    assert all(t.untyped_storage().nbytes() == t.numel() * t.element_size() for t in art.values()
               if isinstance(t, torch.Tensor))
    # The stored draws are the shipped weights' draws: the first chunk, drawn again.
    toy = rec.toy
    x, hal, _ = sample_chunks(model_eps_fn(art["model"]), toy.sample_chunk, dim, toy.schedule(), seed=toy.sample_seed,
                              chunk=toy.sample_chunk, windows=list(rec.windows), progress=False)
    assert torch.allclose(x, art["sub_x"][:100], rtol=0, atol=0, equal_nan=True)
    big = torch.finfo(torch.float32).max
    assert torch.equal(torch.nan_to_num(torch.stack(hal).float(), nan=big, posinf=big), art["sub_hal"][:, :100])
    # Built again: nothing is trained or sampled; another recipe in the same folder is refused.
    monkeypatch.setattr(P, "sample_chunks", lambda *a, **k: pytest.fail("sampled again"))
    monkeypatch.setattr(P, "train", lambda *a, **k: iter(()))
    again = P.build_protocol(name, tmp_path, tmp_path / "work", rec, progress=False)
    assert again["metrics"] == manifest["metrics"]
    with pytest.raises(ValueError, match="holds a build of another recipe"):
        P.build_protocol(name, tmp_path, tmp_path / "work", dataclasses.replace(rec, kept=0.9), progress=False)


def test_an_interrupted_bank_resumes_from_its_last_part(tmp_path, monkeypatch):
    rec = tiny("protocol_1d_three")
    whole = P.build_protocol("protocol_1d_three", tmp_path / "a", tmp_path / "wa", rec, progress=False)
    calls = []
    real = P.sample_chunks

    def interrupted(*a, **k):
        calls.append(k["first_chunk"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(P, "sample_chunks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        P.build_protocol("protocol_1d_three", tmp_path / "b", tmp_path / "wb", rec, progress=False)
    monkeypatch.setattr(P, "sample_chunks", lambda *a, **k: (calls.append(k["first_chunk"]), real(*a, **k))[1])
    resumed = P.build_protocol("protocol_1d_three", tmp_path / "b", tmp_path / "wb", rec, progress=False)
    assert calls == [0, 2, 2, 4]  # the first part was kept; the second is drawn after the interruption
    assert resumed["metrics"] == whole["metrics"]


@pytest.mark.parametrize("change, match", [
    ({"part": 150}, "part must be a multiple of toy.sample_chunk"),
    ({"keep_sigma": 7.0}, "keep_sigma must lie in"),
    ({"n_subsample": 0}, "n_subsample"),
])
def test_recipe_checks_its_fields(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(tiny("protocol_1d_three"), **change)


def test_compact_bank_counts_diverged_draws_and_overflowed_hal():
    mixture = mixture_preset("1d_three")
    x = torch.full((20, 1), 2.0)
    x[0], x[1], x[2] = float("inf"), float("nan"), 1.5  # two diverged, one between modes
    hal = torch.ones(2, 20)
    hal[0, 3] = float("nan")  # a finite draw whose Hal overflowed
    out = compact_bank(x, hal, mixture, ((0, 4), (2, 9)), n_subsample=5)
    m = out["metrics"]
    assert m["diverged"] == 2 and m["hal_overflow"] == 1 and m["hallucinated"] == 3
    assert torch.isfinite(out["tail_hal"]).all() and len(out["tail_x"]) == 3
    assert int(out["histogram"].sum()) + m["outside_histogram"] == 20
    assert set(m["windows"]) == {"0-4", "2-9"}


def test_histogram_edges_cover_the_modes():
    lo, hi, bins = histogram_edges(mixture_preset("1d_four"))
    assert (lo, hi) == (-0.5, 6.5) and bins == 7_000  # bins of sigma / 50
    lo, hi, bins = histogram_edges(mixture_preset("2d_diamond"))
    assert lo < -1.4 and hi > 1.4 and bins == 400


def test_protocol_is_a_kind_of_artifact():
    assert kind_of("protocol_1d_three") == "protocol" and KINDS["protocol"].names == P.NAMES


SHIPPED = [n for n in P.NAMES if (ARTIFACT_DIR / f"{n}.json").is_file()]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_artifacts_verify_and_their_training_starts_as_recorded(name):
    art = P.load_protocol(name)  # checks the sha256
    rec, m = art["recipe"], art["metrics"]
    assert rec == P.RECIPES[name] and m["n"] == rec.toy.n_samples
    assert int(art["histogram"].sum()) + m["outside_histogram"] == m["n"]
    toy = rec.toy
    model = toy.model()
    first = [s.loss for s in P.train(model, toy.data(), toy.schedule(), steps=3, batch_size=toy.batch_size,
                                     lr=toy.lr, seed=toy.seed, progress=False)]
    assert first == pytest.approx(art["losses"][:3].tolist(), rel=1e-5)


def test_shipped_artifacts_stay_small():
    assert all((ARTIFACT_DIR / f"{n}.pt").stat().st_size < 3 * 2**20 for n in SHIPPED)
    # Every artifact of every kind together: the limit on what the package ships.
    total = sum(p.stat().st_size for p in ARTIFACT_DIR.iterdir() if p.suffix in {".pt", ".npz", ".json"})
    assert total <= 40 * 2**20


def test_banks_read_the_compact_form_as_the_whole_bank(tmp_path):
    from mi_lib.banks import bank_direction_rates, bank_gap_rates, bank_rate, detection_set, survival
    from mi_lib.detection import auroc

    for name in ("protocol_1d_three", "protocol_2d_grid"):
        rec = tiny(name)
        P.build_protocol(name, tmp_path, tmp_path / "work", rec, progress=False)
        bank, mixture = P.load_protocol(name, tmp_path), rec.toy.mixture()
        m = bank["metrics"]
        r = bank_rate(bank, mixture)
        assert (r.count, r.n) == (m["hallucinated"], m["n"])
        assert float(survival(bank, mixture, torch.tensor([6.0]))[0]) == pytest.approx(r.rate)
        hal, y = detection_set(bank, (0, 4), mixture)
        assert int(y.sum()) == m["hallucinated"] and len(y) <= m["hallucinated"] + 150
        assert abs(auroc(hal, y) - m["windows"]["0-4"]["auroc"]) < 0.1  # the subsample stands for the rest
        if mixture.dim == 1:
            assert sum(g.count for *_, g in bank_gap_rates(bank, mixture)) <= r.count
        else:
            assert sum(d.count for d in bank_direction_rates(bank, mixture).values()) == r.count
        with pytest.raises(ValueError, match="k must be at least the bank's keep_sigma"):
            bank_rate(bank, mixture, k=2.0)
        hal_far, y_far = detection_set(bank, (0, 4), mixture, k=10.0, k_in=6.0)
        assert int(y_far.sum()) <= int(y.sum()) and int((~y_far).sum()) == int((~y).sum())
        with pytest.raises(ValueError, match="k_in must lie in"):
            detection_set(bank, (0, 4), mixture, k=6.0, k_in=8.0)
        with pytest.raises(ValueError, match="r must be at least"):
            survival(bank, mixture, torch.tensor([1.0]))


def test_protocol_figures_draw(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mi_lib.protocol_plots import density_1d, density_2d, gaussian_survival, survival_figure

    banks = {}
    for name in ("protocol_1d_three", "protocol_2d_grid"):
        rec = tiny(name)
        P.build_protocol(name, tmp_path, tmp_path / "work", rec, progress=False)
        banks[name] = (P.load_protocol(name, tmp_path), rec.toy.mixture())
    from mi_lib.banks import bank_rate
    from mi_lib.protocol_plots import series_table

    bank, mix = banks["protocol_1d_three"]
    rates = series_table({"a": {25: bank}, "b": {50: bank, 100: bank}}, mix, "data (k)", window="0-4")
    assert list(rates) == ["a", "b"] and list(rates["b"]) == [50, 100] and rates["a"][25] == bank_rate(bank, mix)
    with pytest.raises(ValueError, match="window must be one the bank 'a' 1 recorded"):
        series_table({"a": {1: bank}}, mix, window="0-14")
    fig, (a, b) = plt.subplots(1, 2)
    density_1d(a, *banks["protocol_1d_three"])
    density_2d(b, *banks["protocol_2d_grid"])
    assert len(survival_figure(banks).axes[0].lines) >= 4
    assert gaussian_survival([6.0], 2)[0] == pytest.approx(1.523e-8, rel=1e-3)
    with pytest.raises(ValueError, match="dim must be 1 or 2"):
        gaussian_survival([6.0], 3)
    plt.close("all")


def test_rate_curves_draw_each_series_in_order_of_its_setting():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mi_lib.banks import count_rate
    from mi_lib.protocol_plots import rate_curves

    fig, ax = plt.subplots()
    rate_curves(ax, {"a": {100: count_rate(5, 1000), 25: count_rate(50, 1000)}, "b": {25: count_rate(1, 10)}}, "n")
    line_a, line_b = (c.lines[0] for c in ax.containers)  # each errorbar's data line
    assert line_a.get_xdata().tolist() == [25, 100] and line_a.get_ydata().tolist() == [0.05, 0.005]
    assert line_b.get_ydata().tolist() == [0.1]
    assert ax.get_yscale() == "log" and ax.get_legend() is not None
    assert [t.get_text() for t in ax.get_xticklabels()] == ["25", "100"]  # the settings, as given
    plt.close("all")


def test_build_all_orders_every_kind_and_estimates_from_the_manifests(monkeypatch, capsys):
    from mi_lib.artifacts import __main__ as cli

    built = []
    fakes = {kind: KINDS[kind]._replace(build=lambda name, out_dir, **kw: (built.append(name),
                                                                           {"built_with": {"seconds": 0}})[1])
             for kind in KINDS}
    monkeypatch.setattr(cli, "KINDS", fakes)
    cli.main(["build", "--all", "--out-dir", "/nonexistent"])
    every = [n for k in cli.ORDER for n in KINDS[k].names]
    assert built == every and sorted(every) == sorted(n for k in KINDS.values() for n in k.names)
    out = capsys.readouterr().out
    assert f"[1/{len(every)}] {every[0]}: about" in out and "h left by the shipped manifests" in out
    built.clear()
    cli.main(["build", "protocol", "1d_three", "--out-dir", "/nonexistent"])
    assert built == [*P.NAMES, "1d_three"]
    with pytest.raises(SystemExit):
        cli.main(["build"])  # neither names nor --all
    with pytest.raises(SystemExit):
        cli.main(["build", "1d_three", "no_such_thing", "--out-dir", "/nonexistent"])
    assert "no artifact or group is called 'no_such_thing'" in capsys.readouterr().err
    assert built == [*P.NAMES, "1d_three"]  # the bad name stopped the run before any build


def test_time_left_scales_the_recorded_times_by_the_pace():
    from mi_lib.artifacts.__main__ import recorded_seconds, time_left

    hands = recorded_seconds("hands_gapped")
    assert hands > 1_000  # train plus sample seconds of the shipped build
    assert recorded_seconds("1d_three") > 0 and recorded_seconds("no_such_thing") != recorded_seconds("no_such_thing")
    full = time_left(["hands_gapped"], [])
    half = time_left(["hands_gapped"], [("hands_continuous", recorded_seconds("hands_continuous") / 2)])
    assert float(full.split()[1]) == pytest.approx(hands / 3600, abs=0.05)
    assert float(half.split()[1]) == pytest.approx(hands / 7200, abs=0.05)


def test_protocol_model_builds_at_paper_scale_and_checks_its_arguments(tmp_path, monkeypatch):
    rec = tiny("protocol_1d_three")
    monkeypatch.setitem(P.RECIPES, "protocol_1d_three", rec)
    art = P.protocol_model("protocol_1d_three", "paper", progress=False, cache_dir=tmp_path)
    assert art["recipe"] == rec and (tmp_path / "protocol_1d_three.json").is_file()
    with pytest.raises(ValueError, match="scale must be one of"):
        P.protocol_model("protocol_1d_three", "huge")
    with pytest.raises(ValueError, match="name must be one of"):
        P.protocol_model("nope")
