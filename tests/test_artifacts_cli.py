"""python -m mi_lib.artifacts for a newcomer: one clear line for each mistake, builds that say
where they wrote and never replace what ships unasked, and `verify`."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mi_lib.artifacts import __main__ as cli
from mi_lib.artifacts.build import KINDS
from mi_lib.artifacts.manifest import ARTIFACT_DIR, REGISTRY, load_manifest, record_manifest
from mi_lib.artifacts.verify import problems, verify_all

ROOT = Path(__file__).resolve().parents[1]


def error_of(capsys, *argv: str) -> str:
    """The command's error for `argv`: it must exit with status 2 and print one line."""
    with pytest.raises(SystemExit) as stop:
        cli.main(list(argv))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("argv, says", [
    (["build", "toy"], "'toy' is a kind of artifact, not an artifact; the group 'toys' builds all 7 of them"),
    (["build", "budget"], "'budget' is a kind of artifact, not an artifact; its artifacts: budget_1d_three"),
    (["build", "1d_thre"], "no artifact or group is called '1d_thre' (did you mean '1d_three'"),
    (["build", "1d_three", "--jobs", "0"], "jobs must be a positive integer"),
    (["build", "1d_three", "--device", "tpu"], "device must be"),
    (["build", "1d_three"], "1d_three ship(s) in"),
    (["build", "--all"], "pass --out-dir DIR to build a copy elsewhere, or --replace"),
    (["verify", "toy"], "'toy' is a kind of artifact"),
    (["verify", "--record"], "--record needs the NAMEs"),
    (["build", "1d_three", "--minutes", "5", "--out-dir", "/x"], "--minutes and --set apply to the image models only"),
    (["build", "shapes", "--set", "foo=1", "--out-dir", "/x"], "fields must be fields of ShapesRecipe"),
    (["build", "hands_gapped", "--set", "steps=0", "--out-dir", "/x"], "steps must be a positive integer, got 0"),
    (["build", "shapes", "--set", "steps", "--out-dir", "/x"], "--set takes FIELD=VALUE, got 'steps'"),
])
def test_each_mistake_is_one_clear_line(capsys, argv, says):
    assert says in error_of(capsys, *argv)


def test_a_device_that_is_not_there_is_one_line_too(capsys):
    device = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"
    err = error_of(capsys, "build", "1d_three", "--out-dir", "/nonexistent", "--device", device)
    assert "cannot be used here" in err or "does not exist" in err
    cmd = subprocess.run([sys.executable, "-m", "mi_lib.artifacts", "build", "toy"], cwd=ROOT, capture_output=True,
                         text=True)  # and from the shell: no traceback
    assert cmd.returncode == 2 and cmd.stderr.count("\n") == 1 and "Traceback" not in cmd.stderr


def test_build_says_where_it_wrote_and_records_only_what_ships(monkeypatch, capsys, tmp_path):
    fakes = {kind: KINDS[kind]._replace(build=lambda name, out_dir, **kw: {"built_with": {"seconds": 0}})
             for kind in KINDS}
    monkeypatch.setattr(cli, "KINDS", fakes)
    recorded = []
    monkeypatch.setattr(cli, "record_manifest", recorded.append)
    cli.main(["build", "1d_three", "--out-dir", str(tmp_path)])
    assert f"wrote 1d_three: {tmp_path / '1d_three.json'} and its files\n" in capsys.readouterr().out
    assert recorded == []
    cli.main(["build", "1d_three", "--replace"])  # into mi_lib/artifacts, asked for
    assert recorded == ["1d_three"] and f"(recorded in {ARTIFACT_DIR / REGISTRY})" in capsys.readouterr().out


def test_list_names_the_groups(capsys):
    cli.main(["list"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("toy 1d_three ") and "toys (toy)" in out.splitlines()[-1]


def test_every_shipped_artifact_verifies(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["verify"])
    lines = capsys.readouterr().out.splitlines()
    shipped = sorted(p.stem for p in ARTIFACT_DIR.glob("*.json"))
    assert stop.value.code == 0 and sorted(line.removeprefix("ok ") for line in lines) == shipped


@pytest.fixture
def copy_of_1d_three(tmp_path):
    for name in ("1d_three.json", "1d_three.pt"):
        shutil.copy(ARTIFACT_DIR / name, tmp_path / name)
    record_manifest("1d_three", tmp_path)
    assert problems("1d_three", tmp_path, "toy") == []
    return tmp_path


def edit_metric(folder: Path, key: str, value: object) -> None:
    manifest = load_manifest("1d_three", folder)
    manifest["metrics"][key] = value
    (folder / "1d_three.json").write_text(json.dumps(manifest, indent=2) + "\n")


def test_verify_finds_an_edited_metric_even_when_the_record_is_updated_too(copy_of_1d_three):
    folder = copy_of_1d_three
    edit_metric(folder, "hallucinated", 28)
    assert problems("1d_three", folder, "toy") == [f"1d_three.json was changed after its build: its sha256 differs "
                                                   f"from {REGISTRY}'s"]
    record_manifest("1d_three", folder)  # the edit recorded as if built: the stored bank still says otherwise
    assert problems("1d_three", folder, "toy") == [
        "its metrics hallucinated differ from those recomputed from 1d_three.pt"]


def test_verify_finds_changed_files_and_broken_manifests(copy_of_1d_three):
    folder = copy_of_1d_three
    data = bytearray((folder / "1d_three.pt").read_bytes())
    data[-100] ^= 1
    (folder / "1d_three.pt").write_bytes(bytes(data))
    assert problems("1d_three", folder, "toy") == ["1d_three.pt does not match the sha256 in 1d_three.json"]
    (folder / "1d_three.json").write_text('{"name": "1d_three",\n "metrics": {,}}')
    (found,) = problems("1d_three", folder, "toy")
    assert found.startswith(f"the manifest {folder / '1d_three.json'} is not valid JSON (Expecting property name")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_manifest("1d_three", folder)
    (folder / "1d_three.json").unlink()
    assert verify_all(["1d_three"], {"1d_three": "toy"}, folder)["1d_three"][0].startswith("name must be a built")
