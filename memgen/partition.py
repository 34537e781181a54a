"""Neuron-level partition of a network (the paper's Algorithm 1) and its random control.

Scores
------
``ipr``
    IPR(m) = (||w_hat_m||_4 / ||w_hat_m||_2)**4 where w_hat_m is the one-sided DFT magnitude of
    w_m at frequencies 1..n//2 (DC excluded, +-k folded together; the task's frame, so the
    discrete-log frame for ``mul``). A pure cosine has IPR 1, white noise about 2/n. Task-aware.
``ipr_doshi``
    Doshi et al.'s variant: the mean over u_m, v_m, w_m of sum|F|^4 / (sum|F|^2)^2 with F the
    one-sided rfft including DC (token order, no re-indexing).
``strength``
    Str(m) = ||w_m||_inf * phi(||u_m||_inf + ||v_m||_inf). Task-agnostic.

Zero-norm neurons get score 0. Algorithm 1 keeps the top-k neurons by score as the
generalisation subnetwork f^G and the bottom-k' as the memorisation subnetwork f^R.
"""

from __future__ import annotations

import numpy as np

from .fourier import filtration, neuron_vectors
from .metrics import evaluate
from .model import Weights, strength
from .tasks import Dataset

SCORES = ("ipr", "ipr_doshi", "strength")


def _ipr(spec: np.ndarray) -> np.ndarray:
    """sum|F|^4 / (sum|F|^2)^2 along the last axis of magnitudes ``spec`` (0 for zero rows)."""
    p2 = (spec**2).sum(-1)
    p4 = (spec**4).sum(-1)
    return np.where(p2 > 0, p4 / np.where(p2 > 0, p2, 1.0) ** 2, 0.0)


def ipr(weights: Weights, task: str) -> np.ndarray:
    """IPR of every neuron's output vector w_m (see the module docstring), (M,).

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).

    Returns
    -------
    numpy.ndarray
        (M,) IPR of every neuron, in [0, 1].
    """
    w = neuron_vectors(weights, task)["w"]
    return _ipr(np.abs(np.fft.rfft(w, axis=1))[:, 1:])


def ipr_doshi(weights: Weights) -> np.ndarray:
    """Doshi et al.'s IPR: mean over u, v, w of the rfft IPR with DC, (M,).

    Parameters
    ----------
    weights : Weights
        The network (token order, whatever the task).

    Returns
    -------
    numpy.ndarray
        (M,) score of every neuron.
    """
    vecs = (weights.U.numpy(), weights.V.numpy(), weights.W.numpy().T)
    return np.mean([_ipr(np.abs(np.fft.rfft(x, axis=1))) for x in vecs], axis=0)


def scores(weights: Weights, task: str, score: str) -> np.ndarray:
    """The named neuron score, (M,).

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (used by ``ipr``).
    score : {"ipr", "ipr_doshi", "strength"}
        Which score (see the module docstring).

    Returns
    -------
    numpy.ndarray
        (M,) score of every neuron.

    Raises
    ------
    ValueError
        When ``score`` is not one of :data:`SCORES`.
    """
    if score == "ipr":
        return ipr(weights, task)
    if score == "ipr_doshi":
        return ipr_doshi(weights)
    if score == "strength":
        return strength(weights)
    raise ValueError(f"score={score!r} is not allowed; choose one of {', '.join(SCORES)}")


def top_neurons(s: np.ndarray, k: int, largest: bool = True) -> np.ndarray:
    """Indices of the k neurons with the largest (or smallest) score (stable order).

    Parameters
    ----------
    s : numpy.ndarray
        (M,) scores.
    k : int
        How many neurons to keep.
    largest : bool, default=True
        Keep the largest scores (True) or the smallest.

    Returns
    -------
    numpy.ndarray
        The k indices, sorted ascending (ties broken by index).
    """
    order = np.argsort(-s if largest else s, kind="stable")
    return np.sort(order[:k])


def partition_curves(weights: Weights, data: Dataset, score: str = "strength",
                     fractions: np.ndarray | None = None, random_draws: int = 3,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Accuracy of f^G (top fraction), f^R (bottom fraction) and random subsets of equal size.

    Parameters
    ----------
    weights : Weights
        The network.
    data : Dataset
        Its dataset.
    score : {"ipr", "ipr_doshi", "strength"}, default="strength"
        The neuron score that ranks neurons.
    fractions : numpy.ndarray or None, default=None
        Kept fractions of the width (k = max(1, round(f * M)) neurons); None: 0.02 to 1.0.
    random_draws : int, default=3
        Random subsets per fraction.
    seed : int, default=0
        Seed of the random subsets.

    Returns
    -------
    dict of str to numpy.ndarray
        Arrays over ``fractions``: ``G_test``, ``G_noisy``, ``R_test``, ``R_noisy``,
        ``random_test``, ``random_noisy`` (noisy = memorised noisy labels; random = mean over
        ``random_draws`` size-matched random subsets) and ``fractions``.
    """
    if fractions is None:
        fractions = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    s = scores(weights, data.task, score)
    m = weights.width
    rng = np.random.default_rng(seed)
    out = {k: [] for k in ("G_test", "G_noisy", "R_test", "R_noisy", "random_test", "random_noisy")}
    for f in fractions:
        k = max(1, int(round(f * m)))
        for name, idx in (("G", top_neurons(s, k)), ("R", top_neurons(s, k, largest=False))):
            acc = evaluate(weights.subnetwork(idx), data)
            out[f"{name}_test"].append(acc["test_acc"])
            out[f"{name}_noisy"].append(acc["noisy_acc"])
        draws = [evaluate(weights.subnetwork(rng.choice(m, k, replace=False)), data)
                 for _ in range(random_draws)]
        out["random_test"].append(np.mean([d["test_acc"] for d in draws]))
        out["random_noisy"].append(np.mean([d["noisy_acc"] for d in draws]))
    return {"fractions": np.asarray(fractions), **{k: np.asarray(v) for k, v in out.items()}}


def needed_fractions(curves: dict[str, np.ndarray], full: dict[str, float],
                     level: float = 0.9) -> dict[str, float]:
    """The smallest kept fractions that carry each role (gamma_G, gamma_R).

    gamma_G: smallest kept fraction whose f^G reaches ``level`` of the best test accuracy
    (along the curve or of the full network); gamma_R: smallest fraction whose f^R keeps
    ``level`` of the full network's noisy-label accuracy. gamma_G + gamma_R <= 1 means the two
    roles sit in disjoint sets.

    Parameters
    ----------
    curves : dict of str to numpy.ndarray
        As returned by :func:`partition_curves`.
    full : dict of str to float
        The full network's metrics (``test_acc``, ``noisy_acc``).
    level : float, default=0.9
        Fraction of the reference accuracy to reach.

    Returns
    -------
    dict of str to float
        ``gamma_G``, ``gamma_R`` and their ``sum`` (NaN when a curve never reaches its target).
    """
    fr = curves["fractions"]
    target_g = level * max(curves["G_test"].max(), full["test_acc"])
    target_r = level * full["noisy_acc"]
    g = fr[np.argmax(curves["G_test"] >= target_g)] if (curves["G_test"] >= target_g).any() else np.nan
    r = fr[np.argmax(curves["R_noisy"] >= target_r)] if (curves["R_noisy"] >= target_r).any() else np.nan
    return {"gamma_G": float(g), "gamma_R": float(r), "sum": float(g + r)}


def filtration_of_subnetwork(weights: Weights, data: Dataset, fraction: float,
                             score: str = "strength") -> dict[str, float]:
    """Test accuracy of FF applied to the whole network versus FF applied to f^G.

    f^G is the top ``fraction`` of neurons by ``score``; the paper finds FF on the whole network
    better.

    Parameters
    ----------
    weights : Weights
        The network.
    data : Dataset
        Its dataset.
    fraction : float
        Kept fraction of the width for f^G.
    score : {"ipr", "ipr_doshi", "strength"}, default="strength"
        The neuron score that ranks neurons.

    Returns
    -------
    dict of str to float
        Test accuracies of ``f^G``, ``FF(whole network)`` (its G part) and ``FF(f^G)``.
    """
    s = scores(weights, data.task, score)
    k = max(1, int(round(fraction * weights.width)))
    sub = weights.subnetwork(top_neurons(s, k))
    g_full, _ = filtration(weights, data.task)
    g_sub, _ = filtration(sub, data.task)
    return {"f^G": evaluate(sub, data)["test_acc"],
            "FF(whole network)": evaluate(g_full, data)["test_acc"],
            "FF(f^G)": evaluate(g_sub, data)["test_acc"]}


def score_agreement(weights: Weights, task: str) -> float:
    """Spearman rank correlation between the IPR and strength scores.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the IPR frame).

    Returns
    -------
    float
        The correlation of the ranks (1.0 for a single neuron).
    """
    a = np.argsort(np.argsort(ipr(weights, task)))
    b = np.argsort(np.argsort(strength(weights)))
    return float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 else 1.0


__all__ = ["SCORES", "filtration_of_subnetwork", "ipr", "ipr_doshi", "needed_fractions",
           "partition_curves", "score_agreement", "scores", "top_neurons"]
