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


@pytest.mark.parametrize("env,progress,disabled", [("1", True, True), ("true", True, True), ("", True, False),
                                                    (None, True, False), (None, False, True)])
def test_progress_bar_follows_tqdm_disable(monkeypatch, env, progress, disabled):
    import io

    from tqdm.notebook import tqdm_notebook

    from mi_lib.runtime import progress_bar

    if env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", env)
    assert progress_bar(range(3), desc="x", progress=progress, file=io.StringIO()).disable is disabled
    # The notebook bar (what tqdm.auto picks in Jupyter) sets disable itself, ignoring TQDM_DISABLE:
    # the reason progress_bar reads the variable.
    monkeypatch.setattr("tqdm.auto.tqdm", tqdm_notebook)
    if disabled:
        assert progress_bar(range(3), desc="x", progress=progress).disable
