import pytest

from mi_lib.stats import format_rate, wilson_interval


def test_wilson_interval_known_values():
    # Reference values from the closed form (Wilson 1927), e.g. 0 of 100 -> [0, 3.70%].
    lo, hi = wilson_interval(0, 100)
    assert lo == 0.0 and hi == pytest.approx(0.0370, abs=1e-4)
    lo, hi = wilson_interval(50, 100)
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert "5 of 1,000 = 0.500%" in format_rate(5, 1000)


@pytest.mark.parametrize(
    "k, n, match",
    [
        (1, 0, "n must be a positive integer"),
        (5, 4, r"k must be an integer in \[0, n = 4\]"),
        (-1, 4, "k must be an integer"),
    ],
)
def test_bad_rate_input(k, n, match):
    with pytest.raises(ValueError, match=match):
        wilson_interval(k, n)
