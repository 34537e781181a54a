import numpy as np
import pytest
import torch

from memgen.baselines import activation_swap, analytic_weights, baselines_report, majority_vote
from memgen.configs import RunConfig
from memgen.fourier import (
    dominant_frequencies,
    filtration,
    filtration_report,
    frequency_histogram,
    phase_error,
)
from memgen.metrics import accuracies_of_predictions, evaluate
from memgen.model import Weights
from memgen.store import train_or_load
from memgen.tasks import make_dataset


def grid_acc(w, task, p):
    d = make_dataset(RunConfig(task=task, p=p, noise=0.0))
    return float((w.predict() == d.true).mean())


@pytest.mark.parametrize("task", ["add", "sub", "mul"])
def test_analytic_network_is_exact_and_survives_filtration(task):
    w = analytic_weights(task, 31, 400, seed=0)
    assert grid_acc(w, task, 31) == 1.0
    G, R = filtration(w, task)
    assert grid_acc(G, task, 31) == 1.0
    assert phase_error(w, task)["mean"] < 1e-4


def test_random_network_has_large_phase_error():
    g = torch.Generator().manual_seed(0)
    w = Weights(torch.randn(300, 31, generator=g), torch.randn(300, 31, generator=g),
                torch.randn(31, 300, generator=g), torch.zeros(31))
    assert phase_error(w, "add")["mean"] > 1.0  # ~pi/2 expected


def test_dominant_frequency_of_pure_cosines():
    w = analytic_weights("add", 31, 50, seed=1)
    f = dominant_frequencies(w, "add")
    per = dominant_frequencies(w, "add", mode="per-vector")
    assert (f["u"] == per["u"]).all() and (per["u"] == per["w"]).all()
    assert frequency_histogram(w, "add").sum() == 50 and frequency_histogram(w, "add")[0] == 0


def test_filtration_parts_sum_to_the_network():
    g = torch.Generator().manual_seed(0)
    w = Weights(torch.randn(20, 13, generator=g), torch.randn(20, 13, generator=g),
                torch.randn(13, 20, generator=g), torch.randn(13, generator=g))
    for task in ("add", "mul"):
        for kw in ({}, {"keep_dc": True}, {"mode": "per-vector"}, {"top_k": 3}):
            G, R = filtration(w, task, **kw)
            for n in ("U", "V", "W"):
                assert torch.allclose(getattr(G, n) + getattr(R, n), getattr(w, n), atol=1e-5)


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    # its own store, and the environment as it was afterwards (later modules read MEMGEN_STORE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMGEN_STORE", str(tmp_path_factory.mktemp("store")))
        return train_or_load(RunConfig(p=23, width=129, noise=0.4, steps=1000, lr=1e-2, weight_decay=1.0))


def test_filtration_recovers_the_rule_from_a_noisy_network(noisy_run):
    rep = filtration_report(noisy_run.weights, make_dataset(noisy_run.config))
    assert rep["full"]["noisy_acc"] > 0.95  # memorised
    assert rep["G"]["test_acc"] > rep["full"]["test_acc"] + 0.3
    assert rep["R"]["noisy_acc"] > rep["G"]["noisy_acc"]  # R keeps the memorisation


def test_activation_swap_and_baselines(noisy_run):
    d = make_dataset(noisy_run.config)
    sw = activation_swap(noisy_run.weights, d)
    assert set(sw) == {"relu", "quadratic", "gelu", "reverse_relu"}
    assert sw["relu"] == evaluate(noisy_run.weights, d)
    base = baselines_report(noisy_run.weights, d)
    assert set(base) == {"network", "logit projection", "majority vote (no network)"}


def test_majority_vote_recovers_rule_at_high_noise_without_a_network():
    d = make_dataset(RunConfig(p=59, noise=0.8, train_frac=0.5))
    acc = accuracies_of_predictions(majority_vote(d), d)
    assert acc["test_acc"] > 0.9  # the confound the book warns about
    assert np.isfinite(acc["noisy_acc"])
