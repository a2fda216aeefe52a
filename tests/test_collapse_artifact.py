"""The shipped recursive-training runs (mi_lib.artifacts.collapse)."""

import dataclasses
import json

import pytest
import torch

from mi_lib.artifacts import ARTIFACT_DIR
from mi_lib.artifacts import build as B
from mi_lib.artifacts import collapse as C

BUILT = [name for name in C.NAMES if (ARTIFACT_DIR / f"{name}.json").is_file()]


def _tiny(data: str) -> C.CollapseRecipe:
    extra = dict(beta_start=2e-4, beta_end=0.04, window=(3, 6), classifier_steps=3) if data == "digits" else {}
    return C.CollapseRecipe(data, generations=2, n_keep=40, n_draw=50, steps=3, anneal_steps=2, width=16,
                            batch_size=20, n_blocks=1, T=12, n_store=5, sample_chunk=30, **extra)


@pytest.mark.parametrize("name", BUILT)
def test_manifest_command_reproduces_the_start_of_the_run(name):
    manifest = json.loads((ARTIFACT_DIR / f"{name}.json").read_text())
    assert manifest["command"] == f"python -m mi_lib.artifacts build {name}"
    rec = C.recipe(name)
    assert C.load(name)["recipe"] == rec  # the registry still holds the recipe that made it
    first = manifest["metrics"]["first_losses"]
    assert C.first_losses(rec, len(first)) == pytest.approx(first, rel=1e-4)


@pytest.mark.parametrize("name", BUILT)
def test_artifact_loads_matches_its_manifest_and_is_small(name):
    art = C.load(name)
    rec, m = art["recipe"], art["manifest"]
    assert m["bytes"] < 5 * 2**20
    assert set(art["samples"]) == set(rec.filters) == set(art["metrics"])
    for f in rec.filters:
        assert art["samples"][f].shape == (rec.generations, rec.n_store, rec.dim)
        assert art["hal"][f].shape == (rec.generations, rec.n_store)
        assert [g["n_draw"] for g in art["metrics"][f]] == [rec.draw(f)] * rec.generations
    # generation 0 is one model under every filter: the same training loss, the same first draws
    losses = {art["metrics"][f][0]["train_loss"] for f in rec.filters}
    assert len(losses) == 1
    assert torch.equal(art["samples"]["hal"][0], art["samples"]["random"][0])
    assert (art["classifier"] is not None) == (rec.data == "digits")


@pytest.mark.parametrize("data", C.DATASETS)
def test_build_resume_and_load_a_tiny_recipe(tmp_path, monkeypatch, data):
    rec = _tiny(data)
    monkeypatch.setitem(C.RECIPES, "tiny", rec)
    work = tmp_path / "work"
    first = B.build_collapse("tiny", tmp_path, work, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.pt", "work"]
    art = C.load("tiny", tmp_path)
    assert art["recipe"] == rec
    for f in rec.filters:
        assert art["samples"][f].shape == (2, 5, rec.dim)
        assert len(art["metrics"][f]) == 2 and art["metrics"][f][1]["n_keep"] == 40
    if data == "digits":
        assert art["classifier"] is not None and "drawn_fid" in art["metrics"]["hal"][0]
        assert float(art["samples"]["none"].abs().max()) <= 1.0
    else:
        assert 0 <= art["metrics"]["hal"][1]["drawn_hallucinated"] <= 1
    # generation 0 trains once and is shared: the filters' first draws agree
    assert art["metrics"]["hal"][0]["drawn_" + ("fid" if data == "digits" else "hallucinated")] == \
        art["metrics"]["random"][0]["drawn_" + ("fid" if data == "digits" else "hallucinated")]
    # a second build resumes every generation from the work folder: the same file
    again = B.build_collapse("tiny", tmp_path, work, progress=False)
    assert again["sha256"] == first["sha256"] and again["metrics"]["first_losses"] == first["metrics"]["first_losses"]
    # The build's time is the work it records, carried over invocations: with every generation
    # recorded as taking 1,000 s, a build that resumes them all took at least that long.
    for path in work.glob("tiny/*/*.pt"):
        state = torch.load(path, weights_only=True)
        if "seconds" in state:
            torch.save({**state, "seconds": 1000.0}, path)
    resumed = B.build_collapse("tiny", tmp_path, work, progress=False)
    assert 1000 * len(rec.filters) * rec.generations <= resumed["built_with"]["seconds"] < 1000 * (
        len(rec.filters) * rec.generations + 1)
    # without a work folder (what a chapter runs live) the numbers are the same
    live = C.collapse_runs("tiny", retrain=True, progress=False)
    assert live["metrics"] == art["metrics"]
    assert all(torch.equal(live["samples"][f], art["samples"][f]) for f in rec.filters)
    (tmp_path / "tiny.pt").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        C.load("tiny", tmp_path)


def test_first_losses_of_a_resumed_generation0_are_recomputed(tmp_path, monkeypatch):
    rec = dataclasses.replace(_tiny("2d_grid"), filters=("random",))
    monkeypatch.setitem(C.RECIPES, "tiny", rec)
    first = B.build_collapse("tiny", tmp_path, tmp_path / "work", progress=False)
    (tmp_path / "work" / "tiny" / "generation0.pt").unlink()
    again = B.build_collapse("tiny", tmp_path, tmp_path / "work", progress=False)
    assert again["metrics"]["first_losses"] == pytest.approx(first["metrics"]["first_losses"], rel=1e-6)


def test_recipes_and_paper_recipes():
    for name in C.NAMES:
        rec, paper = C.recipe(name), C.paper_recipe(name)
        assert rec.n_draw > rec.n_keep and paper.n_draw > paper.n_keep and paper.generations >= 5
    assert C.paper_recipe("collapse_2d").n_keep == 100_000 and C.paper_recipe("collapse_2d").n_draw == 102_500
    assert (C.paper_recipe("collapse_digits").n_keep, C.paper_recipe("collapse_digits").n_draw) == (60_000, 65_000)
    with pytest.raises(ValueError, match="name must be one of"):
        C.recipe("nope")
    with pytest.raises(ValueError, match="data must be one of"):
        C.CollapseRecipe("3d", generations=1, n_keep=1, n_draw=2, steps=1, anneal_steps=0, width=4)
    with pytest.raises(ValueError, match="scale must be one of"):
        C.collapse_runs("collapse_2d", scale="huge")


def test_hal_after_the_fact_filters_with_the_finished_samples():
    from mi_lib.hal import hal_after_the_fact
    from mi_lib.learned import model_eps_fn
    from mi_lib.runtime import derived_seed

    rec = dataclasses.replace(_tiny("digits"), hal_after=3)
    model = C.fresh_model(rec, 0)
    x, hal = C._draw(rec, model, 7, seed=5, progress=False)
    assert float(x.abs().max()) <= 1.0 and hal.shape == (7,) and bool(torch.isfinite(hal).all())
    again = hal_after_the_fact(model_eps_fn(model), x, rec.schedule(), 3, 6, 3, seed=derived_seed(5, 1),
                               chunk=rec.sample_chunk)
    assert torch.equal(hal, again)
    for bad in (1, 5, True):
        with pytest.raises(ValueError, match="hal_after must be 0"):
            dataclasses.replace(rec, hal_after=bad)


def test_the_longer_runs_differ_from_the_shipped_ones_only_where_they_say():
    base2d, base_digits = C.recipe("collapse_2d"), C.recipe("collapse_digits")
    for seed in (0, 1):
        rec = C.recipe(f"collapse_2d_g20_s{seed}")
        assert rec == dataclasses.replace(base2d, generations=20, seed=seed, data_seed=seed, n_store=1_000)
    for seed in (0, 1, 2):
        rec = C.recipe(f"collapse_digits_after_s{seed}")
        assert rec == dataclasses.replace(base_digits, generations=5, seed=seed, hal_after=6)
        assert C.paper_recipe(f"collapse_digits_after_s{seed}").hal_after == 6
