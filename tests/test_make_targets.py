"""The Makefile's convenience targets resolve: `make lab` and `make colab-check` (dry runs)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(target: str, tmp_path: Path) -> str:
    # A venv that does not exist yet: the dry run shows the whole route, `make setup` included.
    done = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return done.stdout


def test_lab_sets_up_installs_jupyterlab_when_missing_and_opens_the_chapters(tmp_path):
    out = _dry_run("lab", tmp_path)
    assert "pip install --quiet -r requirements.txt" in out
    assert 'import jupyterlab" 2>/dev/null || ' in out and "jupyterlab>=4" in out
    assert "-m jupyterlab book/" in out


def test_colab_check_runs_the_slow_colab_test(tmp_path):
    out = _dry_run("colab-check", tmp_path)
    assert "-m pytest -m slow" in out and "tests/test_colab_install.py" in out
