"""The Simple Shapes bank's Hal over several windows (mi_lib.artifacts.shapes_windows)."""

import dataclasses

import pytest
import torch

from mi_lib.artifacts import shapes as S
from mi_lib.artifacts import shapes_windows as SW
from mi_lib.artifacts.build import KINDS, kind_of
from mi_lib.artifacts.manifest import ARTIFACT_DIR


@pytest.fixture
def small_bank(monkeypatch):
    """The shipped shapes model with a bank of its first 40 images, sampled in parts of 20."""
    real = S.load_shapes

    def first_40(art_dir=None, verify=True):
        s = real(art_dir, verify)
        return {**s, "recipe": dataclasses.replace(s["recipe"], n_samples=40), "images": s["images"][:40],
                "hal": s["hal"][:40]}

    monkeypatch.setattr(SW, "load_shapes", first_40)
    monkeypatch.setattr(SW, "PART", 20)
    return first_40()


def test_redrawn_bank_reads_as_the_shipped_one_with_the_papers_window_inside(small_bank, tmp_path, monkeypatch):
    manifest = SW.build_shapes_windows(tmp_path / "out", tmp_path / "work", progress=False)
    art = SW.load_shapes_windows(tmp_path / "out")
    assert art["hal"].shape == (len(SW.WINDOWS), 40) and art["windows"] == list(SW.WINDOWS)
    paper = art["windows"].index(small_bank["recipe"].hal_window)
    assert torch.allclose(art["hal"][paper], small_bank["hal"].float(), rtol=1e-4)
    assert manifest["metrics"]["largest_move_grey_levels"] <= 2
    # Built again: the parts are kept, nothing is sampled.
    monkeypatch.setattr("mi_lib.artifacts.image_banks.sample_in_processes",
                        lambda *a, **k: pytest.fail("sampled again"))
    assert SW.build_shapes_windows(tmp_path / "out", tmp_path / "work", progress=False)["files"] == manifest["files"]


def test_a_bank_that_reads_differently_is_refused(small_bank, tmp_path, monkeypatch):
    real = SW.load_shapes

    def other_images(art_dir=None, verify=True):
        s = real(art_dir, verify)
        return {**s, "images": -torch.ones_like(s["images"])}  # blank images: no shape to read

    monkeypatch.setattr(SW, "load_shapes", other_images)
    with pytest.raises(ValueError, match="read differently from the shipped bank"):
        SW.build_shapes_windows(tmp_path / "out", tmp_path / "work", progress=False)


def test_is_a_kind_of_artifact():
    assert kind_of(SW.NAME) == "shapes_windows"
    assert KINDS["shapes_windows"].names == (SW.NAME,)


@pytest.mark.skipif(not (ARTIFACT_DIR / f"{SW.NAME}.json").is_file(), reason="not built yet")
def test_shipped_windows_belong_to_the_shipped_bank():
    art, shapes = SW.load_shapes_windows(), S.load_shapes()
    assert art["hal"].shape == (len(SW.WINDOWS), shapes["recipe"].n_samples)
    assert art["manifest"]["recipe"]["bank_weights_sha256"] == shapes["manifest"]["files"]["shapes.pt"]["sha256"]
    paper = art["windows"].index(shapes["recipe"].hal_window)
    assert torch.allclose(art["hal"][paper], shapes["hal"].float(), rtol=1e-4)
