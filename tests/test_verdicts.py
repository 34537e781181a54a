import math

import pytest

from memgen import verdicts as V


def test_wilson_interval_known_values():
    lo, hi = V.wilson_interval(50, 100)
    assert math.isclose(lo, 0.4038, abs_tol=1e-3) and math.isclose(hi, 0.5962, abs_tol=1e-3)
    assert V.wilson_interval(0, 10)[0] == 0.0 and math.isclose(V.wilson_interval(10, 10)[1], 1.0)
    with pytest.raises(ValueError, match="n=0"):
        V.wilson_interval(0, 0)


@pytest.mark.parametrize("acc,n,expected", [
    (0.011, 1741, "Not shown"), (0.020, 1741, "Not shown"), (0.733, 1741, "Reproduced"), (0.05, 50, "Not shown"),
    (float("nan"), 100, "Not shown"),
])
def test_chance_level_accuracies_never_reproduce(acc, n, expected):
    assert V.judge_above_chance("claim", acc, n, 1 / 59).verdict == expected


def test_compare_needs_a_difference_beyond_the_seed_spread():
    assert V.compare("c", [0.5, 0.6, 0.55], [0.1, 0.12, 0.2]).verdict == "Reproduced"
    assert V.compare("c", [0.5, 0.6, 0.3], [0.4, 0.42, 0.45]).verdict == "Not shown"
    assert V.compare("c", [0.1, 0.12], [0.5, 0.52]).verdict == "Contradicted"
    # two numbers at chance never reproduce a claim, however they are ordered
    v = V.compare("c", 0.016, 0.011, floor=(0.016, 1741, 1 / 59))
    assert v.verdict == "Not shown"


def test_combine_and_validation():
    r = V.Verdict("a", "Reproduced", "")
    n = V.Verdict("b", "Not shown", "")
    c = V.Verdict("c", "Contradicted", "")
    assert V.combine("x", [r, r]).verdict == "Reproduced"
    assert V.combine("x", [r, n]).verdict == "Not shown"
    assert V.combine("x", [r, n, c]).verdict == "Contradicted"
    with pytest.raises(ValueError, match="verdict='Maybe'"):
        V.Verdict("x", "Maybe", "")
