"""memgen.progress: restricted / excluded logits and losses, Gini, key frequencies."""

import numpy as np
import pytest
import torch

from memgen import progress as pg
from memgen.baselines import analytic_weights
from memgen.configs import RunConfig
from memgen.model import Weights
from memgen.tasks import make_dataset

P = 23


def cosine_logits(p: int, omega: int, task: str = "add") -> np.ndarray:
    return np.cos(2 * np.pi * omega * pg.residue(task, p) / p)


def single_frequency_weights(p: int, width: int, omega: int) -> Weights:
    """Every neuron a cosine of frequency omega (random phases): a one-frequency network."""
    rng = np.random.default_rng(0)
    i = np.arange(p)[None, :]
    pa, pb = rng.uniform(0, 2 * np.pi, (2, width, 1))
    th = 2 * np.pi * omega * i / p
    t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    return Weights(t(np.cos(th + pa)), t(np.cos(th + pb)), t(np.cos(th + pa + pb).T).contiguous(),
                   torch.zeros(p), "quadratic")


def test_residue_is_zero_at_the_true_class():
    for task in ("add", "sub"):
        r = pg.residue(task, P)
        d = make_dataset(RunConfig(p=P, task=task))
        assert r.shape == (P * P, P)
        assert (r[np.arange(P * P), d.true] == 0).all()


def test_key_component_is_the_projection():
    x = 2.0 * cosine_logits(P, 3) + 0.5 * np.sin(2 * np.pi * 5 * pg.residue("add", P) / P)
    np.testing.assert_allclose(pg.key_component(x, "add", [3]), 2.0 * cosine_logits(P, 3), atol=1e-10)
    np.testing.assert_allclose(pg.key_component(x, "add", [3, 5]), x, atol=1e-10)
    assert np.abs(pg.key_component(x, "add", [4])).max() < 1e-10
    assert np.abs(pg.key_component(x, "add", [])).max() == 0
    noise = np.random.default_rng(1).normal(size=(P * P, P))
    comp = pg.key_component(noise, "add", [1, 2])
    np.testing.assert_allclose((comp * (noise - comp)).sum(), 0.0, atol=1e-8)  # orthogonal
    np.testing.assert_allclose(comp.mean(0), 0.0, atol=1e-12)  # no per-class mean
    np.testing.assert_allclose(pg.restricted_logits(noise, "add", [1]) + pg.excluded_logits(noise, "add", [1])
                               - noise.mean(0), noise, atol=1e-10)


def test_restricted_loss_low_and_excluded_loss_high_for_the_analytic_network():
    w = analytic_weights("add", P, 256)
    d = make_dataset(RunConfig(p=P))
    logits = w.logits()
    freqs = pg.spectrum_key_frequencies(logits, "add")
    assert pg.restricted_loss(logits, d, freqs) < 0.05
    assert pg.excluded_loss(logits, d, freqs) > np.log(P)  # worse than a uniform guess
    m = pg.measures(w, d, freqs)
    assert m["restricted_test_acc"] == 1.0 and m["heldout_test_acc"] == 1.0 and m["excluded_train_acc"] < 0.2
    assert m["heldout_loss"] < 0.05
    assert set(m) == {"restricted_loss", "excluded_loss", "train_loss", "test_loss", "restricted_test_acc",
                      "heldout_test_acc", "heldout_loss", "excluded_train_acc", "gini_embed", "gini_unembed",
                      "key_share"}
    # without key frequencies the restricted logits are the class means: no better than a guess
    assert pg.restricted_loss(logits, d, []) > 0.9 * np.log(P)


def test_held_out_restricted_logits_hold_the_rule_but_no_training_label():
    """Averaged over the test pairs only, a lookup table of the training labels has no restricted
    logits at all (all zero: chance), while a network that answers by the rule keeps its own; over
    all pairs, the default, the table's point at the true class."""
    d = make_dataset(RunConfig(p=P, noise=0.2, seed=0))
    freqs = list(range(1, P // 2 + 1))
    table = np.zeros((P * P, P))
    table[d.train_idx, d.train_labels] = 1.0
    te = d.test_idx
    held = pg.restricted_logits(table, "add", freqs, te)
    np.testing.assert_allclose(held[te], 0.0, atol=1e-12)
    leak = pg.restricted_logits(table, "add", freqs)
    assert (leak[te].argmax(1) == d.true[te]).mean() > 0.9
    key = [1, 2, 3, 4, 5]
    rule = sum(cosine_logits(P, w) for w in key) + np.random.default_rng(0).normal(size=(P * P, P))
    assert (rule[te].argmax(1) == d.true[te]).mean() < 0.9  # the noise hides the rule in the raw logits
    assert (pg.restricted_logits(rule, "add", key, te)[te].argmax(1) == d.true[te]).mean() == 1.0
    np.testing.assert_allclose(pg.key_component(rule, "add", [3], np.arange(P * P)), pg.key_component(rule, "add", [3]))
    # a function of a + b - c alone is its own projection over any set of pairs (each pair holds every residue once)
    pure = 2.0 * cosine_logits(P, 3) + np.sin(2 * np.pi * 5 * pg.residue("add", P) / P)
    np.testing.assert_allclose(pg.key_component(pure, "add", [3, 5], te), pure, atol=1e-10)
    np.testing.assert_allclose(pg.key_component(pure, "add", [3], te[:7]), 2.0 * cosine_logits(P, 3), atol=1e-10)


def test_spectrum_key_frequencies_are_the_strongest_until_they_hold_the_power_asked_for():
    """Powers 9, 4, 1 (amplitudes 3, 2, 1) at frequencies 2, 5, 7: 90% needs 2 and 5 (13/14), 95% all
    three, 50% only 2; the sign of a component (its phase) does not change the choice."""
    r = pg.residue("add", P)
    x = 3 * cosine_logits(P, 2) + 2 * np.sin(2 * np.pi * 5 * r / P) + cosine_logits(P, 7)
    assert pg.spectrum_key_frequencies(x, "add").tolist() == [2, 5]
    assert pg.spectrum_key_frequencies(x, "add", power=0.95).tolist() == [2, 5, 7]
    assert pg.spectrum_key_frequencies(x, "add", power=0.5).tolist() == [2]
    assert pg.spectrum_key_frequencies(-x, "add").tolist() == [2, 5]
    assert pg.spectrum_key_frequencies(x, "add", np.arange(0, P * P, 3)).tolist() == [2, 5]  # any pairs
    np.testing.assert_allclose(pg.rule_spectrum(x, "add")[[2, 5, 7]] / pg.rule_spectrum(x, "add").sum(),
                               np.array([9, 4, 1]) / 14)
    assert pg.spectrum_key_frequencies(np.ones((P * P, P)), "add").size == 0  # no rule direction at all
    # a function of the pair alone (no c) has no rule direction either: every class gets the same
    pair_only = np.repeat(np.arange(P * P, dtype=float)[:, None], P, 1)
    assert pg.spectrum_key_frequencies(pair_only, "add").size == 0
    class_only = np.tile(np.random.default_rng(0).normal(size=P), (P * P, 1))  # a bias per class, no rule
    assert pg.spectrum_key_frequencies(class_only - class_only.mean(), "add").size == 0


def test_step_gap_is_the_distance_to_the_step_before():
    steps = [0, 3, 10, 40]
    assert pg.step_gap(steps, 40.0) == 30.0 and pg.step_gap(steps, 3.0) == 3.0
    assert pg.step_gap(steps, 0.0) == 0.0 and np.isnan(pg.step_gap(steps, float("nan")))
    assert pg.step_gap(steps, pg.first_step(steps, [0.0, 0.2, 0.95, 1.0], 0.9)) == 7.0


def test_gini():
    assert pg.gini(np.eye(100)[0]) == pytest.approx(0.99)
    assert pg.gini(np.ones(29)) == pytest.approx(0.0)
    assert pg.gini(np.zeros(5)) == 0.0
    assert 0 < pg.gini([1.0, 2.0, 3.0]) < 1
    for bad in ([], [-1.0, 2.0], [np.nan], np.ones((2, 2))):
        with pytest.raises(ValueError):
            pg.gini(bad)


def test_spectrum_gini_and_key_frequencies_of_a_one_frequency_network():
    w = single_frequency_weights(P, 32, 4)
    n = P // 2
    assert pg.spectrum_gini(w, "add") == pytest.approx((n - 1) / n, abs=1e-3)
    assert pg.spectrum_gini(w, "add", "unembed") == pytest.approx((n - 1) / n, abs=1e-3)
    assert pg.embedding_spectrum(w, "add").shape == (n,)
    d = make_dataset(RunConfig(p=P))
    assert pg.spectrum_key_frequencies(w.logits(), "add", d.test_idx).tolist() == [4]
    spec = pg.rule_spectrum(w.logits(), "add", d.test_idx)
    assert spec.shape == (n + 1,) and spec[0] == 0 and spec[4] / spec.sum() > 0.99
    assert pg.measures(w, d, [4])["key_share"] > 0.5
    # a random network spreads its spectrum
    rand = Weights(*(torch.randn(32, P) for _ in range(2)), torch.randn(P, 32), torch.zeros(P))
    assert pg.spectrum_gini(rand, "add") < 0.5


def test_logit_loss():
    x = np.array([[10.0, 0.0], [0.0, 10.0]])
    assert pg.logit_loss(x, np.array([0, 1])) < 1e-3
    assert pg.logit_loss(x, np.array([0, 1]), "mse") == pytest.approx(((x - np.eye(2)) ** 2).mean())
    assert np.isnan(pg.logit_loss(np.zeros((0, 2)), np.zeros(0, dtype=int)))


def test_bad_inputs_are_refused_with_the_parameter_named():
    d = make_dataset(RunConfig(p=P))
    x = np.zeros((P * P, P))
    with pytest.raises(ValueError, match="task='mul'"):
        pg.key_component(x, "mul", [1])
    with pytest.raises(ValueError, match="freqs"):
        pg.key_component(x, "add", [0])
    with pytest.raises(ValueError, match="freqs"):
        pg.key_component(x, "add", [P])
    with pytest.raises(ValueError, match="logits"):
        pg.key_component(np.zeros((P, P)), "add", [1])
    with pytest.raises(ValueError, match="NaN"):
        pg.key_component(np.full((P * P, P), np.nan), "add", [1])
    with pytest.raises(ValueError, match="loss="):
        pg.restricted_loss(x, d, [1], loss="hinge")
    for bad in ([], [P * P], [-1], [0.5], [[0, 1]]):
        with pytest.raises(ValueError, match="pairs"):
            pg.restricted_logits(x, "add", [1], np.array(bad))
    for bad in (0, 1.5, True, "0.9"):
        with pytest.raises(ValueError, match="power="):
            pg.spectrum_key_frequencies(x, "add", power=bad)
    with pytest.raises(ValueError, match="which"):
        pg.embedding_spectrum(analytic_weights("add", P, 8), "add", "both")
    with pytest.raises(ValueError, match="logits"):
        pg.restricted_loss(np.zeros((9, 3)), d, [1])


def test_kept_snapshots_are_measured_again_without_training(tmp_path, monkeypatch):
    """The cached curves gone (a change of the measures), the kept snapshots are measured again and
    nothing is trained; damaged snapshots are trained again."""
    from memgen import train
    from memgen.store import RunStore

    store = RunStore(tmp_path)
    configs = pg.progress_configs("test", seeds=(0,))
    first = pg.measured_runs(configs, store=store)
    assert [len(r["key_freqs"]) > 0 for r in first] == [True, True]
    assert all(r["key_power"] == pg.KEY_POWER and sum(r["spectrum"]) == pytest.approx(1.0) for r in first)
    snaps = list((tmp_path / "progress").glob("snaps-*.pt"))
    assert len(snaps) == 1
    for f in (tmp_path / "progress").glob("*.json"):
        f.unlink()
    real = train.train_batch

    def boom(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(train, "train_batch", boom)
    again = pg.measured_runs(configs, store=store)
    assert again[1]["heldout_test_acc"] == first[1]["heldout_test_acc"]
    other = pg.measured_runs(configs, store=store, key_power=0.5)  # another choice: measured, not trained
    assert all(len(o["key_freqs"]) <= len(f["key_freqs"]) for o, f in zip(other, first))
    from memgen.checkpoint import atomic_save, checked_load

    def forget_curves():
        for f in (tmp_path / "progress").glob("*.json"):
            f.unlink()

    kept = checked_load(snaps[0])
    other = {s: {k: v.clone() for k, v in p.items()} for s, p in kept.items()}
    other[max(other)]["Ut"] += 1.0  # snapshots of another training than the stored runs'
    atomic_save(snaps[0], other)
    forget_curves()
    with pytest.raises(AssertionError, match="trained again"):
        pg.measured_runs(configs, store=store)
    atomic_save(snaps[0], kept)
    store.path(configs[0]).write_bytes(store.path(configs[0]).read_bytes()[:-10])  # a damaged stored run
    with pytest.raises(AssertionError, match="trained again"), pytest.warns(UserWarning, match="checksum"):
        pg.measured_runs(configs, store=store)
    snaps[0].write_bytes(snaps[0].read_bytes()[:-10])  # damaged snapshots
    with pytest.raises(AssertionError, match="trained again"):
        pg.measured_runs(configs, store=store)
    monkeypatch.setattr(train, "train_batch", real)
    assert pg.measured_runs(configs, store=store)[0]["excluded_loss"] == first[0]["excluded_loss"]
    with pytest.raises(ValueError, match="key_power="):
        pg.measured_runs(configs, store=store, key_power=0)
