import math

import numpy as np
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


def test_a_resolution_margin_is_named_where_it_sets_the_margin():
    """Steps at which something first happened are known only to the spacing of the recorded
    steps: a difference within it shows nothing, and the evidence says where the margin comes from."""
    why = "snapshots up to 300 steps apart at these events"
    v = V.compare("c", [1700, 1700], [1000, 1000], min_margin=300, margin_why=why, digits=0)
    assert v.verdict == "Reproduced" and f"margin 300, {why}" in v.evidence and "range" not in v.evidence
    v = V.compare("c", [1200, 1210], [1000, 1000], min_margin=300, margin_why=why, digits=0)
    assert v.verdict == "Not shown" and why in v.evidence
    v = V.compare("c", [1700, 3100], [1000, 1000], min_margin=300, margin_why=why, digits=0)  # the seeds' range wins
    assert v.verdict == "Not shown" and why not in v.evidence and "range over 2 seeds" in v.evidence
    v = V.compare("c", [1700, 2000], [1000, 1000], min_margin=300, margin_why=why, digits=0)  # a tie: both named
    assert f"margin 300, {why}, range over 2 seeds" in v.evidence


def test_combine_and_validation():
    r = V.Verdict("a", "Reproduced", "")
    n = V.Verdict("b", "Not shown", "")
    c = V.Verdict("c", "Contradicted", "")
    assert V.combine("x", [r, r]).verdict == "Reproduced"
    assert V.combine("x", [r, n]).verdict == "Not shown"
    assert V.combine("x", [r, n, c]).verdict == "Contradicted"
    with pytest.raises(ValueError, match="verdict='Maybe'"):
        V.Verdict("x", "Maybe", "")


def test_the_seed_margin_lets_few_chance_differences_through():
    """Two sides of 3 seeds drawn from the same distribution: a difference beyond the full range
    over seeds happens about 2% of the time one-sided (the half-range would pass ~12%)."""
    rng = np.random.default_rng(0)
    draws = rng.normal(0.5, 0.05, size=(1500, 2, 3))
    hits = sum(V.compare("c", a, b).verdict == "Reproduced" for a, b in draws)
    assert hits / len(draws) < 0.04
    half = np.mean([a.mean() - b.mean() > max(V.spread(a), V.spread(b)) for a, b in draws])
    assert half > 0.08  # why the margin is the full range, not the half-range


def test_every_seed_must_be_above_chance():
    assert V.judge_above_chance("c", [0.7, 0.72, 0.69], 1741, 1 / 59).verdict == "Reproduced"
    v = V.judge_above_chance("c", [0.7, 0.72, 0.018], 1741, 1 / 59)
    assert v.verdict == "Not shown" and "at chance" in v.evidence
    assert V.judge_at_least("c", [0.95, 0.97], 1741, 0.9).verdict == "Reproduced"
    assert V.judge_at_least("c", [0.95, 0.91], 1741, 0.9).verdict == "Not shown"  # 0.91's interval reaches 0.9


def test_kept_needs_a_floor_and_fails_when_it_drops():
    with pytest.raises(ValueError, match="at_least=True needs a floor"):
        V.compare("c", 0.5, 0.5, at_least=True)
    chance = 1 / 59
    kept = V.compare("c", [0.80, 0.82, 0.79], [0.81, 0.80, 0.83], at_least=True,
                     floor=([0.80, 0.82, 0.79], 1741, chance))
    assert kept.verdict == "Reproduced" and "kept" in kept.evidence
    at_chance = V.compare("c", [0.02, 0.01, 0.015], [0.012, 0.02, 0.01], at_least=True,
                          floor=([0.02, 0.01, 0.015], 1741, chance))
    assert at_chance.verdict == "Not shown"
    dropped = V.compare("c", [0.3, 0.32, 0.31], [0.8, 0.81, 0.79], at_least=True,
                        floor=([0.3, 0.32, 0.31], 1741, chance))
    assert dropped.verdict == "Contradicted"


def test_one_seed_accuracies_need_the_sampling_margin():
    # 9 of 1741 test pairs: noise, not a difference
    assert V.compare("c", 0.740, 0.735, n=1741).verdict == "Not shown"
    v = V.compare("c", 0.80, 0.70, n=1741)
    assert v.verdict == "Reproduced" and "one seed" in v.evidence and v.key.startswith("a 0.800 vs b 0.700")


# ---------------------------------------------------------------------------- the controls verdicts use
def test_mirror_lookup_explains_a_symmetric_models_test_accuracy():
    import memgen as mg
    from memgen.baselines import accuracy_without_mirror, mirror_lookup_share

    data = mg.make_dataset(mg.get_profile("test").config(noise=0.4, tied=True))
    p = data.p
    label = np.full(p * p, -1)
    label[data.train_idx] = data.train_labels
    # a pure lookup model: the mirror's training label where there is one, a wrong class elsewhere
    mirror = data.b * p + data.a
    pred = np.where(label[mirror] >= 0, label[mirror], (data.true + 1) % p)
    share = mirror_lookup_share(data)
    test_acc = (pred[data.test_idx] == data.true[data.test_idx]).mean()
    assert 0.1 < share < 0.5 and abs(test_acc - share) < 1e-12
    acc, n = accuracy_without_mirror(pred, data)
    assert acc == 0.0 and n == round((1 - share) * len(data.test_idx))
    assert accuracy_without_mirror(data.true, data)[0] == 1.0  # the rule answers them all


def test_symmetric_ceiling():
    import memgen as mg
    from memgen.baselines import symmetric_ceiling

    prof = mg.get_profile("test")
    assert symmetric_ceiling(mg.make_dataset(prof.config(noise=0.4, noise_mode="symmetric"))) == 1.0
    d = mg.make_dataset(prof.config(noise=0.4))
    lab = dict(zip(d.train_idx.tolist(), d.train_labels.tolist()))
    p = d.p
    clash = {frozenset((i, (i % p) * p + i // p)) for i in lab if (i % p) * p + i // p in lab
             and lab[(i % p) * p + i // p] != lab[i]}
    assert symmetric_ceiling(d) == 1 - len(clash) / len(lab) < 1


def test_cosine_fit_is_the_least_squares_fit_in_the_weights_scale():
    import torch

    from memgen.baselines import analytic_weights
    from memgen.fourier import cosine_fit, neuron_vectors, shuffled_phase_error
    from memgen.model import Weights

    w = analytic_weights("add", 23, 40, activation="relu")
    shifted = Weights(w.U + 0.3, w.V - 0.2, w.W, w.mu, "relu")  # DC offsets must be fitted too
    fit, vec = cosine_fit(shifted, "add"), neuron_vectors(shifted, "add")
    assert np.allclose(fit["u"], vec["u"], atol=1e-5) and fit["r2_u"].min() > 0.999
    g = torch.Generator().manual_seed(0)
    noise = Weights(torch.randn(40, 23, generator=g), torch.randn(40, 23, generator=g),
                    torch.randn(23, 40, generator=g), torch.zeros(23), "relu")
    f2, v2 = cosine_fit(noise, "add"), neuron_vectors(noise, "add")
    assert np.median(f2["r2_u"]) < 0.4
    # least squares: scaling the fitted cosine's amplitude up or down only increases the residual
    dc = v2["u"].mean(1, keepdims=True)
    best = ((v2["u"] - f2["u"]) ** 2).sum()
    for s in (0.8, 1.2):
        assert ((v2["u"] - (dc + s * (f2["u"] - dc))) ** 2).sum() > best
    # the phase relation's chance level is about pi/2, and the analytic network sits far below it
    assert abs(shuffled_phase_error(w, "add").mean() - np.pi / 2) < 0.3


def _rec(**kw):
    base = dict(task="add", p=23, train_frac=0.5, split_seed=0, noise=0.8, noise_mode="wrong", width=33,
                activation="relu", tied=False, bias=True, init="default", optimizer="adamw", lr=0.01,
                weight_decay=1.0, beta1=0.9, beta2=0.98, loss="ce", steps=1000, batch_size=None, seed=0)
    return {**base, **kw}


def test_filtration_verdicts_from_records():
    from memgen.book.findings import judge_filtration

    def rows(g, raw=0.04, vote=0.5, perv=None, r_noisy=1.0, g_noisy=0.05):
        return [_rec(seed=s, G_test_acc=g[s], test_acc=raw, vote_test_acc=vote, perv_G_test_acc=perv or g[s],
                     R_noisy_acc=r_noisy, G_noisy_acc=g_noisy) for s in range(3)]
    good = judge_filtration(rows([0.97, 0.98, 0.99]), rows([0.97, 0.98, 0.99])[:1], noise=0.8)
    assert {k: v.verdict for k, v in good.items()} == {
        "near_perfect": "Reproduced", "g_beats_raw": "Reproduced", "r_memorizes": "Reproduced",
        "beats_vote": "Reproduced", "rule_choice": "Reproduced", "heavy": "Reproduced"}
    chance = judge_filtration(rows([0.04, 0.05, 0.03], raw=0.01, vote=0.9, r_noisy=0.05),
                              rows([0.04, 0.05, 0.03])[:1], noise=0.8)
    assert not any(v.reproduced for v in chance.values())
    assert chance["beats_vote"].verdict == "Contradicted"
    # the result depends on the dominant-frequency rule: per-vector at chance
    dep = judge_filtration(rows([0.97, 0.98, 0.99], perv=0.04), rows([0.97, 0.98, 0.99])[:1], noise=0.8)
    assert dep["rule_choice"].verdict != "Reproduced"


def test_scaling_verdicts_need_an_interpolating_width_and_seeds():
    from memgen.book.findings import judge_scaling

    grid = [_rec(width=w, seed=s, train_acc=1.0 if w >= 33 else 0.5, noisy_acc=1.0 if w >= 33 else 0.4,
                 test_acc={9: 0.3, 33: 0.1, 129: 0.6}[w] + 0.01 * s, G_test_acc=0.2 + w / 200)
            for w in (9, 33, 129) for s in range(3)]
    act = [_rec(width=129, seed=s, activation=a, test_acc={"relu": 0.6, "quadratic": 0.3}[a]) for a in
           ("relu", "quadratic") for s in range(3)]
    wd = [_rec(width=w, seed=s, weight_decay=d, train_acc=1.0 if w >= (33 if d < 1 else 129) else 0.5)
          for w in (9, 33, 129) for d in (0.3, 3.0) for s in range(3)]
    v = judge_scaling(grid, act, wd, heavy=0.8, side=0.8)
    assert all(x.verdict == "Reproduced" for x in v.values()), {k: x.evidence for k, x in v.items()}
    flat = [dict(r, test_acc=0.04, G_test_acc=0.04) for r in grid]
    v = judge_scaling(flat, [dict(r, test_acc=0.04) for r in act], wd, heavy=0.8, side=0.8)
    assert [k for k, x in v.items() if x.reproduced] == ["weight_decay"]  # a memorization claim
    # every weight decay interpolates at the narrowest width: no shift can be seen, and the evidence says why
    early = [dict(r, train_acc=1.0) for r in wd]
    v = judge_scaling(grid, act, early, heavy=0.8, side=0.8)["weight_decay"]
    assert v.verdict == "Not shown" and "already at the narrowest width swept (M = 9)" in v.evidence


def test_partition_gammas_are_undefined_when_fg_is_at_chance():
    from memgen.analysis import FRACTIONS
    from memgen.book.findings import judge_partition

    k = len(FRACTIONS)

    def row(seed, g, rnd, ff=0.9):
        r = _rec(seed=seed, fractions=FRACTIONS.tolist(), rho=0.5, ff_whole_test=ff, ff_sub_test=ff / 2)
        for s in ("strength", "ipr"):
            r.update({f"{s}_G_test": [g] * k, f"{s}_random_test": [rnd] * k, f"{s}_gamma_G": 0.1,
                      f"{s}_gamma_R": 0.3})
        return r
    flat = judge_partition([row(s, 0.045, 0.044) for s in range(3)])
    assert "undefined" in flat["gammas"].evidence and not flat["gammas"].reproduced
    assert not flat["random_control"].reproduced and not flat["scores"].reproduced
    good = judge_partition([row(s, 0.5 + 0.01 * s, 0.05) for s in range(3)])
    assert good["gammas"].reproduced and good["random_control"].reproduced and good["scores"].reproduced


def test_scaling_side_sweeps_follow_the_profile_unless_given():
    """Chapter 2's activation sweep trains the profile's seeds (every one at ``test``), or those
    ``side_seeds`` names; a bad ``side_seeds`` is one clear error."""
    from memgen.book.findings import scaling
    from memgen.configs import ConfigError

    kw = dict(noises=[0.8], widths=[9], side_widths=[9], activations=["relu", "gelu"], wd_factors=[1.0],
              wd_widths=[9], seeds=[0, 1], steps=50)
    F = scaling("test", **kw)
    assert sorted({(r["activation"], r["seed"]) for r in F.data["activations"]}) == [
        ("gelu", 0), ("gelu", 1), ("relu", 0), ("relu", 1)]
    F = scaling("test", side_seeds=[1], **kw)
    assert sorted({(r["activation"], r["seed"]) for r in F.data["activations"]}) == [("gelu", 1), ("relu", 1)]
    assert "seed 1" in F.verdicts["ceiling"].settings
    for bad in ("1", [-1], []):
        with pytest.raises(ConfigError, match=r"^side_seeds=.* is not allowed"):
            scaling("test", side_seeds=bad, **kw)


def test_scaling_uses_the_profiles_trimmed_side_sweeps(monkeypatch):
    """A profile's ``activation_seeds`` trims the activation sweep whatever the seeds; its
    ``wd_widths`` apply only to its own widths (``widths`` not given)."""
    import dataclasses

    from memgen.book.findings import scaling
    from memgen.configs import PROFILES

    trimmed = dataclasses.replace(PROFILES["test"], widths=(9, 17), activation_seeds=1, wd_widths=(9,))
    monkeypatch.setitem(PROFILES, "test", trimmed)
    kw = dict(noises=[0.8], side_widths=[9], activations=["relu", "gelu"], wd_factors=[1.0, 3.0],
              seeds=[0, 1], steps=50)
    F = scaling("test", **kw)
    assert {r["seed"] for r in F.data["activations"]} == {0}
    assert {r["width"] for r in F.data["weight_decay"]} == {9} and {r["seed"] for r in F.data["weight_decay"]} == {0, 1}
    F = scaling("test", widths=[9, 17], **kw)  # the caller's widths: the first four of them
    assert {r["width"] for r in F.data["weight_decay"]} == {9, 17} and {r["seed"] for r in F.data["activations"]} == {0}


def test_fmt_seeds_counts_the_seeds_without_a_number():
    assert V.fmt_seeds([0.72, 0.75, 0.73]) == "0.733 (3 seeds: 0.720–0.750)"
    assert V.fmt_seeds([0.72, float("nan"), 0.746]) == "0.733 (2 of 3 seeds: 0.720–0.746)"
    assert V.fmt_seeds([float("nan"), 12, float("nan")], 0) == "12 (1 of 3 seeds)"
    assert V.fmt_seeds([float("nan")] * 3) == "–" and V.fmt_seeds(0.5) == "0.500"


def test_an_undefined_verdict_names_its_reason_in_tables():
    """Tables show the key: an undefined verdict's key is the first clause of why, not a placeholder."""
    v = V.undefined("c", "the restricted logits never reach 0.9 in some seed (final 0.061); more")
    assert v.verdict == "Not shown" and v.key == "the restricted logits never reach 0.9 in some seed (final 0.061)"
    long = V.undefined("c", "word " * 40)
    assert long.key.endswith("…") and len(long.key) <= 90
    assert V.undefined("c", "why", key="k").key == "k"
