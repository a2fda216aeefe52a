"""The GPU job (benchmarks/gpu_job.py) end to end on the CPU at toy sizes, and the time box of the
image build it relies on: every part runs, each model ends in a loadable artifact, packed."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from mi_lib.artifacts.hands import load_hands
from mi_lib.artifacts.image_banks import image_model
from mi_lib.artifacts.image_build import build_image, with_fields
from mi_lib.artifacts.shapes import load_shapes

ROOT = Path(__file__).resolve().parents[1]
TINY = with_fields(image_model("shapes").recipe, {"steps": 8, "n_samples": 4, "sample_chunk": 2, "sample_steps": 10,
                                                  "n_data": 32, "base": 8, "batch_size": 4})


def test_the_gpu_job_runs_end_to_end_on_a_cpu(tmp_path):
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "benchmarks/gpu_job.py", str(out), "--tiny", "--device", "cpu",
                          "--minutes", "4"], cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"seconds", "bench", "tests", "shapes", "hands_gapped", "hands_continuous"}
    assert "speed-up" in summary["bench"] and summary["tests"].startswith("rc 0")
    for name in ("shapes", "hands_gapped", "hands_continuous"):
        assert summary[name].startswith("rc 0") and f"{name}.tar" in summary[name], summary[name]
        with tarfile.open(out / f"{name}.tar") as tar:
            tar.extractall(tmp_path / name, filter="data")
        loaded = load_shapes(tmp_path / name) if name == "shapes" else load_hands(name, tmp_path / name)
        assert loaded["recipe"].steps >= 2 and torch.isfinite(loaded["hal"]).all()
    assert "===== bench =====" in (out / "job.log").read_text()


def test_a_time_boxed_build_stops_at_a_checkpoint_and_resumes(tmp_path):
    """A budget (4 ms) that has run out by the first checkpoint: the build stops there, with its
    bank, and the artifact records the steps it reached and why it stopped; run again without a
    time box, it resumes and reaches the recipe's steps, reusing the bank already drawn."""
    short = build_image("shapes", tmp_path / "out", tmp_path / "work", TINY, minutes=1e-4 / 1.5, snapshots=(2, 4),
                        save_every=2, progress=False)
    assert short["budget"]["stopped_by"].startswith("time box") and short["budget"]["steps"] == 2
    assert [s["step"] for s in short["metrics"]["snapshots"]] == [2]
    assert load_shapes(tmp_path / "out")["recipe"].steps == 2
    full = build_image("shapes", tmp_path / "out", tmp_path / "work", TINY, snapshots=(2, 4), save_every=2,
                       progress=False)
    assert full["budget"]["steps"] == 8 and full["budget"]["stopped_by"] == "steps"
    assert [s["step"] for s in full["metrics"]["snapshots"]] == [2, 4, 8]
    first = {k: v for k, v in short["metrics"]["snapshots"][0].items() if k != "loss_mean_last_250"}
    again = {k: v for k, v in full["metrics"]["snapshots"][0].items() if k in first}
    assert json.dumps(again) == json.dumps(first)  # the bank reused (NaN AUROCs of a bank without labels)
    assert len(torch.load(tmp_path / "out" / "shapes.pt", weights_only=True)["losses"]) == 8


@pytest.mark.parametrize("bad, message", [
    ({"minutes": 0}, "minutes must be positive"), ({"snapshots": (3,)}, "snapshots must be positive multiples"),
    ({"autocast": "half"}, "autocast must be one of"), ({"jobs": 0}, "jobs must be a positive integer"),
    ({"rec": image_model("hands_gapped").recipe}, "rec must be a recipe of 'shapes'")])
def test_bad_build_arguments_fail_before_any_work(tmp_path, bad, message):
    args = {"rec": TINY, "snapshots": (2,), "save_every": 2, "progress": False, **bad}
    with pytest.raises(ValueError, match=message):
        build_image("shapes", tmp_path / "out", tmp_path / "work", **args)
    assert not (tmp_path / "work").exists()
