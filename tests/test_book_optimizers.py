"""Chapter 11's findings function: its verdicts at the test profile, and honesty at 95% noise."""

import numpy as np
import pytest

from memgen import optimizers as core_opt
from memgen.book import optimizers as opt
from memgen.configs import ConfigError

KEYS = ["adamw", "adam", "muon", "sgd_slower", "sgd_same_lr_slower"]


def test_test_profile_verdicts_and_data():
    F = opt.optimizers("test")
    assert F.chapter == "11_optimizers"
    assert list(F.verdicts) == KEYS
    # what chapter 11 states at the test profile (the numbers the notebook computed before the move)
    assert {k: v.verdict for k, v in F.verdicts.items()} == {
        "adamw": "Reproduced", "adam": "Reproduced", "muon": "Reproduced",
        "sgd_slower": "Contradicted", "sgd_same_lr_slower": "Reproduced"}
    d = F.data
    assert list(d["opts"]) == list(core_opt.NAMES)
    assert (d["p"], d["steps"], d["n_test"], d["n_noisy"]) == (23, 150, 265, 105)
    for name in core_opt.NAMES:
        assert len(d["runs"][name]) == len(d["t90"][name]) == 3
        assert set(d["values"][name]) == set(opt.METRICS)
    np.testing.assert_allclose(d["t90"]["SGD at AdamW's lr"], [150, 150, 150])
    assert np.all(d["values"]["AdamW"]["noisy_acc"] == 1.0)
    assert len(opt.failures(F)) == len(opt.summary_rows(F)) == len(core_opt.NAMES)


def test_nothing_learned_nothing_reproduced():
    """95% of the labels wrong and three steps: every accuracy at chance, no claim reproduced."""
    F = opt.optimizers("test", noise=0.95, steps=3, width=33)
    assert list(F.verdicts) == KEYS
    wrong = {k: v.evidence for k, v in F.verdicts.items() if v.verdict == "Reproduced"}
    assert wrong == {}


def test_memorizing_without_the_rule_reproduces_no_rule_claim():
    """Full training at 95% noise: every optimizer but the slow SGD memorizes, the rule stays at
    chance, so no optimizer's "memorizes and G beats raw" is reproduced; only the claim about
    memorization speed (SGD at AdamW's lr is slower) can hold."""
    F = opt.optimizers("test", noise=0.95, width=33, seeds=[0, 1])
    assert min(F.data["values"]["AdamW"]["noisy_acc"]) > 0.9
    wrong = {k: v.evidence for k, v in F.verdicts.items()
             if v.verdict == "Reproduced" and k != "sgd_same_lr_slower"}
    assert wrong == {}


@pytest.mark.parametrize("lrs", [{"lion": 0.1}, {"sgd": -1.0}, {"adam": "fast"}])
def test_bad_learning_rates(lrs):
    with pytest.raises(ConfigError, match="lrs="):
        core_opt.optimizer_settings(1e-3, 1.0, lrs)


def test_a_diverged_seed_is_said_once_in_the_failures():
    from memgen.book.findings import Findings

    nan = np.nan
    data = {"opts": {"A": {}, "B": {}}, "steps": 100, "n_test": 1000, "p": 59,
            "t90": {"A": np.array([10.0, nan, 12.0]), "B": np.array([50.0, 60.0, 70.0])},
            "values": {"A": {"G_test_acc": np.array([0.9, nan, 0.95])}, "B": {"G_test_acc": np.array([0.9] * 3)}},
            "diverged": {"A": 1, "B": 0}, "runs": {"A": [None] * 3, "B": [None] * 3}}
    a, b = opt.failures(Findings("11_optimizers", {}, data))
    assert a == "- **A**: 1 of 3 seeds diverged"  # not also "G part not above chance"
    assert b.startswith("- **B**: no failure here") and b.endswith("the slowest of those that memorize")
    data["t90"]["B"] = np.array([5.0, 6.0, 7.0])  # A's two finished seeds still count as memorizing
    assert opt.failures(Findings("11_optimizers", {}, data))[1].endswith("G test 0.900 (3 seeds: 0.900–0.900)")
