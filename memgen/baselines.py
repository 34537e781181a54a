"""What a trained network is compared with: the analytic cosine network (Gromov 2023), the same
weights evaluated under another activation (the activation swap), and logit-level and
labels-only baselines that any claim of "recovering the rule" has to beat.
"""

from __future__ import annotations

import numpy as np
import torch

from .configs import ACTIVATIONS, validate_task, validate_width
from .fourier import frame_order
from .metrics import accuracies_of_predictions, evaluate
from .model import Weights
from .tasks import Dataset, operate


# ---------------------------------------------------------------------------- activation swap
def activation_swap(weights: Weights, data: Dataset,
                    activations: tuple[str, ...] = ACTIVATIONS) -> dict[str, dict[str, float]]:
    """Accuracies of the trained weights evaluated under each activation."""
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
    """
    validate_task(task, p)
    validate_width(width)
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
    """a ∘ b of every pair (row-major), i.e. the true class."""
    idx = np.arange(p * p)
    return operate(task, idx // p, idx % p, p)


def logit_projection(weights: Weights, data: Dataset) -> np.ndarray:
    """Predictions after keeping only the part of the full-grid logits that depends on a ∘ b.

    Every pair's logit vector is replaced by the mean logit vector of all pairs with the same
    a ∘ b (the orthogonal projection onto functions of a ∘ b, as in Nanda et al.'s restricted
    loss). Uses the task rule, so compare it with :func:`majority_vote`.
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
    """
    cls = class_of_pairs(data.task, data.p)
    counts = np.zeros((data.p, data.p), dtype=np.int64)
    np.add.at(counts, (cls[data.train_idx], data.train_labels), 1)
    vote = np.where(counts.sum(1) > 0, counts.argmax(1), np.arange(data.p))
    return vote[cls]


def baselines_report(weights: Weights, data: Dataset) -> dict[str, dict[str, float]]:
    """Accuracies of the raw network, the logit projection and the labels-only vote."""
    return {"network": evaluate(weights, data),
            "logit projection": accuracies_of_predictions(logit_projection(weights, data), data),
            "majority vote (no network)": accuracies_of_predictions(majority_vote(data), data)}
