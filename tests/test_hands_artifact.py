"""The hands U-Nets' recipes, build and loader (mi_lib.artifacts.hands), at tiny sizes."""

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from mi_lib.artifacts import __main__ as cli
from mi_lib.artifacts import hands as H
from mi_lib.artifacts import image_banks as IBK
from mi_lib.artifacts import image_build as IB
from mi_lib.artifacts.manifest import sha256
from mi_lib.artifacts.shapes import to_uint8
from mi_lib.fingers import count_fingers

TINY = dataclasses.replace(H.RECIPES["hands_gapped"], base=8, steps=4, batch_size=8, n_data=24, n_samples=3,
                           sample_chunk=2, sample_steps=12)


def test_recipes_and_the_paper_recipe():
    assert set(H.RECIPES) == set(H.NAMES) == {"hands_gapped", "hands_continuous"}
    for name, rec in H.RECIPES.items():
        assert rec.name == name and rec.n_data == 5_000 and rec.size == 64 and rec.T == 1_000
        assert rec.sample_steps == 250 and rec.prediction == "v" and len(rec.hal_windows) >= 4
        assert len(rec.windows()) == len(rec.hal_windows)
    paper = H.paper_recipe("continuous")
    assert (paper.size, paper.batch_size, paper.lr, paper.sample_steps, paper.steps) == (128, 16, 1e-4, 500, 200_000)
    assert paper.poses == "continuous"
    assert H.recipe_from_dict(json.loads(json.dumps(dataclasses.asdict(paper)))) == paper


@pytest.mark.parametrize("change, match", [
    ({"poses": "wavy"}, "poses"), ({"size": 40}, "size"), ({"base": 0}, "base"), ({"mults": ()}, "mults"),
    ({"sample_steps": 2_000}, "sample_steps"), ({"lr": 0.0}, "lr"), ({"ema_decay": 1.0}, "ema_decay"),
    ({"prediction": "x0"}, "prediction"), ({"variance": "learned"}, "variance"), ({"clip_x0": -1.0}, "clip_x0"),
    ({"hal_windows": ()}, "hal_windows"), ({"hal_windows": ((850, 700),)}, "hal_windows"),
    ({"hal_windows": ((0, 1_000),)}, "hal_windows"), ({"seed": -1}, "seed"), ({"n_samples": 0}, "n_samples"),
])
def test_recipe_checks_its_fields(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **change)


def test_unknown_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="name"):
        H.recipe("hands_wavy")
    with pytest.raises(ValueError, match="name"):
        H.load_hands("hands", tmp_path)
    with pytest.raises(ValueError, match="rec must be a recipe of 'hands_continuous'"):
        _build(tmp_path, tmp_path / "work", TINY, "hands_continuous")


def _build(out, work, rec, name="hands_gapped"):
    return IB.build_image(name, out, work, rec, snapshots=(2,), save_every=2, progress=False)


def test_resumed_training_gives_the_losses_of_an_uninterrupted_run(tmp_path):
    straight = [s.loss for s in H.train_hands(TINY, TINY.model(), copy.deepcopy(TINY.model()), progress=False)]
    model, ema, ckpt = TINY.model(), copy.deepcopy(TINY.model()), tmp_path / "train.pt"
    first = [s.loss for s in H.train_hands(TINY, model, ema, steps=2, checkpoint=ckpt, progress=False)]
    model, ema = TINY.model(), copy.deepcopy(TINY.model())  # a fresh process: only the checkpoint is left
    rest = [s.loss for s in H.train_hands(TINY, model, ema, checkpoint=ckpt, progress=False)]
    assert len(first) == 2 and len(rest) == 2
    assert first + rest == straight


def test_build_writes_a_verified_artifact_that_loads_back(tmp_path, monkeypatch):
    work = tmp_path / "work"
    manifest = _build(tmp_path, work, TINY)
    files = ["hands_gapped.json", "hands_gapped.pt", "hands_gapped_bank.npz"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == files
    for fname, entry in manifest["files"].items():
        assert entry["sha256"] == sha256(tmp_path / fname)
    assert manifest["command"].startswith("python -m mi_lib.artifacts build hands_gapped --set n_data=24 --set base=8 ")
    with np.load(tmp_path / "hands_gapped_bank.npz") as bank:
        assert bank["images"].dtype == np.uint8 and bank["images"].shape == (3, 1, 64, 64)
        assert set(np.unique(bank["images"])) <= set(H.quantize(np.arange(256, dtype=np.uint8)))
        assert len(set(H.quantize(np.arange(256, dtype=np.uint8)))) == H.BANK_LEVELS
        assert bank["hal"].shape == (len(TINY.hal_windows), 3)
        assert bank["hal_windows"].tolist() == [list(w) for w in TINY.hal_windows]
    art = H.load_hands("hands_gapped", tmp_path)
    assert art["recipe"] == TINY and len(art["losses"]) == TINY.steps
    assert art["images"].shape == (3, 1, 64, 64) and bool((art["hal"] >= 0).all())
    assert art["fingers"].tolist() == count_fingers(art["images"]).tolist()
    metrics = manifest["metrics"]["fingers"]
    assert metrics["n"] == 3 and sum(metrics["counts"][k] for k in ("five", "six", "four", "other",
                                                                    "unreadable")) == 3
    assert manifest["metrics"]["first_losses"] == art["losses"][:4].tolist()
    with torch.no_grad():
        assert torch.isfinite(art["model"](art["images"][:2], torch.tensor(10))).all()
    # The weights are stored in float16, and the bank was drawn from those rounded weights: the
    # loaded model redraws it exactly.
    state = torch.load(tmp_path / "hands_gapped.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state["model"].values() if v.is_floating_point())
    assert manifest["built_with"]["weights"] == "float16"
    again = H.redraw_chunk(art["model"], art["recipe"], 1, keep_times=[0])
    assert np.array_equal(H.quantize(to_uint8(again["images"])), to_uint8(art["images"][2:]))
    assert torch.allclose(again["hal"].float(), art["hal"][:, 2:], rtol=1e-5)
    # Built again: the finished checkpoint and the cached bank are reused, nothing is sampled.
    monkeypatch.setattr(IBK, "sample_in_processes", lambda *a, **k: pytest.fail("sampled again"))
    again = _build(tmp_path, work, TINY)
    assert again["files"] == manifest["files"]
    (tmp_path / "hands_gapped_bank.npz").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        H.load_hands("hands_gapped", tmp_path)


def test_build_resumes_a_shorter_run_and_refuses_another_recipes(tmp_path):
    work = tmp_path / "work"
    short = _build(tmp_path, work, dataclasses.replace(TINY, steps=2, n_samples=1))
    longer = _build(tmp_path, work, dataclasses.replace(TINY, steps=4, n_samples=1))
    assert longer["metrics"]["first_losses"][:2] == short["metrics"]["first_losses"]
    with pytest.raises(ValueError, match=r"another recipe.*\['lr'\]"):
        _build(tmp_path, work, dataclasses.replace(TINY, lr=1e-3))


def test_bank_sampled_by_two_processes_is_the_one_of_one(tmp_path):
    rec = dataclasses.replace(TINY, n_samples=5)
    model = rec.eps_model(rec.model()).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the processes below
    try:
        one = H.sample_hands(model, rec, progress=False)
    finally:
        torch.set_num_threads(threads)
    two = IBK.sample_in_processes(model, rec, jobs=2, progress=False, sample=H.sample_hands)
    assert two[1].shape == (len(rec.hal_windows), 5)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])


def test_hands_model_refuses_unknown_names_and_scales():
    with pytest.raises(ValueError, match="scale"):
        H.hands_model("hands_gapped", "huge")
    with pytest.raises(ValueError, match="name"):
        H.hands_model("hands")


def test_finger_metrics_counts_each_class():
    m = H.finger_metrics(np.array([5, 5, 6, 4, 3, -1, 7, 5]))
    assert m["counts"] == {"five": 3, "six": 1, "four": 1, "unreadable": 1, "other": 2, "not_five": 5}
    assert m["rates"]["not_five"] == pytest.approx(5 / 8)


def test_command_line_builds_into_out_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(H.RECIPES, "hands_gapped", dataclasses.replace(TINY, steps=1, n_samples=1))
    cli.main(["build", "hands_gapped", "--out-dir", str(tmp_path / "out"), "--work-dir", str(tmp_path / "w")])
    assert (tmp_path / "out" / "hands_gapped.json").is_file()
    assert '"name": "hands_gapped"' in capsys.readouterr().out


def test_redraw_chunk_gives_back_that_chunk_of_the_bank():
    rec = dataclasses.replace(TINY, n_samples=5)
    net = rec.model().eval()
    images, hal = H.sample_hands(rec.eps_model(net), rec, progress=False)
    again = H.redraw_chunk(rec.eps_model(net), rec, 1, keep_times=[999, 700, 0])
    assert torch.equal(again["images"], images[2:4]) and torch.equal(again["hal"], hal[:, 2:4])
    assert again["times"][0] > again["times"][1] > again["times"][2] == 0
    assert again["x0_hat"].shape == (3, 2, 1, 64, 64)
    with pytest.raises(ValueError, match=r"index must be a chunk of the bank, an integer in \[0, 2\], got 3"):
        H.redraw_chunk(net, rec, 3, keep_times=[0])


def test_quantize_keeps_the_ends_and_checks_levels():
    levels = H.quantize(np.arange(256, dtype=np.uint8), 5)
    assert sorted(set(levels.tolist())) == [0, 64, 128, 191, 255] and levels[0] == 0 and levels[-1] == 255
    assert np.array_equal(H.quantize(np.arange(256, dtype=np.uint8), 256), np.arange(256))
    for bad in (1, 257, 2.5):
        with pytest.raises(ValueError, match="levels"):
            H.quantize(np.zeros(3, dtype=np.uint8), bad)


@pytest.mark.parametrize("name", H.NAMES)
def test_shipped_artifact_verifies_and_is_what_its_recipe_makes(name):
    art = H.load_hands(name)  # checks every file's sha256 against the manifest
    manifest, rec = art["manifest"], art["recipe"]
    assert rec == H.recipe(name) and len(art["images"]) == rec.n_samples >= 2_000
    assert len(art["losses"]) == rec.steps and art["hal"].shape == (len(rec.hal_windows), rec.n_samples)
    assert art["fingers"].tolist() == count_fingers(art["images"]).tolist()
    assert manifest["metrics"]["fingers"]["counts"]["five"] == int((art["fingers"] == 5).sum())
    # The start of the build command gives the recorded losses.
    model, ema = rec.model(), copy.deepcopy(rec.model())
    again = [s.loss for s in H.train_hands(rec, model, ema, steps=3, progress=False)]
    assert again == pytest.approx(manifest["metrics"]["first_losses"][:3], rel=1e-4)


def test_shipped_hands_artifacts_fit_in_ten_megabytes():
    files = [H.ARTIFACT_DIR / f for name in H.NAMES for f in (f"{name}.pt", f"{name}_bank.npz", f"{name}.json")]
    assert sum(f.stat().st_size for f in files) <= 10_000_000
