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


def test_progress_bar_follows_tqdm_disable(monkeypatch):
    from mi_lib.runtime import progress_bar

    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_bar(range(3), desc="x").disable
    monkeypatch.delenv("TQDM_DISABLE")
    assert not progress_bar(range(3), desc="x", progress=True, file=open("/dev/null", "w")).disable
    assert progress_bar(range(3), desc="x", progress=False).disable
