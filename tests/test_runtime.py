import pytest

from mi_lib import by_scale, get_scale


def test_scale_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("MI_SCALE", raising=False)
    assert get_scale() == "quick"
    monkeypatch.setenv("MI_SCALE", "paper")
    assert get_scale() == "paper" and by_scale(get_scale(), quick=1, paper=2) == 2
    monkeypatch.setenv("MI_SCALE", "huge")
    with pytest.raises(ValueError, match=r"scale must be one of \('quick', 'paper'\), got 'huge'"):
        get_scale()
    with pytest.raises(ValueError, match="scale must be one of"):
        by_scale("fast", quick=1, paper=2)


def test_progress_bar_follows_tqdm_disable():
    # tqdm reads TQDM_* when it is imported, so each case runs in a fresh interpreter.
    import subprocess
    import sys

    code = "from mi_lib.runtime import progress_bar as b; print(b(range(3), desc='x', progress={}).disable)"
    for env, progress, disabled in [({"TQDM_DISABLE": "1"}, True, "True"), ({}, True, "False"), ({}, False, "True")]:
        out = subprocess.run([sys.executable, "-c", code.format(progress)], capture_output=True, text=True,
                             env={**env, "PATH": "/usr/bin"}, check=True).stdout
        assert out.strip() == disabled, (env, progress, out)
