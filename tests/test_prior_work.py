"""memgen.book.prior_work: chapters 12 (Doshi et al.'s phases) and 13 (Nanda et al.'s progress
measures) at the test profile, and their honesty where nothing can be learned."""

import os

import numpy as np
import pytest

from memgen import progress as pg
from memgen import train
from memgen.book import prior_work as pw
from memgen.configs import ConfigError, RunConfig
from memgen.tasks import make_dataset
from memgen.verdicts import REPRODUCED, VERDICTS, fmt_seeds


@pytest.fixture(scope="module")
def module_store(tmp_path_factory):
    """One store for the module, so the findings below train once."""
    old = os.environ.get("MEMGEN_STORE")
    path = str(tmp_path_factory.mktemp("store"))
    os.environ["MEMGEN_STORE"] = path
    yield path
    if old is None:
        os.environ.pop("MEMGEN_STORE", None)
    else:
        os.environ["MEMGEN_STORE"] = old


@pytest.fixture(scope="module")
def phases(module_store):
    return pw.grokking_phases("test")


@pytest.fixture(scope="module")
def measures(module_store):
    return pw.progress_measures("test")


def test_phases_findings(phases):
    assert phases.chapter == "12_grokking_phases"
    assert set(phases.verdicts) == {"phases", "coexistence", "inversion", "ipr_pruning"}
    assert all(v.verdict in VERDICTS for v in phases)
    sizes = pw.PHASE_SIZES["test"]
    grid = phases.data["grid"]
    assert len(grid) == len(sizes["weight_decays"]) * len(sizes["noises"])
    assert {r["phase"] for r in grid} <= set(pw.PHASES) | {"generalization (α = 0)", "unclassified", "intermediate"}
    assert len(phases.data["prune"]) == 3 and len(phases.data["prune_rows"]) == 3
    c = phases.data["prune"][0]
    assert len(c["ipr_test"]) == len(c["fractions"]) == len(pw.PRUNE_FRACTIONS)
    # the full network (fraction 1) is the unpruned one
    assert c["ipr_test"][0] == pytest.approx(phases.data["prune_rows"][0]["test_acc"])
    assert phases.setup.base.activation == "quadratic" and phases.setup.base.loss == "mse"
    assert phases.setup.base.noise_mode == "any"


def test_phase_rule():
    base = dict(p=31, n_test=480, n_changed=100, n_clean=380, train_acc=1.0, clean_acc=1.0)
    assert pw.phase_of({**base, "test_acc": 0.95, "mem_acc": 0.95, "inv_acc": 0.0})[0] == "coexistence"
    assert pw.phase_of({**base, "test_acc": 0.95, "mem_acc": 0.0, "inv_acc": 0.97})[0] == "full inversion"
    assert pw.phase_of({**base, "test_acc": 0.95, "mem_acc": 0.5, "inv_acc": 0.5})[0] == "partial inversion"
    name, note = pw.phase_of({**base, "test_acc": 0.03, "mem_acc": 1.0, "inv_acc": 0.0})
    assert name == "memorization" and "test" in note and "at chance" in note
    name, note = pw.phase_of({**base, "test_acc": 0.03, "train_acc": 0.04, "clean_acc": 0.03, "mem_acc": 0.03,
                              "inv_acc": 0.03})
    assert name == "forgetting" and "clean" in note
    assert pw.phase_of({**base, "n_changed": 0, "test_acc": 1.0, "mem_acc": np.nan, "inv_acc": np.nan})[0] \
        == "generalization (α = 0)"


def test_corrupted_dataset_counts_only_changed_labels():
    d = make_dataset(RunConfig(p=13, noise=0.5, noise_mode="any", seed=3))
    c = pw.corrupted_dataset(d)
    assert (c.noisy <= d.noisy).all()
    assert (c.train_labels[c.noisy] != c.train_true[c.noisy]).all()
    assert (c.train_labels[~c.noisy] == c.train_true[~c.noisy]).all()


def test_progress_findings(measures):
    assert measures.chapter == "13_progress_measures"
    assert set(measures.verdicts) == {"rule_before_test", "excluded_rises", "sparser", "noisy_rule",
                                      "rule_after_memorization"}
    assert all(v.verdict in VERDICTS for v in measures)
    clean, noisy = measures.data["clean"], measures.data["noisy"]
    assert len(clean) == len(noisy) == 3
    steps = clean[0]["steps"]
    assert steps[0] == 0 and steps[-1] == measures.setup.base.steps and len(steps) <= pw.MAX_SNAPSHOTS + 2
    for rec in clean + noisy:
        assert all(len(rec[k]) == len(steps) for k in ("restricted_loss", "excluded_loss", "gini_embed"))
    assert clean[0]["config"]["noise"] == 0 and noisy[0]["config"]["noise"] == pytest.approx(0.3)


def test_snapshots_match_the_stored_runs_and_the_cache_skips_training(measures, module_store, monkeypatch):
    from memgen import experiments, progress
    from memgen.store import default_store

    monkeypatch.setenv("MEMGEN_STORE", module_store)  # the autouse fixture points each test elsewhere

    rec = measures.data["noisy"][0]
    cfg = RunConfig.from_dict(rec["config"])
    assert cfg in default_store()
    run = experiments.run(cfg)  # stored by measured_runs: loaded, not trained
    final = progress.measures(run.weights, run.data, rec["key_freqs"])
    assert rec["restricted_loss"][-1] == pytest.approx(final["restricted_loss"], rel=1e-5)
    assert rec["gini_embed"][-1] == pytest.approx(final["gini_embed"], rel=1e-5)
    assert train._record.__name__ == "_record"  # the snapshot wrapper is gone

    def boom(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(train, "train_batch", boom)
    again = pw.progress_measures("test")
    assert again.data["clean"][0]["restricted_loss"] == measures.data["clean"][0]["restricted_loss"]


def test_bad_parameters_are_refused():
    with pytest.raises(ConfigError, match="profile"):
        pw.grokking_phases("huge")
    with pytest.raises(ConfigError, match="weight_decays"):
        pw.grokking_phases("test", weight_decays=[])
    with pytest.raises(ConfigError, match="noise"):
        pw.grokking_phases("test", noises=[1.2])
    with pytest.raises(ConfigError, match="task"):
        pw.progress_measures("test", task="mul")
    with pytest.raises(ConfigError, match="noise"):
        pw.progress_measures("test", noise=0.0)
    with pytest.raises(ConfigError, match="key_power"):
        pw.progress_measures("test", key_power=2.0)


def test_pruning_is_judged_only_on_a_network_that_memorizes():
    """Doshi et al.'s pruning claim: Not shown where the full network generalizes without having
    memorized (nothing to restore or forget) and where no label is corrupted; judged otherwise, with
    top-IPR neurons against the full network and against random ones."""
    fr = list(pw.PRUNE_FRACTIONS)
    row = dict(p=31, n_test=480, n_changed=100, weight_decay=1.0, noise=0.4)

    def curves(ipr_test, ipr_mem, random_test):
        flat = lambda full, v: [full] + [v] * (len(fr) - 1)  # noqa: E731
        return dict(fractions=fr, ipr_test=flat(0.95, ipr_test), ipr_mem=flat(0.99, ipr_mem),
                    random_test=flat(0.95, random_test))

    def seeds(ipr_test, ipr_mem, random_test):  # three seeds, one of them a little apart
        return [curves(ipr_test, ipr_mem, random_test)] * 2 + [curves(ipr_test - 0.02, ipr_mem, random_test)]

    inverted = [{**row, "test_acc": 1.0, "mem_acc": 0.05}] * 3
    v = pw.judge_pruning(inverted, [curves(1.0, 0.0, 0.3)] * 3)
    assert v.verdict == "Not shown" and "nothing for pruning to restore or forget" in v.evidence
    v = pw.judge_pruning([{**r, "n_changed": 0} for r in inverted], [curves(1.0, 0.0, 0.3)] * 3)
    assert v.verdict == "Not shown" and "no corrupted label" in v.evidence
    coexist = [{**row, "test_acc": 0.95, "mem_acc": 0.99}] * 3
    v = pw.judge_pruning(coexist, seeds(1.0, 0.0, 0.3))
    assert v.verdict == REPRODUCED and "wd = 1, α = 0.4, 3 seeds" in v.settings
    assert "top-IPR test 0.993 (3 seeds: 0.980–1.000)" in v.evidence  # the spread over seeds is named
    v = pw.judge_pruning(coexist, seeds(0.6, 0.0, 0.3))  # test falls: not Doshi's picture
    assert v.verdict == "Contradicted" and "test accuracy rises — Contradicted" in v.evidence
    v = pw.judge_pruning(coexist, seeds(1.0, 0.99, 0.3))  # the corrupted labels stay memorized
    assert v.verdict == "Not shown" and "memorization of the corrupted labels falls — Not shown" in v.evidence
    v = pw.judge_pruning(coexist, seeds(1.0, 0.0, 1.0))  # random neurons do as well: the control fails
    assert v.verdict == "Not shown" and "control: top-IPR beats random neurons — Not shown" in v.evidence


def test_nothing_learnable_never_says_reproduced():
    """α = 0.95 leaves almost no true label; lr 1e-7 leaves the weights where they started."""
    F = pw.grokking_phases("test", noises=[0.95], prune_noise=0.95)
    assert [v for v in F if v.verdict == REPRODUCED] == []
    G = pw.progress_measures("test", noise=0.95, lr=1e-7)
    assert [v for v in G if v.verdict == REPRODUCED] == []


def test_phase_heatmap_fits_a_phone_column():
    """Short phase names in the cells, the full ones on hover and in a key under the plot, and the
    colour bar under the plot (its width left to the cells)."""
    grid = [dict(weight_decay=wd, noise=a, test_acc=0.5, phase=ph, phase_note=False)
            for wd, ph in ((1.0, "memorization"), (5.0, "coexistence")) for a in (0.0, 0.4)]
    fig = pw.phase_heatmap(grid, "test_acc", "Test accuracy")
    hm = fig.data[0]
    assert {t.split("<br>")[1] for row in hm.text for t in row} == {"mem", "coex"}
    assert {t.split("<br>")[1] for row in hm.customdata for t in row} == {"memorization", "coexistence"}
    assert hm.colorbar.orientation == "h"
    assert [a.text for a in fig.layout.annotations] == ["mem = memorization · coex = coexistence"]


def test_a_spectrum_grows_sparse_only_when_its_gini_rises_to_the_sparse_level(measures):
    """A Gini rise that stays near 0 is not a sparse spectrum: the claim asks for the rise and a
    final Gini of at least ``SPARSE`` in every seed."""
    clean, noisy = measures.data["rows"][:3], measures.data["rows"][3:]
    low = [{**r, "gini_start": 0.01, "gini_final": 0.05, "test_acc": 0.9} for r in clean]
    v = pw.judge_progress(low, noisy)["sparser"]
    assert v.verdict == "Not shown" and "it ends sparse" in v.evidence and "its Gini coefficient rises — Reproduced" \
        in v.evidence
    high = [{**r, "gini_start": 0.01, "gini_final": pw.SPARSE + 0.1 + 0.01 * i, "test_acc": 0.9}
            for i, r in enumerate(clean)]
    assert pw.judge_progress(high, noisy)["sparser"].verdict == "Reproduced"
    unlearned = [{**r, "test_acc": 0.0} for r in high]  # the floor: a network at chance grows no rule's spectrum
    assert pw.judge_progress(unlearned, noisy)["sparser"].verdict == "Not shown"
    one_short = [dict(r) for r in high]
    one_short[0]["gini_final"] = pw.SPARSE - 0.01
    assert pw.judge_progress(one_short, noisy)["sparser"].verdict == "Not shown"


def test_the_rule_is_read_off_the_held_out_restricted_logits(measures):
    """The rule's claims read the held-out restricted logits (no training label in them): their
    step against the test accuracy's and the memorization's, their final accuracy against chance."""
    clean, noisy = measures.data["rows"][:3], measures.data["rows"][3:]
    grok = [{**r, "t_heldout": 100.0 + i, "t_half": 500.0 + i, "heldout_acc_final": 1.0} for i, r in enumerate(clean)]
    assert pw.judge_progress(grok, noisy)["rule_before_test"].verdict == "Reproduced"
    late = [{**r, "t_heldout": 600.0 + i, "t_half": 100.0 + i} for i, r in enumerate(grok)]
    assert pw.judge_progress(late, noisy)["rule_before_test"].verdict == "Contradicted"
    flat = [{**r, "t_half": float("nan")} for r in grok]
    v = pw.judge_progress(flat, noisy)["rule_before_test"]
    assert v.verdict == "Not shown" and "no generalization to order" in v.evidence
    formed = [{**r, "heldout_acc_final": 1.0, "t_heldout": 100.0 + i, "t_mem": 40.0 + i, "gap_heldout": 10.0}
              for i, r in enumerate(noisy)]
    v = pw.judge_progress(grok, formed)
    assert v["noisy_rule"].verdict == "Reproduced" and v["rule_after_memorization"].verdict == "Reproduced"
    loss = fmt_seeds([r["heldout_loss_final"] for r in formed])
    assert f"held-out restricted loss {loss}" in v["noisy_rule"].evidence and "log P" in v["noisy_rule"].evidence
    below = [{**r, "heldout_acc_final": 0.0, "t_heldout": float("nan"), "t_mem": 40.0} for r in noisy]
    v = pw.judge_progress(grok, below)
    assert v["noisy_rule"].verdict == "Not shown" and "chance 1/P" in v["noisy_rule"].evidence
    for acc in (1 / noisy[0]["p"], 0.5):  # at chance, or above it but short of a formed rule
        weak = [{**r, "heldout_acc_final": acc} for r in below]
        assert pw.judge_progress(grok, weak)["noisy_rule"].verdict == "Not shown"
    blip = [{**r, "heldout_acc_final": 0.0} for r in formed]  # reached 0.9 once, ends at 0: no rule to order
    assert pw.judge_progress(grok, blip)["rule_after_memorization"].verdict == "Not shown"
    assert v["rule_after_memorization"].verdict == "Not shown" and "never reach" in v["rule_after_memorization"].key


def test_steps_are_known_to_the_gap_before_them(measures):
    """The rule's snapshot step against the memorized step (read off the denser history) needs a
    difference beyond the snapshot gap; two steps on one grid of snapshots are ordered exactly, and
    the evidence names the gap."""
    clean, noisy = measures.data["rows"][:3], measures.data["rows"][3:]
    grok = [{**r, "t_heldout": 100.0 + i, "t_half": 500.0 + i, "heldout_acc_final": 1.0, "gap_heldout": 50.0,
             "gap_half": 300.0} for i, r in enumerate(clean)]
    v = pw.judge_progress(grok, noisy)["rule_before_test"]
    assert v.verdict == "Reproduced" and "each up to 300 steps after the snapshot before it" in v.evidence
    formed = [{**r, "heldout_acc_final": 1.0, "t_heldout": 600.0, "t_mem": 40.0 + i, "gap_heldout": 100.0}
              for i, r in enumerate(noisy)]
    v = pw.judge_progress(grok, formed)["rule_after_memorization"]
    assert v.verdict == "Reproduced" and "margin 100, the rule step is a snapshot, up to 100 steps" in v.evidence
    coarse = [{**r, "gap_heldout": 580.0} for r in formed]  # the rule may have formed at step 21
    v = pw.judge_progress(grok, coarse)["rule_after_memorization"]
    assert v.verdict == "Not shown" and "up to 580 steps after the one before it" in v.evidence
    for rows, entries in ((clean, measures.data["clean"]), (noisy, measures.data["noisy"])):
        for r, e in zip(rows, entries):  # each gap on its own grid: snapshots, or the recorded history
            for t, gap, grid in (("t_heldout", "gap_heldout", e["steps"]), ("t_half", "gap_half", e["steps"]),
                                 ("t_mem", "gap_mem", e["history"]["step"])):
                if np.isfinite(r[t]):
                    assert r[t] in grid and r[t] - r[gap] in grid and not any(r[t] - r[gap] < s < r[t] for s in grid)
                else:
                    assert np.isnan(r[gap])


def test_snapshots_measured_before_the_held_out_logits_leave_the_rule_undefined(measures):
    """Shipped rows measured before version 2 have no held-out numbers: however high their
    all-pairs restricted accuracy, the rule's claims are undefined and say why."""
    clean, noisy = measures.data["rows"][:3], measures.data["rows"][3:]
    old = lambda rows: [{**{k: x for k, x in r.items() if k not in ("t_heldout", "heldout_acc_final")},  # noqa: E731
                         "restricted_acc_final": 1.0, "t_rule": 10.0, "t_half": 500.0, "t_mem": 5.0} for r in rows]
    v = pw.judge_progress(old(clean), old(noisy))
    for k in ("rule_before_test", "noisy_rule", "rule_after_memorization"):
        assert v[k].verdict == "Not shown" and "held-out restricted logits" in v[k].evidence, k
    entry = {k: x for k, x in measures.data["clean"][0].items() if k != "heldout_test_acc"}
    row = pg.progress_record(entry)
    assert np.isnan(row["t_heldout"]) and np.isnan(row["heldout_acc_final"])
    assert row["t_rule"] == pg.progress_record(measures.data["clean"][0])["t_rule"]


def test_the_excluded_loss_is_judged_only_where_the_key_frequencies_carry_the_logits(measures):
    """Removing key frequencies that explain 3% of the logits cannot unfit the training set: undefined."""
    clean, noisy = measures.data["rows"][:3], measures.data["rows"][3:]
    rising = [{**r, "excluded_final": 4.0 + 0.1 * i, "excluded_min": 0.1, "key_share_final": 0.5,
               "test_acc": 1.0} for i, r in enumerate(clean)]
    v = pw.judge_progress(rising, noisy)["excluded_rises"]
    assert v.verdict == "Reproduced" and "the excluded logits still fit" in v.evidence
    thin = [{**r, "key_share_final": 0.03} for r in rising]
    v = pw.judge_progress(thin, noisy)["excluded_rises"]
    assert v.verdict == "Not shown" and "variance" in v.evidence


def test_a_lookup_table_reaches_the_restricted_logits_with_many_key_frequencies():
    """The control itself: with most key frequencies the table's restricted logits find the true
    class of the test pairs (most training labels are right), though its own test logits are all
    zero; with one key frequency they do not: how far the labels leak in depends on how many key
    frequencies the table is projected on."""
    d = make_dataset(RunConfig(p=23, noise=0.3, seed=0))
    assert pg.lookup_restricted_acc(d, list(range(1, 12))) > 0.9
    assert pg.lookup_restricted_acc(d, [1]) < 0.9
    assert pg.lookup_restricted_acc(make_dataset(RunConfig(p=23, noise=0.0, seed=0)), [1, 2, 3]) > 0.9


def test_the_progress_figure_draws_the_held_out_loss_where_measured(measures):
    """Figure 1's loss panel: the held-out restricted loss beside the others, and log P (a uniform
    guess); entries measured before it leave the trace out."""
    groups = {"clean": measures.data["clean"], "noisy": measures.data["noisy"]}
    p = measures.setup.base.p
    fig = pw.progress_figure(groups, "t", p)
    names = [tr.name for tr in fig.data]
    assert names.count(pw.HELD_LOSS) == 2 and names.count(pw.HELD) == 2
    assert any(abs(sh.y0 - np.log(p)) < 1e-9 for sh in fig.layout.shapes)
    chance = [sh for sh in fig.layout.shapes if abs(sh.y0 - 1 / p) < 1e-9]  # on the accuracy panel only
    label = [a for a in fig.layout.annotations if a.text == f"chance 1/{p}"]
    assert [sh.yref for sh in chance] == ["y2"] and [(a.yref, a.yanchor) for a in label] == [("y2", "bottom")]
    old = {k: [{x: y for x, y in e.items() if x != "heldout_loss"} for e in v] for k, v in groups.items()}
    assert pw.HELD_LOSS not in [tr.name for tr in pw.progress_figure(old, "t", p).data]
