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


def test_a_diverged_seed_is_said_once_in_the_failures_and_left_out_of_the_summary():
    from memgen.book.findings import Findings

    nan, names = np.nan, list(core_opt.NAMES)
    ok = {"test_acc": np.array([0.01] * 3), "G_test_acc": np.array([0.9] * 3), "noisy_acc": np.array([1.0] * 3)}
    values = {n: {k: v.copy() for k, v in ok.items()} for n in names}
    for k in values[names[0]]:  # the first optimizer's second seed diverged: NaN everywhere
        values[names[0]][k][1] = nan
    reached = {n: np.array([50.0, 60.0, 70.0]) for n in names}
    reached[names[0]] = np.array([10.0, nan, 12.0])
    reached[names[3]] = np.array([nan, 60.0, 70.0])  # SGD's first seed never memorizes (it did not diverge)
    v, t90 = opt.judge_optimizers(values, reached, p=59, n_test=1000, n_noisy=500, steps=100, settings="s")
    # never reached counts as the run length; a diverged seed is left out of the comparison
    np.testing.assert_array_equal(t90[names[3]], [100, 60, 70])
    np.testing.assert_array_equal(t90[names[0]], [10, nan, 12])
    assert "AdamW steps 11 (2 of 3 seeds: 10–12)" in v["sgd_slower"].evidence
    data = {"opts": {n: {"lr": 1e-3, "weight_decay": 0.1} for n in names}, "steps": 100, "n_test": 1000, "p": 59,
            "t90": t90, "values": values, "diverged": {n: int(n == names[0]) for n in names},
            "runs": {n: [None] * 3 for n in names}}
    F = Findings("11_optimizers", {}, data)
    lines = opt.failures(F)
    assert lines[0] == f"- **{names[0]}**: 1 of 3 seeds diverged"  # not also "never reaches 90%"
    assert lines[1].startswith(f"- **{names[1]}**: no failure here: memorizes in 60 (3 seeds: 50–70) steps")
    row = opt.summary_rows(F)[0]
    assert row["steps to 90%"] == "11 (2 seeds: 10–12)" and row["G test"] == "0.900 (2 seeds: 0.900–0.900)"
    # every seed diverged: said once, and the summary shows no number
    values[names[0]] = {k: np.full(3, nan) for k in ok}
    data["diverged"][names[0]] = 3
    assert opt.failures(F)[0] == f"- **{names[0]}**: 3 of 3 seeds diverged"
    assert opt.summary_rows(F)[0]["steps to 90%"] == opt.summary_rows(F)[0]["G test"] == "–"


def test_the_slowest_is_named_only_beyond_the_range_over_seeds():
    from memgen.book.findings import Findings

    names = list(core_opt.NAMES)[:2]
    ok = {"test_acc": np.array([0.01] * 3), "G_test_acc": np.array([0.9] * 3), "noisy_acc": np.array([1.0] * 3)}

    def slowest(t_second):
        data = {"opts": {n: {"lr": 1e-3, "weight_decay": 0.1} for n in names}, "steps": 100, "n_test": 1000,
                "p": 59, "t90": {names[0]: np.array([10.0, 11.0, 12.0]), names[1]: np.array(t_second)},
                "values": {n: ok for n in names}, "diverged": dict.fromkeys(names, 0),
                "runs": {n: [None] * 3 for n in names}}
        return [n for n, line in zip(names, opt.failures(Findings("11_optimizers", {}, data))) if "slowest" in line]

    assert slowest([50.0, 51.0, 52.0]) == [names[1]]
    assert slowest([12.0, 13.0, 14.0]) == []  # 2 steps apart, each seed range 2: neither is named
