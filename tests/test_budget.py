"""The training-budget study (mi_lib.artifacts.budget), at tiny sizes."""

import dataclasses

import pytest
import torch

from mi_lib.artifacts import budget as BU
from mi_lib.artifacts.build import KINDS, kind_of

TINY = dataclasses.replace(BU.RECIPE, n_data=400, batch_size=100, T=50, budgets=(2, 5), n_draws=300,
                           sample_chunk=150, windows=((0, 4), (2, 9)), n_subsample=50)


def test_study_builds_resumes_and_loads_back(tmp_path, monkeypatch):
    manifest = BU.build_budget(BU.NAME, tmp_path, tmp_path / "work", TINY, progress=False)
    art = BU.load_budget(art_dir=tmp_path)
    assert art["recipe"] == TINY and len(art["losses"]) == 5
    for r in art["budgets"].values():  # no tensor drags its whole bank's storage into the file
        assert all(t.untyped_storage().nbytes() == t.numel() * t.element_size() for t in r.values()
                   if isinstance(t, torch.Tensor))
    for b in TINY.budgets:
        r, m = art["budgets"][b], manifest["metrics"][str(b)]
        assert int(r["histogram"].sum()) + m["outside_histogram"] == TINY.n_draws
        lo, hi = art["edges"].tolist()
        assert int(((r["tail_x"] < lo) | (r["tail_x"] > hi)).sum()) == m["outside_histogram"]
        assert r["sub_x"].shape == (50,) and r["sub_hal"].shape == (2, 50)
        assert r["tail_hal"].shape == (2, len(r["tail_x"]))
        assert m["n"] == TINY.n_draws and 0 <= m["low"] <= m["rate"] <= m["high"] <= 1
    # The snapshot after 5 steps is the model a straight 5-step run ends with.
    toy = TINY.toy()
    straight = toy.model()
    list(BU.train(straight, toy.data(), toy.schedule(), steps=5, batch_size=100, lr=TINY.lr, seed=TINY.seed,
                  progress=False))
    snap = torch.load(tmp_path / "work" / BU.NAME / "snapshot_5.pt", weights_only=True)
    assert all(torch.equal(snap[k], v) for k, v in straight.state_dict().items())
    # Built again: nothing is trained or sampled.
    monkeypatch.setattr(BU, "sample_with_window_hals", lambda *a, **k: pytest.fail("sampled again"))
    again = BU.build_budget(BU.NAME, tmp_path, tmp_path / "work", TINY, progress=False)
    assert again["metrics"] == manifest["metrics"]
    # The build's time is its recorded work, carried over invocations, not the last invocation's.
    built, rebuilt = manifest["built_with"], again["built_with"]
    assert built["train_seconds"] >= 0 and built["sample_seconds"] >= 0  # rounded to 0.1 s
    assert (rebuilt["train_seconds"], rebuilt["sample_seconds"]) == (built["train_seconds"], built["sample_seconds"])
    log = tmp_path / "work" / BU.NAME / "losses.pt"  # a log from before training times were kept
    torch.save({"losses": torch.load(log, weights_only=True)["losses"]}, log)
    assert BU.build_budget(BU.NAME, tmp_path, tmp_path / "work", TINY, progress=False)["built_with"][
        "train_seconds"] is None
    with pytest.raises(ValueError, match="holds a study of another recipe"):
        BU.build_budget(BU.NAME, tmp_path, tmp_path / "work", dataclasses.replace(TINY, lr=2e-3), progress=False)


@pytest.mark.parametrize("change, match", [
    ({"budgets": ()}, "budgets must be a non-empty increasing tuple"),
    ({"budgets": (5, 2)}, "budgets must be a non-empty increasing tuple"),
    ({"keep_sigma": 7.0}, "keep_sigma must lie in"),
    ({"n_draws": 0}, "n_draws"),
])
def test_recipe_checks_its_fields(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **change)


def test_the_study_is_a_kind_of_artifact():
    assert kind_of(BU.NAME) == "budget" and KINDS["budget"].names == (BU.NAME,)


def test_figure_and_table_draw_from_a_built_study(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mi_lib.budget_plots import budget_figure, budget_rows, budget_table

    BU.build_budget(BU.NAME, tmp_path, tmp_path / "work", TINY, progress=False)
    study = BU.load_budget(art_dir=tmp_path)
    rows = budget_rows(study, (0, 4))
    assert [r[0] for r in rows] == ["2", "5"] and all(len(r) == 5 for r in rows)
    budget_table(study, (0, 4))
    fig = budget_figure(study, (0, 4), paper_steps=5)
    assert len(fig.axes) == 2
    plt.close("all")


def test_diverged_draws_count_as_hallucinated_with_the_largest_hal(monkeypatch):
    def fake_sampler(eps_fn, n, dim, schedule, seed, windows, **kw):
        x = torch.full((n, 1), 2.0)
        x[0], x[1], x[2] = float("inf"), float("nan"), 1.5  # two diverged, one between modes
        hal = {w: torch.ones(n) for w in windows}
        hal[windows[0]][3] = float("nan")  # a finite draw whose Hal overflowed
        return x, hal

    monkeypatch.setattr(BU, "sample_with_window_hals", fake_sampler)
    rec = dataclasses.replace(TINY, n_draws=20, n_subsample=5)
    out = BU.evaluate(rec, rec.toy().model().state_dict(), progress=False)
    m = out["metrics"]
    assert m["diverged"] == 2 and m["hal_overflow"] == 1 and m["hallucinated"] == 3
    assert torch.isfinite(out["tail_hal"]).all() and len(out["tail_x"]) == 3
    assert int(out["histogram"].sum()) + m["outside_histogram"] == 20
