"""Progress measures of grokking (Nanda et al. 2023), for the two-layer network.

Nanda et al. ("Progress measures for grokking via mechanistic interpretability", ICLR 2023)
track, over training, quantities that move long before the test accuracy does. This module
computes them for memgen's networks; :func:`measures` returns all of them for one network.

Conventions
-----------
*Logit components.* For ``add`` the rule's logits are, in the trained network, close to
sum_omega cos(2 pi omega (a + b - c) / p) over a few *key frequencies* omega (``sub``: a - b - c).
The key-frequency component of a logit tensor L[a, b, c] is its orthogonal projection onto the
span of cos and sin of 2 pi omega r / p, r = (a +- b - c) mod p, for the key omegas. These
functions depend on (a, b, c) only through r, and every value of r is taken by p**2 triples, so
the projection is: average L over each level set of r (a length-p sequence g), keep the +-omega
Fourier bins of g, and read the result back at r(a, b, c) (:func:`key_component`).

*The lookup control.* The level-set average runs over all p**2 pairs, the training pairs
included, whose logits a network fits to its labels. A lookup table of the training labels,
which holds no rule, therefore already has restricted logits that point at the true class of
most test pairs wherever most training labels are right (:func:`lookup_restricted_acc`); a
restricted accuracy shows the rule only above this control's.

*Held-out restricted logits.* The same projection with the level sets averaged over the *test*
pairs only (``pairs=data.test_idx``), plus each class's mean logit over those pairs: no training
label enters, so a lookup table's are all zero (chance) and what they predict is the rule carried
by the network's answers on pairs it never saw. ``measures`` reports both; chapter 13 judges the
held-out ones.

*Restricted loss* (Nanda's "restricted loss", ``calculate_trig_loss`` in their code): the loss of
the logits reduced to the key-frequency component plus, for each class c, the mean logit over all
pairs (their ``bias_correction``), on all p**2 pairs against the *true* labels. Low when the
Fourier rule alone predicts the answers.

*Excluded loss* (their ``excluded_loss``): the loss of the logits with the key-frequency
component removed, on the *training* pairs against the labels trained on (noisy where corrupted).
High when the network's fit of its training set relies on the rule; low when it is carried by
memorization.

Nanda et al. project each class's logits onto cos/sin(omega (a + b)) (their
``get_component_cos_xpy``); the projection here onto cos/sin(omega (a + b - c)) is the narrower
one their ``calculate_coefficients`` uses, so it keeps only what the cosine rule itself explains.
Their reference code is ``mechanistic-interpretability-grokking/progress-measures-paper``
(``transformers.py``: ``calculate_trig_loss``, ``calculate_excluded_loss``, ``calculate_key_freqs``;
``helpers.py``: ``test_logits``).

*Sparsity of the spectrum.* :func:`gini` of the per-frequency norms of the embedding's Fourier
components (:func:`embedding_spectrum`): near 1 when the embedding uses a few frequencies, near 0
when its power is spread evenly. Nanda et al. plot the same for their embedding and unembedding.

*Key frequencies.* :func:`spectrum_key_frequencies` reads them off the final network's logits:
the power spectrum of their level-set means over the test pairs (:func:`rule_spectrum`), strongest
frequency first, until the chosen ones hold ``KEY_POWER`` (90%) of it. Only the power enters the
choice, not the phase, so it cannot by itself make the restricted logits point at the right class.
Nanda et al. use the dominant frequencies of the MLP neurons' activations; memgen's wider networks
spread their neurons over many frequencies (at P = 113, M = 512 no frequency but one per seed
gathers 5% of the neurons' strength-weighted votes), so a share-of-votes rule finds too few.

Only ``add`` and ``sub`` have an a +- b - c component; ``mul`` is refused by the loss functions
(its rule lives in the discrete-log frame and pairs containing 0 follow no frequency).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import train as train_module
from .checkpoint import StoreError, atomic_save, checked_load
from .configs import ConfigError, RunConfig, content_key
from .experiments import setup as make_setup
from .fourier import frame_order
from .model import Weights, weights_of_run
from .store import RunStore, default_store
from .tasks import Dataset, make_dataset

LOSSES = ("ce", "mse")
#: Tasks whose rule is a component cos(omega (a +- b - c)) of the logits.
COMPONENT_TASKS = ("add", "sub")
#: Share of the rule direction's power the key frequencies hold (:func:`spectrum_key_frequencies`).
KEY_POWER = 0.9


# ---------------------------------------------------------------------------- validation
def _check_task(task: str) -> int:
    """The sign s of b in r = a + s b - c; refuse tasks without such a component."""
    if task not in COMPONENT_TASKS:
        raise ValueError(f"task={task!r} is not allowed here; the a ± b − c logit component exists "
                         f"for {', '.join(COMPONENT_TASKS)} only")
    return -1 if task == "sub" else 1


def _check_freqs(freqs, p: int) -> np.ndarray:
    f = np.atleast_1d(np.asarray(freqs))
    if f.ndim != 1 or (f.size and not np.issubdtype(f.dtype, np.integer)):
        raise ValueError(f"freqs={freqs!r} is not allowed; give a 1-D list of integers in 1..{p // 2}")
    if f.size and (f.min() < 1 or f.max() > p // 2):
        raise ValueError(f"freqs={freqs!r} is not allowed; every frequency must lie in 1..{p // 2}")
    return np.unique(f.astype(np.int64))


def _check_logits(logits, p: int | None = None) -> np.ndarray:
    x = logits.detach().cpu().numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits)
    if x.ndim != 2 or x.shape[0] != x.shape[1] ** 2 or (p is not None and x.shape[1] != p):
        raise ValueError(f"logits of shape {x.shape} are not allowed; give (p*p, p) logits of all pairs "
                         "in row-major order" + (f" with p = {p}" if p is not None else ""))
    if not np.all(np.isfinite(x)):
        raise ValueError("logits are not allowed to contain NaN or inf")
    return x.astype(np.float64)


def _check_pairs(pairs, p: int) -> np.ndarray:
    """Row indices of the pairs to average over (all p*p when None)."""
    if pairs is None:
        return np.arange(p * p)
    rows = np.asarray(pairs)
    if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer) or rows.min() < 0 \
            or rows.max() >= p * p:
        raise ValueError(f"pairs of shape {rows.shape} are not allowed; give a non-empty 1-D array of pair indices "
                         f"in 0..{p * p - 1}")
    return rows


def _check_share(value, name: str) -> None:
    """Refuse a share outside (0, 1] (a ConfigError, which is a ValueError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{name}={value!r} is not allowed; it must lie in (0, 1]")


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not allowed; choose one of {', '.join(LOSSES)}")


# ---------------------------------------------------------------------------- components
def residue(task: str, p: int) -> np.ndarray:
    """r = (a ± b − c) mod p of every (pair, class), (p*p, p), pairs in row-major order.

    Parameters
    ----------
    task : {"add", "sub"}
        The operation (``sub`` uses a − b − c).
    p : int
        The modulus, >= 2.

    Returns
    -------
    numpy.ndarray
        (p*p, p) int64; the true class c of a pair is the one with r = 0.

    Raises
    ------
    ValueError
        When ``task`` has no such component or ``p`` < 2.
    """
    s = _check_task(task)
    if not isinstance(p, (int, np.integer)) or p < 2:
        raise ValueError(f"p={p!r} is not allowed; it must be an integer >= 2")
    a, b = np.divmod(np.arange(p * p), p)
    return (a[:, None] + s * b[:, None] - np.arange(p)[None, :]) % p


def _level_means(logits, task: str, pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The checked logits, the pairs averaged over, the residues a +- b - c, and the (p,) mean
    logit over each level set of the residue, taken over those pairs."""
    x = _check_logits(logits)
    p = x.shape[1]
    r = residue(task, p)
    rows = _check_pairs(pairs, p)
    return x, rows, r, np.bincount(r[rows].ravel(), weights=x[rows].ravel(), minlength=p) / len(rows)


def key_component(logits: np.ndarray | torch.Tensor, task: str, freqs: Sequence[int] | np.ndarray,
                  pairs: np.ndarray | None = None) -> np.ndarray:
    """The part of ``logits`` spanned by cos and sin of 2 pi omega (a ± b − c) / p, omega in ``freqs``.

    Parameters
    ----------
    logits : numpy.ndarray or torch.Tensor
        (p*p, p) logits of all pairs in row-major order.
    task : {"add", "sub"}
        The operation.
    freqs : sequence of int
        Frequencies in 1..p//2 (duplicates are ignored; empty: the component is zero).
    pairs : numpy.ndarray or None, default=None
        Indices of the pairs whose logits are averaged over each level set (None: all p*p; the
        held-out variant passes the test pairs). Every pair holds each residue once, so every
        level set gets one value per pair.

    Returns
    -------
    numpy.ndarray
        (p*p, p) float64 projection onto that span, read at every pair: with ``pairs=None`` the
        orthogonal projection of ``logits`` (zero mean over the pairs for every class).

    Raises
    ------
    ValueError
        When the logits are not (p*p, p) and finite, the task has no such component, or a
        frequency lies outside 1..p//2.
    """
    x, _, r, g = _level_means(logits, task, pairs)
    p = x.shape[1]
    f = _check_freqs(freqs, p)
    spec = np.fft.rfft(g)
    keep = np.zeros_like(spec)
    keep[f] = spec[f]
    return np.fft.irfft(keep, n=p)[r]


def restricted_logits(logits: np.ndarray | torch.Tensor, task: str, freqs: Sequence[int] | np.ndarray,
                      pairs: np.ndarray | None = None) -> np.ndarray:
    """The key-frequency component plus each class's mean logit, both over ``pairs``.

    Parameters
    ----------
    logits : numpy.ndarray or torch.Tensor
        (p*p, p) logits of all pairs in row-major order.
    task : {"add", "sub"}
        The operation.
    freqs : sequence of int
        The key frequencies.
    pairs : numpy.ndarray or None, default=None
        The pairs whose logits are averaged (None: all; ``data.test_idx``: held out, no training
        label enters).

    Returns
    -------
    numpy.ndarray
        (p*p, p) restricted logits (Nanda et al.'s trig logits with bias correction).
    """
    x = _check_logits(logits)
    rows = _check_pairs(pairs, x.shape[1])
    return key_component(x, task, freqs, pairs) + x[rows].mean(0, keepdims=True)


def excluded_logits(logits: np.ndarray | torch.Tensor, task: str, freqs: Sequence[int] | np.ndarray) -> np.ndarray:
    """The logits with their key-frequency component removed.

    Parameters
    ----------
    logits : numpy.ndarray or torch.Tensor
        (p*p, p) logits of all pairs in row-major order.
    task : {"add", "sub"}
        The operation.
    freqs : sequence of int
        The key frequencies.

    Returns
    -------
    numpy.ndarray
        (p*p, p) logits minus :func:`key_component`.
    """
    x = _check_logits(logits)
    return x - key_component(x, task, freqs)


def logit_loss(logits: np.ndarray, labels: np.ndarray, loss: str = "ce") -> float:
    """Mean loss of logits against labels: cross-entropy, or squared error to one-hot targets.

    Parameters
    ----------
    logits : numpy.ndarray
        (N, p) logits.
    labels : numpy.ndarray
        (N,) integer labels in 0..p-1.
    loss : {"ce", "mse"}, default="ce"
        ``ce``: mean cross-entropy (float64); ``mse``: mean over samples and classes of the
        squared error to the one-hot target (memgen's training loss).

    Returns
    -------
    float
        The loss (NaN when ``labels`` is empty).

    Raises
    ------
    ValueError
        When ``loss`` is not allowed or the shapes do not match.
    """
    _check_loss(loss)
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"logits {tuple(x.shape)} and labels {tuple(y.shape)} do not match; give (N, p) "
                         "and (N,)")
    if len(y) == 0:
        return float("nan")
    if loss == "ce":
        return float(F.cross_entropy(x, y))
    return float((x - F.one_hot(y, x.shape[1]).double()).square().mean())


def restricted_loss(logits: np.ndarray | torch.Tensor, data: Dataset, freqs: Sequence[int] | np.ndarray,
                    loss: str = "ce") -> float:
    """Loss of the restricted logits on all p**2 pairs against the true labels.

    Parameters
    ----------
    logits : numpy.ndarray or torch.Tensor
        (p*p, p) logits of all pairs of ``data``.
    data : Dataset
        The run's dataset (task and true labels).
    freqs : sequence of int
        The key frequencies.
    loss : {"ce", "mse"}, default="ce"
        The loss (see :func:`logit_loss`).

    Returns
    -------
    float
        The restricted loss.
    """
    _check_loss(loss)
    x = _check_logits(logits, data.p)
    return logit_loss(restricted_logits(x, data.task, freqs), data.true, loss)


def excluded_loss(logits: np.ndarray | torch.Tensor, data: Dataset, freqs: Sequence[int] | np.ndarray,
                  loss: str = "ce") -> float:
    """Loss of the excluded logits on the training pairs against the labels trained on.

    Parameters
    ----------
    logits : numpy.ndarray or torch.Tensor
        (p*p, p) logits of all pairs of ``data``.
    data : Dataset
        The run's dataset (task, split and training labels, noisy where corrupted).
    freqs : sequence of int
        The key frequencies.
    loss : {"ce", "mse"}, default="ce"
        The loss (see :func:`logit_loss`).

    Returns
    -------
    float
        The excluded loss.
    """
    _check_loss(loss)
    x = _check_logits(logits, data.p)
    ex = excluded_logits(x, data.task, freqs)
    return logit_loss(ex[data.train_idx], data.train_labels, loss)


# ---------------------------------------------------------------------------- sparsity
def gini(x: np.ndarray | list[float]) -> float:
    """Gini coefficient of non-negative values: sum_ij |x_i - x_j| / (2 n sum x).

    0 when all values are equal, (n - 1) / n when one value holds everything.

    Parameters
    ----------
    x : array-like
        1-D non-negative values (at least one).

    Returns
    -------
    float
        The coefficient in [0, 1); 0 for an all-zero input.

    Raises
    ------
    ValueError
        When ``x`` is empty, not 1-D, negative or not finite.
    """
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"x of shape {v.shape} is not allowed; give a non-empty 1-D array")
    if not np.all(np.isfinite(v)) or (v < 0).any():
        raise ValueError("x is not allowed to hold negative, NaN or infinite values")
    total = v.sum()
    if total == 0:
        return 0.0
    s = np.sort(v)
    n = v.size
    return float(((2 * np.arange(1, n + 1) - n - 1) * s).sum() / (n * total))


def embedding_spectrum(weights: Weights, task: str, which: str = "embed") -> np.ndarray:
    """Norm of the Fourier components of the embedding (or unembedding) per frequency.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame, see :func:`memgen.fourier.frame_order`).
    which : {"embed", "unembed"}, default="embed"
        ``embed``: the input vectors u_m and v_m of all neurons (the embedding U, V);
        ``unembed``: the output vectors w_m (W).

    Returns
    -------
    numpy.ndarray
        (n//2,) for frequencies 1..n//2: sqrt of the summed power of the +-k bins over all
        neurons (the DC term is left out).

    Raises
    ------
    ValueError
        When ``which`` is not allowed.
    """
    if which not in ("embed", "unembed"):
        raise ValueError(f"which={which!r} is not allowed; choose 'embed' or 'unembed'")
    order = frame_order(task, weights.p)
    mats = (weights.U, weights.V) if which == "embed" else (weights.W.T,)
    power = sum((np.abs(np.fft.rfft(m.numpy().astype(np.float64)[:, order], axis=1)) ** 2).sum(0)
                for m in mats)
    return np.sqrt(power[1:])


def spectrum_gini(weights: Weights, task: str, which: str = "embed") -> float:
    """:func:`gini` of :func:`embedding_spectrum`: how few frequencies the weights use.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).
    which : {"embed", "unembed"}, default="embed"
        The embedding (U, V) or the unembedding (W).

    Returns
    -------
    float
        The Gini coefficient of the per-frequency norms.
    """
    return gini(embedding_spectrum(weights, task, which))


# ---------------------------------------------------------------------------- key frequencies
def rule_spectrum(logits: np.ndarray | torch.Tensor, task: str, pairs: np.ndarray | None = None) -> np.ndarray:
    """Power of every frequency in the logits' rule direction: the spectrum of their mean over each
    level set of a ± b − c (the part of the logits that depends on the answer's residue only).

    Parameters
    ----------
    logits : numpy.ndarray or torch.Tensor
        (p*p, p) logits of all pairs in row-major order.
    task : {"add", "sub"}
        The operation.
    pairs : numpy.ndarray or None, default=None
        The pairs averaged over (None: all; ``data.test_idx``: held out, no training label enters).

    Returns
    -------
    numpy.ndarray
        (p//2 + 1,) power of the level-set means at each frequency (index = frequency), in
        proportion to the variance it carries (squared rfft magnitudes, doubled below Nyquist for
        the +-omega pair); index 0, the constant, and powers at the level of rounding are 0.
    """
    x, rows, _, g = _level_means(logits, task, pairs)
    p = x.shape[1]
    power = np.abs(np.fft.rfft(g)) ** 2
    power[1:(p + 1) // 2] *= 2  # each bin below Nyquist stands for +-omega: power in proportion to variance
    power[0] = 0.0
    power[power < (1e-12 * p * np.abs(x[rows]).max()) ** 2] = 0.0  # rounding, not a rule (e.g. class-only logits)
    return power


def spectrum_key_frequencies(logits: np.ndarray | torch.Tensor, task: str, pairs: np.ndarray | None = None,
                             power: float = KEY_POWER) -> np.ndarray:
    """The fewest frequencies of :func:`rule_spectrum` that carry at least ``power`` of its power.

    Nanda et al. read the key frequencies off the trained network's own Fourier spectrum; here
    they are the strongest frequencies of the logits' rule direction, taken strongest first until
    they hold ``power`` of it. Only the power enters, not the phase, so the choice cannot by
    itself make the restricted logits point at the right class.

    Parameters
    ----------
    logits : numpy.ndarray or torch.Tensor
        (p*p, p) logits of all pairs (usually of the final network).
    task : {"add", "sub"}
        The operation.
    pairs : numpy.ndarray or None, default=None
        The pairs whose logits are read (None: all; the chapter passes the test pairs).
    power : float, default=KEY_POWER
        Share of the rule direction's power the key frequencies hold, in (0, 1].

    Returns
    -------
    numpy.ndarray
        Sorted int64 frequencies (the strongest one at least; empty when the rule direction is
        flat, e.g. all logits equal).

    Raises
    ------
    ValueError
        When ``power`` is not in (0, 1] or the logits are not (p*p, p) and finite.
    """
    _check_share(power, "power")
    return _strongest(rule_spectrum(logits, task, pairs), power)


def _strongest(spec: np.ndarray, power: float) -> np.ndarray:
    """The fewest frequencies of the spectrum ``spec`` (index = frequency) holding ``power`` of it."""
    total = spec.sum()
    if total <= 0:
        return np.array([], dtype=np.int64)
    order = np.argsort(-spec[1:], kind="stable") + 1
    k = int(np.searchsorted(np.cumsum(spec[order]) / total, power - 1e-12)) + 1
    return np.sort(order[:k]).astype(np.int64)


def lookup_restricted_acc(data: Dataset, freqs: Sequence[int] | np.ndarray) -> float:
    """The restricted logits' test accuracy of a lookup table of the training labels: the control.

    The table holds no rule: logit 1 for the label each training pair was trained on, 0
    everywhere else (every test pair included). Its restricted logits still average those labels
    over each level set of a +- b - c, so where most training labels are right they point at the
    true class of the test pairs too. A network's restricted accuracy says the rule has formed only
    where it exceeds this control's.

    Parameters
    ----------
    data : Dataset
        The run's dataset (``add`` or ``sub``).
    freqs : sequence of int
        The key frequencies.

    Returns
    -------
    float
        Accuracy on the test pairs of :func:`restricted_logits` of the table.
    """
    x = np.zeros((data.p**2, data.p))
    x[data.train_idx, data.train_labels] = 1.0
    r = restricted_logits(x, data.task, freqs)
    return float((r[data.test_idx].argmax(1) == data.true[data.test_idx]).mean())


# ---------------------------------------------------------------------------- all at once
def measures(weights: Weights, data: Dataset, freqs: Sequence[int] | np.ndarray, loss: str = "ce") -> dict[str, float]:
    """Every progress measure of one network.

    Parameters
    ----------
    weights : Weights
        The network (e.g. at one step of training).
    data : Dataset
        Its dataset (``add`` or ``sub``).
    freqs : sequence of int
        The key frequencies (usually from the final network, :func:`spectrum_key_frequencies`).
    loss : {"ce", "mse"}, default="ce"
        The loss of the restricted, excluded and full logits.

    Returns
    -------
    dict of str to float
        ``restricted_loss``, ``excluded_loss``, ``train_loss`` (full logits, training pairs
        against the labels trained on), ``test_loss`` (full logits, test pairs),
        ``restricted_test_acc`` (restricted logits' accuracy on the test pairs),
        ``heldout_test_acc`` and ``heldout_loss`` (accuracy and loss on the test pairs of the
        held-out restricted logits, averaged over the test pairs only),
        ``excluded_train_acc`` (excluded logits' accuracy on the training labels),
        ``gini_embed``, ``gini_unembed`` and ``key_share`` (share of the logits' variance over
        pairs that the key component explains).
    """
    _check_loss(loss)
    x = _check_logits(weights.logits(), data.p)
    comp = key_component(x, data.task, freqs)
    mean = x.mean(0, keepdims=True)
    restricted, excluded = comp + mean, x - comp
    tr, te = data.train_idx, data.test_idx
    held = restricted_logits(x, data.task, freqs, te)[te]
    var = ((x - mean) ** 2).sum()
    return {
        "restricted_loss": logit_loss(restricted, data.true, loss),
        "excluded_loss": logit_loss(excluded[tr], data.train_labels, loss),
        "train_loss": logit_loss(x[tr], data.train_labels, loss),
        "test_loss": logit_loss(x[te], data.true[te], loss),
        "restricted_test_acc": float((restricted[te].argmax(1) == data.true[te]).mean()),
        "heldout_test_acc": float((held.argmax(1) == data.true[te]).mean()),
        "heldout_loss": logit_loss(held, data.true[te], loss),
        "excluded_train_acc": float((excluded[tr].argmax(1) == data.train_labels).mean()),
        "gini_embed": spectrum_gini(weights, data.task, "embed"),
        "gini_unembed": spectrum_gini(weights, data.task, "unembed"),
        "key_share": float((comp**2).sum() / var) if var > 0 else 0.0,
    }


__all__ = ["COMPONENT_TASKS", "LOSSES", "embedding_spectrum", "excluded_logits", "excluded_loss", "gini",
           "key_component", "logit_loss", "lookup_restricted_acc", "measures", "residue", "restricted_logits",
           "restricted_loss", "rule_spectrum", "spectrum_gini", "spectrum_key_frequencies", "FORMED", "KEY_POWER",
           "MAX_SNAPSHOTS",
           "PROGRESS_SIZES", "RISEN", "first_step", "measured_runs", "progress_configs", "progress_record",
           "snapshot_steps", "step_gap"]


# ---------------------------------------------------------------------------- over training (chapter 13)
#: Per profile: modulus, width, steps, learning rate, weight decay and the noisy run's α.
PROGRESS_SIZES: dict[str, dict[str, Any]] = {
    "test": dict(p=13, width=64, steps=300, lr=1e-2, weight_decay=1.0, noise=0.3),
    "book": dict(p=31, width=128, steps=2000, lr=1e-2, weight_decay=1.0, noise=0.3),
    "paper": dict(p=113, width=512, steps=20_000, lr=1e-3, weight_decay=1.0, noise=0.3),
}
PROGRESS_SIZES["paper20k"] = PROGRESS_SIZES["paper"]  # chapter 13 trains 20k steps at the paper scale anyway
#: Accuracy at which the rule counts as formed (held-out restricted logits on the test pairs) and
#: the corrupted labels as memorized (also reported: the first step the test accuracy reaches it).
FORMED = 0.9
#: Test accuracy at which the network's generalization counts as under way (half the test pairs).
RISEN = 0.5
#: Most snapshots measured per run (thinned evenly from the recorded steps).
MAX_SNAPSHOTS = 48
#: Bumped when the measures change, so cached curves are recomputed.
PROGRESS_VERSION = 3


@contextlib.contextmanager
def _snapshots(keep: set[int], out: dict[int, dict[str, Any]]) -> Iterator[None]:
    """While active, copy the stacked parameters into ``out[step]`` at every recorded step in ``keep``.

    The training loop records history at fixed steps (:func:`memgen.train.record_steps`) by calling
    its ``_record``; this wraps that call and leaves training itself untouched (same numbers, same
    run keys). A callback option in :func:`memgen.train.train_batch` would replace this wrapper.
    """
    original = train_module._record

    def record(step, fwd, params, *args, **kwargs):
        original(step, fwd, params, *args, **kwargs)
        if step in keep:
            out[step] = {k: v.detach().float().cpu().clone() for k, v in params.items()}

    train_module._record = record
    try:
        yield
    finally:
        train_module._record = original


def snapshot_steps(steps: int, max_points: int = MAX_SNAPSHOTS) -> list[int]:
    """The recorded steps at which the measures are taken: at most ``max_points``, evenly thinned.

    Parameters
    ----------
    steps : int
        The run length.
    max_points : int, default=MAX_SNAPSHOTS
        Most snapshots.

    Returns
    -------
    list of int
        Sorted steps, always including 0 and ``steps``.
    """
    rec = train_module.record_steps(steps)
    idx = np.unique(np.linspace(0, len(rec) - 1, min(max_points, len(rec))).round().astype(int))
    return sorted({rec[i] for i in idx} | {0, steps})


def _atomic_write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def measured_runs(configs: Sequence[RunConfig], *, key_power: float = KEY_POWER, loss: str = "ce",
                  progress: bool | None = False, store: RunStore | None = None) -> list[dict[str, Any]]:
    """Train runs (one batch) while keeping snapshots, and measure each snapshot (cached).

    The final runs go to the run store; the snapshots (``<store>/progress/snaps-<key>.pt``) and
    the measure curves (``<store>/progress/<key>.json``) are cached next to it, so a second call
    neither trains nor measures, and a change of the measures re-measures the kept snapshots
    without training again.

    Parameters
    ----------
    configs : sequence of RunConfig
        Runs sharing a batch key (``add`` or ``sub``).
    key_power : float, default=KEY_POWER
        Passed to :func:`spectrum_key_frequencies`, read off each run's final logits on its test
        pairs (no training label enters the choice).
    loss : {"ce", "mse"}, default="ce"
        The loss of the measures.
    progress : bool or None, default=False
        Progress bar while training.
    store : RunStore or None, default=None
        Where the runs, the snapshots and the cached curves go (None: the default store).

    Returns
    -------
    list of dict
        Per config: ``config`` (dict), ``key_freqs``, ``key_power`` (the share asked for),
        ``spectrum`` (the final held-out :func:`rule_spectrum`, shares summing to 1), ``steps``
        (the snapshots), each measure of :func:`measures` as a list over ``steps``, and the
        recorded ``history``.

    Raises
    ------
    ValueError
        When the configs do not share a batch key, ``key_power`` is not in (0, 1] (a
        :class:`~memgen.configs.ConfigError`) or a run diverges.
    """
    configs = list(configs)
    if not configs or any(c.batch_key() != configs[0].batch_key() for c in configs):
        raise ValueError("configs=... is not allowed; give runs that share a batch key (RunConfig.batch_key)")
    _check_share(key_power, "key_power")
    _check_loss(loss)
    store = store or default_store()
    ids = [c.identity() for c in configs]
    key = content_key({"configs": ids, "key_power": float(key_power), "loss": loss, "max_points": MAX_SNAPSHOTS,
                       "version": PROGRESS_VERSION})
    path = store.root / "progress" / f"{key}.json"
    if path.exists() and all(c in store for c in configs):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    steps = snapshot_steps(configs[0].steps)
    snaps_path = store.root / "progress" / f"snaps-{content_key({'configs': ids, 'steps': steps})}.pt"
    snaps = _load_snapshots(snaps_path, steps) if all(c in store for c in configs) else None
    runs = [store.load(c) for c in configs] if snaps is not None else []
    if snaps is None or not all(run is not None and _same(snaps[steps[-1]], r, run) for r, run in enumerate(runs)):
        # no snapshots, or kept ones that are not of the stored runs (damaged, or trained again since)
        snaps = {}
        with _snapshots(set(steps), snaps):
            runs = train_module.train_batch(configs, progress=progress)
        for run in runs:
            if run.failed:
                raise ValueError(run.failed)
            store.save(run)
        atomic_save(snaps_path, snaps)
    out = []
    for r, run in enumerate(runs):
        data = run.data
        spec = rule_spectrum(run.weights.logits(), data.task, data.test_idx)
        freqs = _strongest(spec, key_power)
        ms = [measures(weights_of_run(snaps[s], r, run.config.activation), data, freqs, loss) for s in steps]
        rec = {"config": run.config.to_dict(), "key_freqs": freqs.tolist(), "key_power": float(key_power),
               "spectrum": (spec / spec.sum() if spec.sum() > 0 else spec).tolist(), "steps": steps,
               "history": run.history}
        rec.update({k: [m[k] for m in ms] for k in ms[0]})
        out.append(rec)
    _atomic_write_json(path, out)
    return out


def _same(params: dict[str, torch.Tensor], r: int, run: Any) -> bool:
    """Whether run r's weights in the last snapshot are the stored run's final weights."""
    w = weights_of_run(params, r, run.config.activation)
    return all(torch.equal(getattr(w, k), getattr(run.weights, k)) for k in ("U", "V", "W", "mu"))


def _load_snapshots(path: Path, steps: Sequence[int]) -> dict[int, dict[str, torch.Tensor]] | None:
    """The kept snapshots of a batch, or None when there are none or they are damaged or incomplete."""
    if not path.exists():
        return None
    try:
        snaps = checked_load(path)
    except (StoreError, OSError, RuntimeError, ValueError):
        path.unlink(missing_ok=True)
        return None
    return snaps if isinstance(snaps, dict) and all(s in snaps for s in steps) else None


def first_step(steps: Sequence[int], values: Sequence[float], level: float) -> float:
    """First step whose value is at least ``level`` (NaN when never).

    Parameters
    ----------
    steps : sequence of int
        The steps.
    values : sequence of float
        One value per step.
    level : float
        The level.

    Returns
    -------
    float
        The step, or NaN.
    """
    for s, v in zip(steps, values):
        if v is not None and np.isfinite(v) and v >= level:
            return float(s)
    return float("nan")


def step_gap(steps: Sequence[int], t: float) -> float:
    """How far the step ``t`` of ``steps`` is from the one before it: an event first seen at ``t``
    happened somewhere in that gap (0 when ``t`` is the first step, NaN when ``t`` is NaN).

    Parameters
    ----------
    steps : sequence of int
        The sorted recorded steps.
    t : float
        One of them (e.g. :func:`first_step`'s answer), or NaN.

    Returns
    -------
    float
        ``t`` minus the step before it.
    """
    if not np.isfinite(t):
        return float("nan")
    before = [s for s in steps if s < t]
    return float(t - before[-1]) if before else 0.0


def progress_record(rec: dict[str, Any]) -> dict[str, Any]:
    """Chapter 13's summary numbers of one :func:`measured_runs` entry.

    Parameters
    ----------
    rec : dict
        One entry of :func:`measured_runs`.

    Returns
    -------
    dict
        Config fields plus ``t_heldout`` (first snapshot whose held-out restricted logits reach
        :data:`FORMED` on the test pairs; NaN when the entry predates them), ``t_rule`` (the same
        for the restricted logits over all pairs), ``t_half`` and ``t_test`` (first snapshots whose
        test accuracy, from the history, reaches :data:`RISEN` and :data:`FORMED`), ``t_mem`` (first
        recorded step with :data:`FORMED` of the noisy labels memorized; NaN at α = 0), ``gap_heldout``,
        ``gap_half`` and ``gap_mem`` (:func:`step_gap` of those steps: how precisely each is known), final
        accuracies, ``excluded_final`` / ``excluded_min``, ``excluded_acc_final`` (the excluded logits'
        accuracy on the training labels), ``gini_start`` / ``gini_final``,
        ``heldout_acc_final`` and ``heldout_loss_final`` (NaN when not measured), ``restricted_acc_final``,
        ``key_share_final`` (share of the final logits' variance the key component explains) and
        ``lookup_acc`` (:func:`lookup_restricted_acc` at the run's key frequencies).
    """
    h = rec["history"]
    steps = rec["steps"]
    hist_at = dict(zip(h["step"], h["test_acc"]))
    test_at = [hist_at.get(s, float("nan")) for s in steps]
    cfg = RunConfig.from_dict(rec["config"])
    held = rec.get("heldout_test_acc", [float("nan")])  # absent from entries measured before version 2
    t_held, t_half = first_step(steps, held, FORMED), first_step(steps, test_at, RISEN)
    t_mem = first_step(h["step"], h["noisy_acc"], FORMED) if cfg.n_noisy else float("nan")
    return {**rec["config"], "t_heldout": t_held,
            "t_rule": first_step(steps, rec["restricted_test_acc"], FORMED),
            "t_half": t_half, "t_test": first_step(steps, test_at, FORMED), "t_mem": t_mem,
            "gap_heldout": step_gap(steps, t_held), "gap_half": step_gap(steps, t_half),
            "gap_mem": step_gap(h["step"], t_mem),
            "test_acc": h["test_acc"][-1], "train_acc": h["train_acc"][-1],
            "noisy_acc": h["noisy_acc"][-1] if cfg.n_noisy else float("nan"),
            "heldout_acc_final": held[-1], "heldout_loss_final": rec.get("heldout_loss", [float("nan")])[-1],
            "restricted_acc_final": rec["restricted_test_acc"][-1],
            "excluded_final": rec["excluded_loss"][-1], "excluded_min": float(np.min(rec["excluded_loss"])),
            "excluded_acc_final": rec["excluded_train_acc"][-1],
            "gini_start": rec["gini_embed"][0], "gini_final": rec["gini_embed"][-1],
            "n_test": cfg.p**2 - cfg.n_train, "n_noisy": cfg.n_noisy, "key_freqs": rec["key_freqs"],
            "key_share_final": rec["key_share"][-1],
            "lookup_acc": lookup_restricted_acc(make_dataset(cfg), rec["key_freqs"])}


def progress_configs(profile: str, seeds: Sequence[int] = (0, 1, 2)) -> list[RunConfig]:
    """Chapter 13's runs at its default parameters: a clean and a noisy run per seed (one batch).

    Parameters
    ----------
    profile : {"test", "book", "paper"}
        A key of :data:`PROGRESS_SIZES`.
    seeds : sequence of int, default=(0, 1, 2)
        The seeds of both runs.

    Returns
    -------
    list of RunConfig
        α = 0 for every seed, then the noisy α for every seed.
    """
    seeds = list(seeds)
    S = make_setup(profile, seeds=seeds, **PROGRESS_SIZES[profile])
    return [S.config(noise=a, seed=s) for a in (0.0, S.base.noise) for s in seeds]
