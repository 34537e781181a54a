"""Doshi et al.'s phases of a corrupted modular-arithmetic run, and IPR pruning (chapter 12).

Doshi et al., "To grok or not to grok: disentangling generalization and memorization on corrupted
algorithmic datasets" (ICLR 2024), train a quadratic-activation network with MSE over a grid of
weight decay x label corruption and name each cell's phase (coexistence, full or partial
inversion, memorization, forgetting); pruning to the neurons of highest inverse participation
ratio (IPR) removes the memorization. This module holds their setup (:data:`DOSHI`, the sizes
per profile :data:`PHASE_SIZES`), the runs of the chapter (:func:`phase_configs`), the per-run
numbers (:func:`phase_record`, :func:`prune_curves`) and the phase rule (:func:`phase_of`).
The chapter's verdicts and figures are in :mod:`memgen.book.prior_work`; ``python -m memgen
produce`` stores these numbers in every shipped record of the ``phases`` group.

Only torch and numpy (through memgen's core) are needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import partition
from .configs import RunConfig
from .experiments import setup as make_setup
from .metrics import evaluate
from .tasks import Dataset
from .train import Run

#: Seeds of the pruning cell (the grid uses the first).
SEEDS = (0, 1, 2)

#: Doshi et al.'s training setup (their §2): x² activation, MSE on one-hot targets, their
#: initialisation, no output bias, AdamW lr 1e-2 with betas (0.9, 0.98), half the pairs for
#: training, labels corrupted uniformly over all P classes.
DOSHI = dict(activation="quadratic", loss="mse", init="doshi", bias=False, optimizer="adamw", lr=1e-2,
             beta1=0.9, beta2=0.98, train_frac=0.5, noise_mode="any")

#: Per profile: modulus, width, steps, the weight-decay x corruption grid, and the cell
#: (weight decay, corruption) where IPR pruning is judged over ``seeds``. Doshi et al. prune a
#: network that has memorized its corrupted labels; at ``paper`` the cell is the grid's most clearly
#: coexistence cell, chosen by seed 0 of the H200-trained grid (test 0.992, corrupted labels
#: memorized 0.989) before any pruning curve at it existed; the first cell chosen, wd = 5 and
#: α = 0.3, turned out fully inverted there, nothing to prune. The CPU re-run of seed 0 that carries
#: the curves replaced that record (test 0.992, memorized 0.986).
PHASE_SIZES: dict[str, dict[str, Any]] = {
    "test": dict(p=13, width=48, steps=300, weight_decays=(0.0, 5.0, 20.0), noises=(0.0, 0.3),
                 prune_wd=5.0, prune_noise=0.3),
    "book": dict(p=31, width=128, steps=1000, weight_decays=(1.0, 5.0, 15.0, 40.0),
                 noises=(0.0, 0.2, 0.4, 0.6), prune_wd=5.0, prune_noise=0.2),
    "paper": dict(p=97, width=500, steps=2000, weight_decays=(0.0, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0),
                  noises=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), prune_wd=1.0, prune_noise=0.4),
}
PHASE_SIZES["paper20k"] = PHASE_SIZES["paper"]  # the Doshi et al. grid has no shorter paper-scale variant

#: Test accuracy at or above which a cell generalizes.
GENERALIZES = 0.9
#: Accuracy on the corrupted labels at or above which a cell memorizes them; accuracy on their
#: true labels at or above which the corruption is fully inverted.
MEMORIZES = INVERTS = 0.9
#: Training accuracy at or above which a non-generalizing cell has memorized its training set.
FITS_TRAIN = 0.9
#: Test accuracy below which a cell does not generalize (memorization, forgetting); between it
#: and :data:`GENERALIZES` a cell is *intermediate*.
FAILS = 0.5
PHASES = ("coexistence", "full inversion", "partial inversion", "memorization", "forgetting")
#: Kept fractions of the width for the IPR pruning curves.
PRUNE_FRACTIONS = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05)


def corrupted_dataset(data: Dataset) -> Dataset:
    """``data`` with only the labels that were actually changed counted as corrupted.

    Under ``noise_mode="any"`` a corrupted label keeps its true value with probability 1/P; such a
    sample is correctly labelled and is counted as clean here, so that ``noisy_acc`` is the
    memorization of wrong labels and ``noisy_true_acc`` their inversion.

    Parameters
    ----------
    data : Dataset
        A run's dataset.

    Returns
    -------
    Dataset
        The same data with ``noisy`` restricted to labels different from the true ones.
    """
    return dataclasses.replace(data, noisy=data.noisy & (data.train_labels != data.train_true))


def phase_record(run: Run) -> dict[str, Any]:
    """Chapter 12's numbers for one run: its config fields and the accuracies of its final network.

    Parameters
    ----------
    run : Run
        A finished run.

    Returns
    -------
    dict
        Config fields plus ``test_acc``, ``train_acc`` (labels as trained), ``clean_acc``,
        ``mem_acc`` (changed labels, as corrupted), ``inv_acc`` (changed labels, true value),
        ``n_test``, ``n_changed``, ``n_clean``, and ``phase`` / ``phase_note`` from
        :func:`phase_of`.
    """
    d = corrupted_dataset(run.data)
    m = evaluate(run.weights, d)
    rec = {**run.config.to_dict(), "test_acc": m["test_acc"], "train_acc": m["train_acc"], "clean_acc": m["clean_acc"],
           "mem_acc": m["noisy_acc"], "inv_acc": m["noisy_true_acc"], "n_test": int(len(d.test_idx)),
           "n_changed": int(d.noisy.sum()), "n_clean": int((~d.noisy).sum())}
    rec["phase"], rec["phase_note"] = phase_of(rec)
    return rec


def phase_of(rec: dict[str, Any]) -> tuple[str, str]:
    """The phase of one cell by the documented thresholds, and a note on chance-level numbers.

    Rule (test = test accuracy, mem = accuracy on the changed labels as corrupted, inv = on
    their true values, clean = on the uncorrupted training labels, train = on all training
    labels as trained):

    * test >= :data:`GENERALIZES`: *coexistence* if mem >= :data:`MEMORIZES`, *full inversion*
      if inv >= :data:`INVERTS`, else *partial inversion*; with no corrupted label (α = 0) the
      cell is *generalization (α = 0)*;
    * test < :data:`FAILS`: *memorization* if train >= :data:`FITS_TRAIN`, *forgetting* if
      clean < :data:`FITS_TRAIN` (the clean training labels are not even fitted), else
      *unclassified*;
    * otherwise (:data:`FAILS` <= test < :data:`GENERALIZES`): *intermediate*.

    Parameters
    ----------
    rec : dict
        A :func:`phase_record` (``p``, the accuracies and the counts).

    Returns
    -------
    phase : str
        The phase's name.
    note : str
        Which accuracies the name rests on are at chance (their 95% Wilson interval contains
        1/P), e.g. ``test at chance``; empty when none.
    """
    from .verdicts import at_chance

    ch = 1.0 / rec["p"]
    test, mem, inv = rec["test_acc"], rec["mem_acc"], rec["inv_acc"]
    clean, train = rec["clean_acc"], rec["train_acc"]
    noisy = rec["n_changed"] > 0
    if test >= GENERALIZES:
        if not noisy:
            name = "generalization (α = 0)"
        elif mem >= MEMORIZES:
            name = "coexistence"
        elif inv >= INVERTS:
            name = "full inversion"
        else:
            name = "partial inversion"
    elif test >= FAILS:
        name = "intermediate"
    elif train >= FITS_TRAIN:
        name = "memorization"
    elif clean < FITS_TRAIN:
        name = "forgetting"
    else:
        name = "unclassified"
    flags = [("test", test, rec["n_test"]), ("clean", clean, rec["n_clean"])]
    if noisy:
        flags += [("memorized", mem, rec["n_changed"]), ("inverted", inv, rec["n_changed"])]
    at = [k for k, v, n in flags if at_chance(v, n, ch)]
    return name, (", ".join(at) + " at chance") if at else ""


def phase_configs(profile: str, seeds: Sequence[int] = SEEDS) -> tuple[list[RunConfig], list[RunConfig]]:
    """Chapter 12's runs at its default parameters under ``profile``.

    Parameters
    ----------
    profile : {"test", "book", "paper"}
        A key of :data:`PHASE_SIZES`.
    seeds : sequence of int, default=SEEDS
        Seeds of the pruning cell; the grid uses the first.

    Returns
    -------
    grid : list of RunConfig
        One run per (weight decay, corruption) cell, weight-decay-major.
    prune : list of RunConfig
        The pruning cell, one run per seed.
    """
    sizes = PHASE_SIZES[profile]
    seeds = list(seeds)
    S = make_setup(profile, p=sizes["p"], width=sizes["width"], steps=sizes["steps"], seeds=seeds,
                   noise=sizes["prune_noise"], weight_decay=sizes["prune_wd"], **DOSHI)
    grid = [S.config(weight_decay=wd, noise=a, seed=seeds[0]) for wd in sizes["weight_decays"]
            for a in sizes["noises"]]
    return grid, [S.config(seed=s) for s in seeds]


def prune_curves(run: Run, fractions: Sequence[float] = PRUNE_FRACTIONS, random_draws: int = 3) -> dict[str, Any]:
    """Accuracies after keeping the top-IPR neurons (Doshi et al.'s IPR), and random subsets.

    Parameters
    ----------
    run : Run
        A finished run.
    fractions : sequence of float, default=PRUNE_FRACTIONS
        Kept fractions of the width.
    random_draws : int, default=3
        Random subsets per fraction (the control; their mean is reported).

    Returns
    -------
    dict
        Lists over ``fractions``: ``ipr_test``, ``ipr_mem``, ``ipr_inv``, ``random_test``,
        ``random_mem``; and ``seed``.
    """
    d = corrupted_dataset(run.data)
    w = run.weights
    s = partition.scores(w, d.task, "ipr_doshi")
    rng = np.random.default_rng([run.config.seed, 7])
    out: dict[str, Any] = {"fractions": list(fractions), "seed": run.config.seed}
    for k in ("ipr_test", "ipr_mem", "ipr_inv", "random_test", "random_mem"):
        out[k] = []
    for f in fractions:
        k = max(1, int(round(f * w.width)))
        m = evaluate(w.subnetwork(partition.top_neurons(s, k)), d)
        out["ipr_test"].append(m["test_acc"])
        out["ipr_mem"].append(m["noisy_acc"])
        out["ipr_inv"].append(m["noisy_true_acc"])
        draws = [evaluate(w.subnetwork(rng.choice(w.width, k, replace=False)), d) for _ in range(random_draws)]
        out["random_test"].append(float(np.mean([x["test_acc"] for x in draws])))
        out["random_mem"].append(float(np.mean([x["noisy_acc"] for x in draws])))
    return out
