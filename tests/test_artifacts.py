import json

import pytest
import torch

from mi_lib import artifacts, linear_schedule, model_eps_fn, sample_bank
from mi_lib.artifacts import ARTIFACT_DIR, RECIPES, ToyRecipe, load_artifact, recipe, train_recipe
from mi_lib.artifacts.build import build_toy

BUILT = [name for name in RECIPES if (ARTIFACT_DIR / f"{name}.json").is_file()]


def test_every_recipe_is_built_and_small():
    assert BUILT == list(RECIPES), f"not built: {sorted(set(RECIPES) - set(BUILT))}"
    sizes = [(ARTIFACT_DIR / f"{name}.pt").stat().st_size for name in BUILT]
    assert max(sizes) < 5 * 2**20
    assert sum(sizes) + sum((ARTIFACT_DIR / f"{n}.json").stat().st_size for n in BUILT) < 20 * 2**20


@pytest.mark.parametrize("name", BUILT)
def test_manifest_command_reproduces_the_start_of_the_run(name):
    manifest = json.loads((ARTIFACT_DIR / f"{name}.json").read_text())
    assert manifest["command"] == f"python -m mi_lib.artifacts build {name}"
    rec = recipe(name)
    assert ToyRecipe(**manifest["recipe"]) == rec  # the registry still holds the recipe that made it
    first = manifest["metrics"]["first_losses"]
    model = rec.model()
    losses = [s.loss for s in train_recipe(rec, model, steps=len(first), progress=False)]
    assert losses == pytest.approx(first, rel=1e-4)


@pytest.mark.parametrize("name", BUILT)
def test_artifact_loads_and_matches_its_manifest(name):
    art = load_artifact(name)
    m = art["manifest"]
    assert art["samples"].shape == (m["recipe"]["n_samples"], art["model"].dim)
    assert len(art["losses"]) == m["recipe"]["steps"]
    assert art["losses"][:5].tolist() == pytest.approx(m["metrics"]["first_losses"], rel=1e-6)
    hal = art["recipe"].mixture().hallucinated(art["samples"])
    assert int(hal.sum()) == m["metrics"]["hallucinated"]


def test_sample_bank_is_what_the_model_draws():
    name = "1d_three_T100"  # T = 100 keeps this quick
    if name not in BUILT:
        pytest.skip(f"{name} not built")
    art = load_artifact(name)
    rec = art["recipe"]
    n = rec.sample_chunk  # the bank's first chunk, drawn alone
    redrawn = sample_bank(model_eps_fn(art["model"]), n, 1, rec.schedule(), rec.sample_seed, chunk=n, progress=False)
    close = (redrawn - art["samples"][:n]).abs() < 1e-4  # float rounding may differ across machines
    assert close.float().mean() > 0.99


def test_build_and_load_a_tiny_recipe(tmp_path, monkeypatch):
    tiny = ToyRecipe("1d_two", n_data=200, steps=4, batch_size=50, T=10, n_samples=6, sample_chunk=4, width=16,
                     n_blocks=1)
    monkeypatch.setitem(artifacts.RECIPES, "tiny", tiny)
    manifest = build_toy("tiny", out_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.pt"]
    art = load_artifact("tiny", tmp_path)
    assert art["samples"].shape == (6, 1) and manifest["metrics"]["n_samples"] == 6
    assert art["model"](torch.zeros(2, 1), torch.tensor(3)).shape == (2, 1)
    assert linear_schedule(10).T == art["recipe"].T
    (tmp_path / "tiny.pt").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="does not match the sha256"):
        load_artifact("tiny", tmp_path)
    with pytest.raises(ValueError, match="name must be a built artifact"):
        load_artifact("missing", tmp_path)
    with pytest.raises(ValueError, match="name must be one of"):
        recipe("nope")


def test_paper_recipes_use_the_papers_batch_and_epochs():
    from mi_lib.artifacts import paper_recipe, toy_model

    for name in RECIPES:
        rec = paper_recipe(name)
        assert rec.batch_size == 10_000 and rec.n_samples == 100_000 and rec.epochs == 10_000
        assert rec.preset == recipe(name).preset and rec.T == recipe(name).T
    with pytest.raises(ValueError, match="scale must be one of"):
        toy_model("1d_three", scale="huge")
