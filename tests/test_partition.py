import numpy as np
import torch

from memgen.baselines import analytic_weights
from memgen.configs import RunConfig
from memgen.model import Weights
from memgen.partition import (
    filtration_of_subnetwork,
    ipr,
    ipr_doshi,
    needed_fractions,
    partition_curves,
    score_agreement,
    scores,
    top_neurons,
)
from memgen.store import train_or_load
from memgen.tasks import make_dataset


def test_pure_cosine_has_ipr_one_and_noise_a_small_one():
    w = analytic_weights("add", 31, 10)
    assert np.allclose(ipr(w, "add"), 1.0)
    g = torch.Generator().manual_seed(0)
    noise = Weights(torch.randn(50, 31, generator=g), torch.randn(50, 31, generator=g),
                    torch.randn(31, 50, generator=g), torch.zeros(31))
    assert ipr(noise, "add").mean() < 0.25
    assert ipr_doshi(noise).mean() < ipr_doshi(w).mean()


def test_zero_neurons_score_zero():
    w = analytic_weights("add", 11, 4)
    w.W[:, 0] = 0
    assert ipr(w, "add")[0] == 0 and scores(w, "add", "strength")[0] == 0


def test_top_neurons():
    s = np.array([0.1, 0.9, 0.5, 0.7])
    assert top_neurons(s, 2).tolist() == [1, 3]
    assert top_neurons(s, 1, largest=False).tolist() == [0]


def test_partition_curves_and_random_control():
    run = train_or_load(RunConfig(p=23, width=65, noise=0.4, steps=400, lr=1e-2))
    d = make_dataset(run.config)
    c = partition_curves(run.weights, d, "strength", fractions=np.array([0.1, 0.5, 1.0]), random_draws=2)
    assert c["G_test"].shape == (3,) and c["random_noisy"].shape == (3,)
    assert c["G_test"][-1] == c["R_test"][-1] == c["random_test"][-1]  # all neurons: the full net
    full = {"test_acc": c["G_test"][-1], "noisy_acc": c["G_noisy"][-1]}
    nf = needed_fractions(c, full)
    assert 0 < nf["gamma_R"] <= 1
    ff = filtration_of_subnetwork(run.weights, d, 0.5)
    assert set(ff) == {"f^G", "FF(whole network)", "FF(f^G)"}
    assert -1 <= score_agreement(run.weights, "add") <= 1
