import math

import numpy as np

from memgen import experiments as E
from memgen.baselines import analytic_weights
from memgen.book import tables as T
from memgen.fourier import concentration


def test_noise_mode_table_counts():
    rows = T.noise_mode_table(E.setup("test", noise=0.4))
    by = {r["mode"]: r for r in rows}
    assert set(by) == {"wrong", "any", "symmetric"}
    assert by["wrong"]["accidentally correct"] == 0 and by["symmetric"]["(a,b),(b,a) agree"] == 1.0
    assert len({r["corrupted"] for r in rows}) == 1


def test_grid_table_and_helpers():
    st = E.setup("test", widths=[9, 33], noises=[0.0, 0.4], steps=60)
    rows = E.table(st.grid())
    assert [(r["width"], r["noise"]) for r in rows] == [(9, 0.0), (9, 0.4), (33, 0.0), (33, 0.4)]
    assert {"G_test_acc", "R_noisy_acc", "phase_error", "test_acc"} <= set(rows[0])
    assert E.column(rows, "width", noise=0.4).tolist() == [9, 33]
    runs = E.sweep(st.grid(noises=[0.4]))
    order = T.memorization_order(runs)
    assert [o["width"] for o in order] == [9, 33]
    for o in order:
        assert o["noisy_first"] in (None, True, False)
    assert math.isfinite(T.early_gradient_gap(runs[1]))
    assert T.first_step_reaching(runs[1], "train_acc", 2.0) != T.first_step_reaching(runs[1], "train_acc", 2.0)  # NaN
    variants = T.ff_variants_table(runs[1])
    assert len(variants) == 6 and all(0 <= v["G test"] <= 1 for v in variants)


def test_concentration_of_cosines_is_one():
    assert np.allclose(concentration(analytic_weights("add", 23, 8), "add"), 1.0)


def test_empty_grid_is_an_error_not_the_default():
    import pytest

    from memgen.configs import ConfigError

    st = E.setup("test")
    for name in ("widths", "noises", "seeds"):
        with pytest.raises(ConfigError, match=f"{name}=\\[\\] is not allowed"):
            st.grid(**{name: []})
    assert len(st.grid(widths=[9], noises=[0.0], seeds=[0])) == 1
