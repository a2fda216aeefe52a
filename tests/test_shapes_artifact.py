"""The shipped Simple Shapes U-Net and its bank (mi_lib.artifacts.shapes)."""

import dataclasses
import json

import pytest
import torch

from mi_lib.artifacts import ARTIFACT_DIR
from mi_lib.artifacts import image_banks as IBK
from mi_lib.artifacts import image_build as IB
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


def _build(out, work, rec):
    return IB.build_image("shapes", out, work, rec, snapshots=(2,), save_every=2, progress=False)


def test_build_resume_and_load_a_tiny_recipe(tmp_path, monkeypatch):
    tiny = dataclasses.replace(S.RECIPE, base=8, steps=4, batch_size=8, n_data=40, n_samples=3, sample_chunk=2,
                               sample_steps=12)
    work = tmp_path / "work"
    first = _build(tmp_path, work, tiny)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes.json", "shapes.pt", "shapes_bank.npz", "work"]
    assert first["command"] == ("python -m mi_lib.artifacts build shapes --set n_data=40 --set base=8 "
                                "--set batch_size=8 --set sample_steps=12 --set n_samples=3 --set sample_chunk=2 "
                                "--set steps=4")  # the fields that differ from the registry's recipe, in its order
    art = S.load_shapes(tmp_path)
    assert art["images"].shape == (3, 1, 64, 64) and art["recipe"] == tiny
    assert art["images"].min() >= -1 and art["images"].max() <= 1
    assert [s["step"] for s in first["metrics"]["snapshots"]] == [2, 4]
    # A second build finds the finished checkpoint and the sampled banks, and resumes from them:
    # same weights, same losses, same bank, without sampling again.
    monkeypatch.setattr(IBK, "sample_in_processes", lambda *a, **k: pytest.fail("sampled again"))
    again = _build(tmp_path, work, tiny)
    assert again["files"]["shapes_bank.npz"] == first["files"]["shapes_bank.npz"]
    assert again["metrics"]["first_losses"] == first["metrics"]["first_losses"]
    assert again["files"]["shapes.pt"]["sha256"] == first["files"]["shapes.pt"]["sha256"]
    (tmp_path / "shapes.pt").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        S.load_shapes(tmp_path)


def test_shapes_model_rejects_an_unknown_scale():
    with pytest.raises(ValueError, match="scale"):
        S.shapes_model("huge")


def test_build_refuses_to_resume_another_recipes_checkpoint(tmp_path):
    tiny = dataclasses.replace(S.RECIPE, base=8, steps=2, batch_size=8, n_data=40, n_samples=2, sample_chunk=2,
                               sample_steps=12)
    work = tmp_path / "work"
    short = _build(tmp_path, work, tiny)
    with pytest.raises(ValueError, match=r"another recipe.*\['lr'\]"):
        _build(tmp_path, work, dataclasses.replace(tiny, lr=1e-3))
    # A longer run of the same recipe resumes: its first steps are the shorter run's.
    longer = _build(tmp_path, work, dataclasses.replace(tiny, steps=4))
    assert longer["metrics"]["first_losses"][:2] == short["metrics"]["first_losses"]
    assert len(longer["metrics"]["first_losses"]) == 4
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "shapes_train.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown recipe"):
        _build(tmp_path, unknown, tiny)


def test_redraw_chunk_gives_back_that_chunk_of_the_bank(tmp_path):
    tiny = dataclasses.replace(S.RECIPE, base=8, steps=2, batch_size=8, n_data=40, n_samples=5, sample_chunk=2,
                               sample_steps=12, hal_window=(500, 800))
    net = tiny.model().eval()
    images, hal = S.sample_shapes(tiny.eps_model(net), tiny, progress=False)
    again = S.redraw_chunk(tiny.eps_model(net), tiny, 2, keep_times=[999, 500, 0])
    assert torch.equal(again["images"], images[4:]) and torch.equal(again["hal"], hal[4:])
    assert again["times"][0] > again["times"][1] > again["times"][2] == 0
    assert again["x0_hat"].shape == (3, 1, 1, 64, 64)
    with pytest.raises(ValueError, match=r"index must be a chunk of the bank, an integer in \[0, 2\], got 3"):
        S.redraw_chunk(net, tiny, 3, keep_times=[0])


def test_redraw_chunk_rejects_bad_keep_times():
    net = S.RECIPE.model()
    for bad in ([], [1000], [-1], [2.5]):
        with pytest.raises(ValueError, match="keep_times must be a non-empty list of integer times"):
            S.redraw_chunk(net, S.RECIPE, 0, keep_times=bad)


def test_sampling_in_processes_gives_the_serial_bank():
    tiny = dataclasses.replace(S.RECIPE, base=8, n_samples=5, sample_chunk=2, sample_steps=10, hal_window=(500, 800))
    model = tiny.eps_model(tiny.model()).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the processes below
    try:
        serial = S.sample_shapes(model, tiny, progress=False)
    finally:
        torch.set_num_threads(threads)
    parallel = IBK.sample_in_processes(model, tiny, progress=False, jobs=2)
    assert torch.equal(parallel[0], serial[0]) and torch.equal(parallel[1], serial[1])
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        IBK.sample_in_processes(model, tiny, jobs=0)
