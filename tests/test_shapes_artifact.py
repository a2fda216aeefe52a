"""The shipped Simple Shapes U-Net and its bank (mi_lib.artifacts.shapes)."""

import dataclasses
import json

import pytest
import torch

from mi_lib.artifacts import ARTIFACT_DIR
from mi_lib.artifacts import shapes as S
from mi_lib.shapes import read_image

BUILT = (ARTIFACT_DIR / f"{S.NAME}.json").is_file()
needs_artifact = pytest.mark.skipif(not BUILT, reason="python -m mi_lib.artifacts build shapes")


@needs_artifact
def test_manifest_command_reproduces_the_start_of_the_run():
    manifest = json.loads((ARTIFACT_DIR / f"{S.NAME}.json").read_text())
    assert manifest["command"] == f"python -m mi_lib.artifacts build {S.NAME}"
    assert S.load_shapes()["recipe"] == S.RECIPE  # the registry still holds the recipe that made it
    first = manifest["metrics"]["first_losses"][:3]
    model = S.RECIPE.model()
    losses = [s.loss for s in S.train_shapes(S.RECIPE, model, steps=len(first), progress=False)]
    assert losses == pytest.approx(first, rel=1e-4)


@needs_artifact
def test_artifact_loads_matches_its_manifest_and_is_small():
    art = S.load_shapes()
    m, rec = art["manifest"], art["recipe"]
    assert art["images"].shape == (rec.n_samples, 1, 64, 64)
    assert art["hal"].shape == (rec.n_samples,) and bool((art["hal"] >= 0).all())
    assert len(art["losses"]) == rec.steps
    labels = [read_image(im).label for im in art["images"]]
    assert {lab: labels.count(lab) for lab in m["metrics"]["labels"]} == m["metrics"]["labels"]
    assert all(f["bytes"] < 5 * 2**20 for f in m["files"].values())
    with torch.no_grad():
        assert torch.isfinite(art["model"](art["images"][:2], torch.tensor(10))).all()


def test_build_resume_and_load_a_tiny_recipe(tmp_path):
    tiny = dataclasses.replace(S.RECIPE, base=8, steps=4, batch_size=8, n_data=40, n_samples=3, sample_chunk=2,
                               sample_steps=12)
    work = tmp_path / "work"
    first = S.build(tmp_path, work, tiny, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes.json", "shapes.pt", "shapes_bank.npz", "work"]
    art = S.load_shapes(tmp_path)
    assert art["images"].shape == (3, 1, 64, 64) and art["recipe"] == tiny
    assert art["images"].min() >= -1 and art["images"].max() <= 1
    # A second build finds the finished checkpoint and resumes from it: same weights, same losses.
    again = S.build(tmp_path, work, tiny, progress=False)
    assert again["metrics"]["first_losses"] == first["metrics"]["first_losses"]
    assert again["files"]["shapes.pt"]["sha256"] == first["files"]["shapes.pt"]["sha256"]
    (tmp_path / "shapes.pt").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        S.load_shapes(tmp_path)


def test_shapes_model_rejects_an_unknown_scale():
    with pytest.raises(ValueError, match="scale"):
        S.shapes_model("huge")
