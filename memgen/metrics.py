"""Accuracy metrics on the subsets the paper tracks.

One function computes them for a stack of runs; training history, filtration, partition, the
CLI and the tests all go through it.

``train_acc``       training samples, against the labels trained on (noisy where corrupted);
``clean_acc``       uncorrupted training samples;
``noisy_acc``       corrupted training samples against their noisy labels (memorization);
``noisy_true_acc``  corrupted training samples against their true labels (the rule);
``test_acc``        held-out pairs (always clean).

A subset that is empty (no noisy samples at noise 0) gives NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .model import Weights
from .tasks import Dataset

METRICS = ("train_acc", "clean_acc", "noisy_acc", "noisy_true_acc", "test_acc")


def _masked_mean(hit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    n = mask.sum(-1)
    s = (hit & mask).sum(-1).double()
    return torch.where(n > 0, s / n.clamp(min=1), torch.full_like(s, float("nan")))


def subset_accuracies(pred: torch.Tensor, true: torch.Tensor, train_idx: torch.Tensor,
                      test_idx: torch.Tensor, labels: torch.Tensor,
                      noisy: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracies of a stack of R runs.

    Parameters
    ----------
    pred : torch.Tensor
        (R, p*p) predicted class of every pair.
    true : torch.Tensor
        (p*p,) true labels.
    train_idx, test_idx : torch.Tensor
        Pair indices of the split.
    labels : torch.Tensor
        (R, n_train) training labels of each run.
    noisy : torch.Tensor
        (R, n_train) bool corruption masks of each run.

    Returns
    -------
    dict of str to torch.Tensor
        Each name in :data:`METRICS` to an (R,) float64 tensor (NaN for an empty subset).
    """
    ptr = pred[:, train_idx]
    hit = ptr == labels
    hit_true = ptr == true[train_idx]
    everything = torch.ones_like(noisy)
    return {
        "train_acc": _masked_mean(hit, everything),
        "clean_acc": _masked_mean(hit, ~noisy),
        "noisy_acc": _masked_mean(hit, noisy),
        "noisy_true_acc": _masked_mean(hit_true, noisy),
        "test_acc": (pred[:, test_idx] == true[test_idx]).double().mean(-1),
    }


def accuracies_of_predictions(pred: np.ndarray, data: Dataset) -> dict[str, float]:
    """The metrics of one prediction vector (p*p,) on ``data``, as floats.

    Parameters
    ----------
    pred : numpy.ndarray
        (p*p,) predicted class of every pair, in row-major order.
    data : Dataset
        The run's dataset.

    Returns
    -------
    dict of str to float
        Each name in :data:`METRICS` to its accuracy (NaN for an empty subset).
    """
    out = subset_accuracies(
        torch.as_tensor(pred)[None], torch.as_tensor(data.true), torch.as_tensor(data.train_idx),
        torch.as_tensor(data.test_idx), torch.as_tensor(data.train_labels)[None],
        torch.as_tensor(data.noisy)[None])
    return {k: float(v[0]) for k, v in out.items()}


def evaluate(weights: Weights, data: Dataset, activation: str | None = None) -> dict[str, float]:
    """The metrics of a network on its dataset (optionally with a swapped activation).

    Parameters
    ----------
    weights : Weights
        The network.
    data : Dataset
        Its dataset.
    activation : str or None, default=None
        Activation to evaluate with; None uses the training activation.

    Returns
    -------
    dict of str to float
        Each name in :data:`METRICS` to its accuracy.
    """
    return accuracies_of_predictions(weights.predict(activation), data)


def test_accuracy_without_zero(pred: np.ndarray, data: Dataset) -> float:
    """Test accuracy over pairs where neither operand is 0 (the periodic part for ``mul``).

    Parameters
    ----------
    pred : numpy.ndarray
        (p*p,) predicted class of every pair.
    data : Dataset
        The run's dataset.

    Returns
    -------
    float
        Accuracy on the test pairs with a != 0 and b != 0.
    """
    idx = data.test_idx[(data.a[data.test_idx] != 0) & (data.b[data.test_idx] != 0)]
    return float((pred[idx] == data.true[idx]).mean())


def json_safe(x: Any) -> Any:
    """Replace NaN/inf floats (nested) by None so the result is valid JSON.

    Parameters
    ----------
    x : Any
        A float, or dicts, lists and tuples of them (other values pass through).

    Returns
    -------
    Any
        The same structure (tuples become lists) with non-finite floats replaced by None.
    """
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x
