"""The settings line every verdict carries (memgen.book.findings.settings_text), and chance levels."""

import pytest

from memgen import verdicts as V
from memgen.book import findings as fd
from memgen.configs import get_profile


def _rows(**over):
    base = get_profile("book").config(**over).to_dict()
    return [{**base, "width": w, "seed": s} for w in (17, 33) for s in (0, 1)]


def test_the_settings_line_names_training_settings_that_differ_from_the_profile():
    line = fd.settings_text(_rows(weight_decay=0.1, optimizer="adam"), "book")
    assert line == "profile book; add mod P = 59; 3000 steps; optimizer adam; weight decay 0.1; M = 17–33; α = 0.8; " \
                   "seeds 0, 1"


def test_the_settings_line_leaves_out_what_matches_the_profile_or_varies_between_records():
    assert "weight decay" not in fd.settings_text(_rows(), "book")
    mixed = _rows(weight_decay=0.1)[:2] + _rows(weight_decay=3.0)[2:]  # a sweep names its values itself
    assert "weight decay" not in fd.settings_text(mixed, "book")
    assert "weight decay" not in fd.settings_text(_rows(weight_decay=0.1), "no such profile")


def test_a_setting_the_caller_names_is_not_named_twice():
    rows = _rows(weight_decay=3.0, activation="quadratic")
    line = fd.settings_text(rows, "book", **{"weight decay": "3"}, activations="quadratic")
    assert line.count("weight decay") == 1 and line.count("quadratic") == 1
    assert "activation quadratic" in fd.settings_text(rows, "book")  # unnamed: taken from the records


def test_chance_for_multiplication_counts_the_pairs_with_a_zero():
    """× puts every pair containing 0 in class 0, a rule no frequency carries and filtration keeps
    in G: its chance level is that of a guess that knows only this, not 1/P."""
    assert fd.chance_level("add", 59) == fd.chance_level("sub", 59) == pytest.approx(1 / 59)
    z = 117 / 59**2
    assert fd.chance_level("mul", 59) == pytest.approx(z + (1 - z) / 59)
    assert fd.chance({"task": "mul", "p": 113}) > 2 / 113
    assert fd.chance({"p": 113}) == pytest.approx(1 / 113)
    # the per-vector G of a × network at 2.7% on 6385 pairs was "above chance 1/113" and is not any more
    v = V.judge_above_chance("per-vector G above chance", [0.027, 0.026, 0.028], 6385, fd.chance_level("mul", 113))
    assert v.verdict == "Not shown" and "chance 0.026" in v.evidence and "1/P" not in v.evidence
    assert "chance 1/P = 0.009" in V.judge_above_chance("c", 0.5, 6385, 1 / 113).evidence


def test_gamma_g_is_defined_only_where_f_g_rises_above_chance_and_a_random_subset():
    """Chapter 6 prints γ_G per seed only where the verdict could use it."""
    fr = [0.1, 0.5, 1.0]
    row = lambda s, g, rnd: {"p": 59, "task": "add", "n_test": 1741, "seed": s, "fractions": fr,  # noqa: E731
                             "strength_G_test": g, "strength_random_test": rnd}
    at_chance = [row(s, [0.02, 0.02, 0.02], [0.02, 0.02, 0.02]) for s in range(3)]
    assert not fd.gamma_g_defined(at_chance)
    like_random = [row(s, [0.5, 0.6, 0.7], [0.5, 0.6, 0.7]) for s in range(3)]
    assert not fd.gamma_g_defined(like_random)
    finds = [row(s, [0.8 + 0.01 * s, 0.9, 0.7], [0.1, 0.3, 0.7]) for s in range(3)]
    assert fd.gamma_g_defined(finds)
    by_ipr = [{**r, "ipr_G_test": [0.02] * 3, "ipr_random_test": [0.02] * 3} for r in finds]
    assert fd.gamma_g_defined(by_ipr) and not fd.gamma_g_defined(by_ipr, "ipr")


def test_a_claim_that_shows_no_rule_is_judged_at_the_lowest_chance_level():
    """× raises the level an accuracy must beat; a claim that the raw output shows *no* rule passes
    at or below chance, so it stays at 1/P: a × network at 0.013 on 6385 pairs (above 1/113) shows
    something, although it is below the × level."""
    from memgen.book import diagnostics as dg
    rows = [{"p": 113, "task": "mul", "n_test": 6385, "seed": s, "test_acc": 0.013} for s in range(3)]
    assert fd.lowest_chance(rows[0]) == pytest.approx(1 / 113) and fd.lowest_chance(rows[0]) < fd.chance(rows[0])
    assert dg._no_rule_in_output(rows).verdict == "Not shown"
    assert dg._no_rule_in_output([{**r, "test_acc": 0.008} for r in rows]).verdict == "Reproduced"


def test_the_diagnostic_figures_draw_the_tasks_chance_line():
    from memgen.book import diagnostics as dg
    rows = [{"noise": a, "seed": 0, "task": t, "hill_mean": 2.0, "test_acc": 0.5} for a in (0.0, 0.8)
            for t in ("mul",)]
    fig = dg.two_panel(rows, "noise", {"hill_mean": "Hill"}, {"test_acc": "test"}, "t", "α", "Hill", 59)
    assert [s.y0 for s in fig.layout.shapes] == [pytest.approx(fd.chance_level("mul", 59))]
    add = dg.two_panel([{**r, "task": "add"} for r in rows], "noise", {"hill_mean": "Hill"}, {"test_acc": "test"},
                       "t", "α", "Hill", 59)
    assert [s.y0 for s in add.layout.shapes] == [pytest.approx(1 / 59)]
