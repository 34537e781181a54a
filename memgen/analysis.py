"""Per-run analysis records: the weight-level numbers the chapters judge, computed from one
finished run (its weights and data) and returned as flat, JSON-ready dicts.

The book's findings (:mod:`memgen.book.findings`) judge these records, and
:func:`memgen.results.record_of` stores them in shipped results, so a chapter judges runs trained
elsewhere (a GPU, the paper's scale) with the same numbers it computes from runs trained now.

- :func:`neuron_record` (chapter 4): activation swap, one-cosine concentration, phase error and
  its shuffled chance level;
- :func:`control_record` (chapter 5): labels-only majority vote, per-vector FF, logit projection;
- :func:`partition_record` (chapter 6): Algorithm 1's curves for both neuron scores, γ_G, γ_R,
  FF of the top-strength half;
- :func:`mirror_record` (chapter 7): the symmetric-lookup control of tied embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import baselines, fourier, partition
from .metrics import accuracies_of_predictions, evaluate
from .model import Weights
from .train import Run

#: The activations the swap evaluates the trained weights under.
SWAPS = ("quadratic", "reverse_relu")


def neuron_record(run: Run, activations: Sequence[str] = ("relu", *SWAPS)) -> dict[str, Any]:
    """The weight-level numbers chapter 4 judges, for one run.

    Parameters
    ----------
    run : Run
        A finished run with weights.
    activations : sequence of str, default=("relu", "quadratic", "reverse_relu")
        The activations the trained weights are evaluated under.

    Returns
    -------
    dict
        ``swap_<act>_test_acc`` and ``swap_<act>_noisy_acc`` (the same weights under another
        activation), ``concentration_median`` (median share of a neuron's power at its dominant
        frequency), ``cosine_r2_median`` (median share of variance the least-squares cosine
        explains, over u, v and w), ``phase_error`` and ``phase_error_shuffled`` (its chance level,
        :func:`memgen.fourier.shuffled_phase_error`).
    """
    w, task = run.weights, run.config.task
    rec: dict[str, Any] = {}
    for act, m in baselines.activation_swap(w, run.data, tuple(activations)).items():
        rec[f"swap_{act}_test_acc"] = m["test_acc"]
        rec[f"swap_{act}_noisy_acc"] = m["noisy_acc"]
    rec["concentration_median"] = float(np.median(fourier.concentration(w, task)))
    fit = fourier.cosine_fit(w, task)
    rec["cosine_r2_median"] = float(np.median(np.concatenate([fit["r2_u"], fit["r2_v"], fit["r2_w"]])))
    rec["phase_error"] = float(fourier.phase_error(w, task)["mean"])
    rec["phase_error_shuffled"] = float(fourier.shuffled_phase_error(w, task).mean())
    return rec


def random_concentration(task: str, p: int, width: int, seed: int = 0) -> float:
    """Median concentration of a network with random Gaussian weights (the chance level).

    Parameters
    ----------
    task : str
        The task (its frame orders the Fourier basis).
    p : int
        The modulus.
    width : int
        Number of neurons.
    seed : int, default=0
        Seed of the random weights.

    Returns
    -------
    float
        Median over neurons of the share of power at the dominant frequency.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    w = Weights(torch.randn(width, p, generator=g), torch.randn(width, p, generator=g),
                torch.randn(p, width, generator=g), torch.zeros(p), "relu")
    return float(np.median(fourier.concentration(w, task)))


def control_record(run: Run) -> dict[str, Any]:
    """Chapter 5's controls for one run.

    Parameters
    ----------
    run : Run
        A finished run with weights.

    Returns
    -------
    dict
        ``vote_test_acc`` (labels-only majority vote), ``perv_G_test_acc`` (G under the per-vector
        dominant-frequency rule) and ``logit_projection_test_acc``.
    """
    d = run.data
    vote = accuracies_of_predictions(baselines.majority_vote(d), d)
    perv = fourier.filtration_report(run.weights, d, mode="per-vector")["G"]
    proj = accuracies_of_predictions(baselines.logit_projection(run.weights, d), d)
    return {"vote_test_acc": vote["test_acc"], "perv_G_test_acc": perv["test_acc"],
            "logit_projection_test_acc": proj["test_acc"]}



FRACTIONS = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
#: f^G that FF is applied to: the top half of the neurons by strength.
FF_SUB_FRACTION = 0.5


def partition_record(run: Run, scores: Sequence[str] = ("strength", "ipr")) -> dict[str, Any]:
    """Chapter 6's numbers for one run.

    Parameters
    ----------
    run : Run
        A finished run with weights.
    scores : sequence of str, default=("strength", "ipr")
        The neuron scores Algorithm 1 ranks by.

    Returns
    -------
    dict
        The config fields, ``fractions``, ``test_acc``, ``noisy_acc``, ``rho`` (rank correlation
        of the two scores), per score the curves ``<score>_G_test``, ``<score>_G_noisy``,
        ``<score>_R_test``, ``<score>_R_noisy``, ``<score>_random_test``,
        ``<score>_random_noisy`` (lists over ``fractions``) and the needed fractions
        ``<score>_gamma_G``, ``<score>_gamma_R``; ``ff_whole_test`` and ``ff_sub_test`` (FF of
        the whole network and of the top-strength half).
    """
    w, d = run.weights, run.data
    full = evaluate(w, d)
    rec: dict[str, Any] = {**run.config.to_dict(), "fractions": FRACTIONS.tolist(), "test_acc": full["test_acc"],
                           "noisy_acc": full["noisy_acc"], "rho": partition.score_agreement(w, run.config.task)}
    for s in scores:
        c = partition.partition_curves(w, d, s, fractions=FRACTIONS)
        for k in ("G_test", "G_noisy", "R_test", "R_noisy", "random_test", "random_noisy"):
            rec[f"{s}_{k}"] = c[k].tolist()
        need = partition.needed_fractions(c, full)
        rec[f"{s}_gamma_G"], rec[f"{s}_gamma_R"] = need["gamma_G"], need["gamma_R"]
    ff = partition.filtration_of_subnetwork(w, d, FF_SUB_FRACTION, "strength")
    rec["ff_whole_test"], rec["ff_sub_test"] = ff["FF(whole network)"], ff["FF(f^G)"]
    return rec


def mirror_record(run: Run) -> dict[str, Any]:
    """Chapter 7's lookup control for one run.

    Parameters
    ----------
    run : Run
        A finished run with weights.

    Returns
    -------
    dict
        ``mirror_share`` (test pairs a symmetric lookup answers), ``test_no_mirror`` and
        ``G_test_no_mirror`` (raw and G accuracy on the other test pairs), ``n_no_mirror``, and
        ``symmetric_ceiling`` (the best training accuracy a symmetric model can reach).
    """
    d = run.data
    G, _ = fourier.filtration(run.weights, run.config.task)
    acc, n = baselines.accuracy_without_mirror(run.weights.predict(), d)
    gacc, _ = baselines.accuracy_without_mirror(G.predict(), d)
    return {"mirror_share": baselines.mirror_lookup_share(d), "test_no_mirror": acc, "G_test_no_mirror": gacc,
            "n_no_mirror": n, "symmetric_ceiling": baselines.symmetric_ceiling(d)}
