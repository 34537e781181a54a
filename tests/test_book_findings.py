"""The settings line every verdict carries (memgen.book.findings.settings_text)."""

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
