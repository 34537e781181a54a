"""The hidden finding checks at the end of each chapter (memgen.book.checks)."""

import pytest

from memgen.book import checks
from memgen.verdicts import Verdict


def verdict(word):
    return Verdict("a claim", word, "the numbers")


def test_a_tuple_accepts_each_verdict_measured_on_a_build_machine_and_only_those(capsys):
    both = ("Not shown", "Contradicted")
    assert checks.expect_verdict(verdict("Not shown"), "book", book=both)
    assert checks.expect_verdict(verdict("Contradicted"), "book", book=both)
    with pytest.raises(AssertionError, match="expected Not shown or Contradicted but got Reproduced"):
        checks.expect_verdict(verdict("Reproduced"), "book", book=both)
    assert "CHECKED (book): Contradicted: a claim" in capsys.readouterr().out


def test_a_single_word_is_exact_and_other_profiles_are_skipped(capsys):
    with pytest.raises(AssertionError, match="expected Reproduced but got Not shown"):
        checks.expect_verdict(verdict("Not shown"), "book", book="Reproduced")
    assert not checks.expect_verdict(verdict("Not shown"), "test", book="Reproduced")
    assert not checks.expect_verdict(verdict("Not shown"), "non-default parameters", book="Reproduced")
    assert "SKIPPED (no expectation under profile test)" in capsys.readouterr().out


def test_expect_verdicts_counts_checks_and_needs_every_expected_verdict():
    got = {"a": verdict("Reproduced"), "b": verdict("Not shown")}
    expected = {"a": dict(book="Reproduced"), "b": dict(book=("Not shown", "Reproduced")),
                "c": dict(paper="Reproduced")}
    assert checks.expect_verdicts(got, "book", expected) == 2
    with pytest.raises(AssertionError, match="expected a verdict 'c'"):
        checks.expect_verdicts(got, "paper", expected)


def test_an_expectation_must_name_verdict_words():
    with pytest.raises(ValueError, match="book=.*Reproducd.*is not allowed"):
        checks.expect_verdict(verdict("Reproduced"), "book", book=("Reproduced", "Reproducd"))


def test_finding_checks_raise_even_when_python_drops_asserts():
    """The hidden checks raise AssertionError explicitly, so `python -O` does not turn them off."""
    import subprocess
    import sys

    code = ("from memgen.book import checks\n"
            "from memgen.verdicts import Verdict\n"
            "try:\n"
            "    checks.expect_verdict(Verdict('c', 'Not shown', 'e'), 'book', book='Reproduced')\n"
            "except AssertionError:\n"
            "    print('raised')\n")
    r = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "raised", r.stderr
