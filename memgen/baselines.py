"""What a trained network is compared with: the analytic cosine network (Gromov 2023), the same
weights evaluated under another activation (the activation swap), and logit-level and
labels-only baselines that any claim of "recovering the rule" has to beat.
"""

from __future__ import annotations

import numpy as np
import torch

from .configs import ACTIVATIONS, _choice, _integer, validate_task, validate_width
from .fourier import frame_order
from .metrics import accuracies_of_predictions, evaluate
from .model import Weights
from .tasks import Dataset, operate


# ---------------------------------------------------------------------------- activation swap
def activation_swap(weights: Weights, data: Dataset,
                    activations: tuple[str, ...] = ACTIVATIONS) -> dict[str, dict[str, float]]:
    """Accuracies of the trained weights evaluated under each activation.

    Parameters
    ----------
    weights : Weights
        The trained network.
    data : Dataset
        Its dataset.
    activations : tuple of str, default=ACTIVATIONS
        The activations to evaluate with.

    Returns
    -------
    dict of str to dict
        Each activation to its metrics (see :func:`~memgen.metrics.evaluate`).
    """
    return {act: evaluate(weights, data, act) for act in activations}


# ---------------------------------------------------------------------------- analytic solution
def analytic_weights(task: str, p: int, width: int, seed: int = 0,
                     activation: str = "quadratic") -> Weights:
    """The cosine network of Gromov (2023), in the paper's phase convention.

    Neuron m gets a random frequency omega_m in 1..(n-1)//2 and random phases phi_a, phi_b:
    u_i = cos(2 pi omega i/n + phi_a), v_j = cos(2 pi s omega j/n + phi_b) with s = -1 for
    ``sub`` (negated V frequency), and w_k = cos(2 pi omega k/n + phi_a + phi_b). For ``mul``
    the positions are discrete logs (n = p - 1) and neuron 0 is a zero detector
    (u_0 = v_0 = 1 at token 0, w = width at class 0) so that pairs containing 0 map to class 0.

    Parameters
    ----------
    task : {"add", "sub", "mul"}
        The operation.
    p : int
        The modulus (prime for ``mul``).
    width : int
        Number of neurons M.
    seed : int, default=0
        Seed of the frequencies and phases (together with ``p`` and ``width``), an integer >= 0.
    activation : {"relu", "quadratic", "gelu", "reverse_relu"}, default="quadratic"
        The activation stored with the weights.

    Returns
    -------
    Weights
        The network, with mu = 0.

    Raises
    ------
    ConfigError
        When ``task``, ``p``, ``width``, ``seed`` or ``activation`` is not allowed.
    """
    validate_task(task, p)
    validate_width(width)
    _integer("seed", seed, 0)
    _choice("activation", activation, ACTIVATIONS)
    rng = np.random.default_rng([seed, p, width])
    order = frame_order(task, p)
    n = len(order)
    omega = rng.integers(1, max(2, (n + 1) // 2), size=width)
    pa, pb = rng.uniform(0, 2 * np.pi, width), rng.uniform(0, 2 * np.pi, width)
    pos = np.arange(n)[None, :]
    s = -1.0 if task == "sub" else 1.0
    theta = 2 * np.pi * omega[:, None] * pos / n
    U, V, W = (np.zeros((width, p)) for _ in range(3))
    U[:, order] = np.cos(theta + pa[:, None])
    V[:, order] = np.cos(s * theta + pb[:, None])
    W[:, order] = np.cos(theta + (pa + pb)[:, None])
    if task == "mul":
        U[0], V[0], W[0] = 0.0, 0.0, 0.0
        U[0, 0] = V[0, 0] = 1.0
        W[0, 0] = float(width)
    t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    return Weights(t(U), t(V), t(W.T).contiguous(), torch.zeros(p), activation)


# ---------------------------------------------------------------------------- logit baselines
def class_of_pairs(task: str, p: int) -> np.ndarray:
    """a ∘ b of every pair (row-major), i.e. the true class.

    Parameters
    ----------
    task : str
        The operation.
    p : int
        The modulus.

    Returns
    -------
    numpy.ndarray
        (p*p,) true class of every pair.
    """
    idx = np.arange(p * p)
    return operate(task, idx // p, idx % p, p)


def logit_projection(weights: Weights, data: Dataset) -> np.ndarray:
    """Predictions after keeping only the part of the full-grid logits that depends on a ∘ b.

    Every pair's logit vector is replaced by the mean logit vector of all pairs with the same
    a ∘ b (the orthogonal projection onto functions of a ∘ b, as in Nanda et al.'s restricted
    loss). Uses the task rule, so compare it with :func:`majority_vote`.

    Parameters
    ----------
    weights : Weights
        The network.
    data : Dataset
        Its dataset (task and p).

    Returns
    -------
    numpy.ndarray
        (p*p,) predicted class of every pair.
    """
    cls = class_of_pairs(data.task, data.p)
    logits = weights.logits().numpy()
    mean = np.zeros((data.p, data.p))
    np.add.at(mean, cls, logits)
    mean /= np.bincount(cls, minlength=data.p)[:, None]
    return mean.argmax(1)[cls]


def majority_vote(data: Dataset) -> np.ndarray:
    """Labels-only baseline: for each a ∘ b class, the most common (noisy) training label.

    No network at all; at high noise it can still recover the rule, which is why a logit-level
    extraction proves nothing unless it beats this vote. Classes without training pairs predict
    their own index (ties: smallest label).

    Parameters
    ----------
    data : Dataset
        The dataset; its training labels vote.

    Returns
    -------
    numpy.ndarray
        (p*p,) predicted class of every pair.
    """
    cls = class_of_pairs(data.task, data.p)
    counts = np.zeros((data.p, data.p), dtype=np.int64)
    np.add.at(counts, (cls[data.train_idx], data.train_labels), 1)
    vote = np.where(counts.sum(1) > 0, counts.argmax(1), np.arange(data.p))
    return vote[cls]


def baselines_report(weights: Weights, data: Dataset) -> dict[str, dict[str, float]]:
    """Accuracies of the raw network, the logit projection and the labels-only vote.

    Parameters
    ----------
    weights : Weights
        The network.
    data : Dataset
        Its dataset.

    Returns
    -------
    dict of str to dict
        ``network``, ``logit projection`` and ``majority vote (no network)`` to their metrics.
    """
    return {"network": evaluate(weights, data),
            "logit projection": accuracies_of_predictions(logit_projection(weights, data), data),
            "majority vote (no network)": accuracies_of_predictions(majority_vote(data), data)}


# ---------------------------------------------------------------------------- mirror lookup
def _mirror_label_matches(data: Dataset) -> np.ndarray:
    """(n_test,) bool: the mirror (b, a) of the test pair is a training pair whose training
    label equals the test pair's true label (a symmetric lookup of it would answer right)."""
    p = data.p
    label = np.full(p * p, -1, dtype=np.int64)
    label[data.train_idx] = data.train_labels
    t = data.test_idx
    mirror = data.b[t] * p + data.a[t]
    return label[mirror] == data.true[t]


def mirror_lookup_share(data: Dataset) -> float:
    """Share of test pairs that a symmetric model answers right by lookup alone.

    A model with f(a, b) = f(b, a) (tied embeddings) predicts for the test pair (a, b) whatever it
    learned for its mirror (b, a). When the mirror is a training pair whose label equals the
    test pair's true label (for + and × with ``wrong`` noise: a clean training pair), memorizing
    the training set is enough to answer the test pair. This share is the test accuracy that
    lookup explains, with no rule learned.

    Parameters
    ----------
    data : Dataset
        The run's dataset.

    Returns
    -------
    float
        Fraction of the test pairs whose mirror is such a training pair.
    """
    return float(_mirror_label_matches(data).mean())


def accuracy_without_mirror(pred: np.ndarray, data: Dataset) -> tuple[float, int]:
    """Test accuracy on the pairs a mirror lookup cannot answer: the control that separates
    lookup from the rule (see :func:`mirror_lookup_share`).

    Parameters
    ----------
    pred : numpy.ndarray
        (p*p,) predicted class of every pair.
    data : Dataset
        The run's dataset.

    Returns
    -------
    tuple of (float, int)
        The accuracy on the test pairs whose mirror (b, a) is not a training pair carrying the
        right label, and how many such pairs there are (NaN and 0 when there are none).
    """
    keep = ~_mirror_label_matches(data)
    idx = data.test_idx[keep]
    if idx.size == 0:
        return float("nan"), 0
    return float((np.asarray(pred)[idx] == data.true[idx]).mean()), int(idx.size)


def symmetric_ceiling(data: Dataset) -> float:
    """Highest training accuracy any symmetric model f(a, b) = f(b, a) can reach on ``data``.

    When both (a, b) and (b, a) are training pairs with different labels, a symmetric model can
    fit at most one of them; everything else can be fitted.

    Parameters
    ----------
    data : Dataset
        The run's dataset.

    Returns
    -------
    float
        The ceiling, in (0, 1]; 1 when no mirrored training pairs disagree.
    """
    p = data.p
    label = dict(zip(data.train_idx.tolist(), data.train_labels.tolist()))
    clash = sum(1 for i, y in label.items() if (m := (i % p) * p + i // p) > i and m in label and label[m] != y)
    return 1.0 - clash / len(label)
