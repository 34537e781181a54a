"""Fourier structure of trained networks: spectra, dominant frequencies, frequency filtration
and phases.

Conventions
-----------
*Frame.* For ``add`` and ``sub`` a neuron's vectors are read over tokens 0..p-1 (length n = p).
For ``mul`` they are read in the discrete-log frame: position k holds token g**k (g the smallest
primitive root), length n = p - 1, so that multiplication becomes addition mod p - 1. Token 0 has
no logarithm: its entries are never transformed and filtration keeps them in the G part
(``mul`` puts every pair containing 0 in class 0, a rule no frequency expresses).

*Spectra.* ``x_hat = numpy.fft.rfft(x)``; the power at frequency k (k = 0..n//2) is
``|x_hat[k]|**2``; k = 0 is the DC term. A neuron's *dominant frequency* is the k >= 1 with the
largest power; "joint" (default) adds the spectra of u_m, v_m and w_m after normalising each to
unit non-DC power, "per-vector" takes each vector's own maximum.

*Filtration (FF).* Each vector is split as x = x_G + x_R where x_G keeps only the bins +-omega of
its dominant frequency (plus DC when ``keep_dc``). The G network is (U_G, V_G, W_G) and the R
network the residual, both with the output bias mu unless ``keep_bias=False``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .metrics import evaluate
from .model import Weights, strength
from .tasks import Dataset, log_order


# ---------------------------------------------------------------------------- frames
def frame_order(task: str, p: int) -> np.ndarray:
    """Token order of the Fourier frame: 0..p-1, or the discrete-log order for ``mul``.

    Parameters
    ----------
    task : str
        The operation.
    p : int
        The modulus.

    Returns
    -------
    numpy.ndarray
        (n,) tokens in frame order: n = p, or n = p - 1 for ``mul`` (see
        :func:`~memgen.tasks.log_order`).
    """
    return log_order(p) if task == "mul" else np.arange(p)


def neuron_vectors(weights: Weights, task: str) -> dict[str, np.ndarray]:
    """u, v, w of every neuron as (M, n) arrays in the task's frame.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).

    Returns
    -------
    dict of str to numpy.ndarray
        ``u``, ``v`` and ``w``, each (M, n), re-indexed by :func:`frame_order`.
    """
    order = frame_order(task, weights.p)
    return {"u": weights.U.numpy()[:, order], "v": weights.V.numpy()[:, order],
            "w": weights.W.numpy().T[:, order]}


def power_spectra(weights: Weights, task: str) -> dict[str, np.ndarray]:
    """One-sided power spectra (M, n//2 + 1) of u, v and w (index = frequency, 0 = DC).

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).

    Returns
    -------
    dict of str to numpy.ndarray
        ``u``, ``v`` and ``w``: ``|rfft(x)|**2`` along each neuron's vector.
    """
    return {k: np.abs(np.fft.rfft(x, axis=1)) ** 2 for k, x in neuron_vectors(weights, task).items()}


def _normalised(s: np.ndarray) -> np.ndarray:
    tot = s[:, 1:].sum(1, keepdims=True)
    return s / np.where(tot > 0, tot, 1.0)


def joint_spectrum(weights: Weights, task: str) -> np.ndarray:
    """Sum of the u, v, w spectra, each normalised to unit non-DC power: (M, n//2 + 1).

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).

    Returns
    -------
    numpy.ndarray
        (M, n//2 + 1) joint spectrum of every neuron.
    """
    return sum(_normalised(s) for s in power_spectra(weights, task).values())


def dominant_frequencies(weights: Weights, task: str, mode: str = "joint") -> dict[str, np.ndarray]:
    """Dominant frequency (>= 1) of every neuron.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).
    mode : {"joint", "per-vector"}, default="joint"
        ``joint``: the maximum of :func:`joint_spectrum`; ``per-vector``: each vector's own
        maximum.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"u": f, "v": f, "w": f}`` of (M,) int arrays; under ``mode="joint"`` the three are
        the same array.

    Raises
    ------
    ValueError
        When ``mode`` is not allowed.
    """
    if mode == "joint":
        f = 1 + joint_spectrum(weights, task)[:, 1:].argmax(1)
        return {"u": f, "v": f, "w": f}
    if mode == "per-vector":
        return {k: 1 + s[:, 1:].argmax(1) for k, s in power_spectra(weights, task).items()}
    raise ValueError(f"mode={mode!r} is not allowed; choose 'joint' or 'per-vector'")


def frequency_histogram(weights: Weights, task: str) -> np.ndarray:
    """Number of neurons whose (joint) dominant frequency is k, for k = 0..n//2.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).

    Returns
    -------
    numpy.ndarray
        (n//2 + 1,) counts; entry 0 is always 0.
    """
    f = dominant_frequencies(weights, task)["u"]
    n = len(frame_order(task, weights.p))
    return np.bincount(f, minlength=n // 2 + 1)


def concentration(weights: Weights, task: str) -> np.ndarray:
    """Share of each neuron's joint non-DC power at its dominant frequency, in (0, 1].

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).

    Returns
    -------
    numpy.ndarray
        (M,) concentration of every neuron.
    """
    s = joint_spectrum(weights, task)[:, 1:]
    return s.max(1) / np.where(s.sum(1) > 0, s.sum(1), 1.0)


# ---------------------------------------------------------------------------- filtration
def _keep_mask(freqs: np.ndarray, n: int, keep_dc: bool) -> np.ndarray:
    """(M, n) mask of the full-FFT bins to keep: +-freq (a row of ``freqs`` may hold several)."""
    freqs = np.atleast_2d(freqs.T).T  # (M, K)
    mask = np.zeros((freqs.shape[0], n), dtype=bool)
    rows = np.arange(freqs.shape[0])[:, None]
    mask[rows, freqs % n] = True
    mask[rows, (-freqs) % n] = True
    if keep_dc:
        mask[:, 0] = True
    return mask


def _split(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.real(np.fft.ifft(np.fft.fft(x, axis=1) * mask, axis=1))


def filtration(weights: Weights, task: str, mode: str = "joint", keep_dc: bool = False,
               keep_bias: bool = True, top_k: int | None = None) -> tuple[Weights, Weights]:
    """Split a network into its G (dominant-frequency) and R (residual) parts.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame; for ``mul`` token 0 stays in G).
    mode : {"joint", "per-vector"}, default="joint"
        How each neuron's dominant frequency is found (ignored with ``top_k``).
    keep_dc : bool, default=False
        Put each vector's DC term in G (False: in R).
    keep_bias : bool, default=True
        Give both parts the output bias mu (True) or neither.
    top_k : int or None, default=None
        Instead of each neuron's own frequency, keep the ``top_k`` frequencies with the most
        total power over the whole network, for every neuron (the global variant).

    Returns
    -------
    G : Weights
        The dominant-frequency part, with the network's activation.
    R : Weights
        The residual x - x_G, with the network's activation.
    """
    p = weights.p
    order = frame_order(task, p)
    n = len(order)
    vecs = neuron_vectors(weights, task)
    if top_k is not None:
        total = joint_spectrum(weights, task)[:, 1:].sum(0)
        keep = 1 + np.argsort(-total)[:top_k]
        freqs = {k: np.tile(keep, (weights.width, 1)) for k in vecs}
    else:
        freqs = dominant_frequencies(weights, task, mode)
    parts = {}
    for k, x in vecs.items():
        g_frame = _split(x, _keep_mask(freqs[k], n, keep_dc))
        full = {"u": weights.U, "v": weights.V, "w": weights.W.T}[k].numpy()
        g = full.copy()  # tokens outside the frame (0 for mul) stay in G
        g[:, order] = g_frame
        parts[k] = (torch.as_tensor(g, dtype=torch.float32),
                    torch.as_tensor(full - g, dtype=torch.float32))
    mu = weights.mu if keep_bias else torch.zeros_like(weights.mu)
    G = Weights(parts["u"][0], parts["v"][0], parts["w"][0].T.contiguous(), mu, weights.activation)
    R = Weights(parts["u"][1], parts["v"][1], parts["w"][1].T.contiguous(), mu, weights.activation)
    return G, R


def parts_report(parts: dict[str, Weights], data: Dataset,
                 activation: str | None = None) -> dict[str, dict[str, float]]:
    """Accuracies of named networks (e.g. full / G / R) on ``data``.

    Parameters
    ----------
    parts : dict of str to Weights
        The networks by name.
    data : Dataset
        The dataset they are evaluated on.
    activation : str or None, default=None
        Activation to evaluate with; None uses each network's own.

    Returns
    -------
    dict of str to dict
        Each name to its metrics (see :func:`~memgen.metrics.evaluate`).
    """
    return {name: evaluate(w, data, activation) for name, w in parts.items()}


def filtration_report(weights: Weights, data: Dataset, activation: str | None = None,
                      **options: Any) -> dict[str, dict[str, float]]:
    """Accuracies of the full, G and R networks (see :func:`filtration` for ``options``).

    Parameters
    ----------
    weights : Weights
        The network.
    data : Dataset
        Its dataset (its task chooses the frame).
    activation : str or None, default=None
        Activation to evaluate with; None uses the training activation.
    **options : Any
        Passed to :func:`filtration` (``mode``, ``keep_dc``, ``keep_bias``, ``top_k``).

    Returns
    -------
    dict of str to dict
        ``full``, ``G`` and ``R`` to their metrics.
    """
    G, R = filtration(weights, data.task, **options)
    return parts_report({"full": weights, "G": G, "R": R}, data, activation)


FF_VARIANTS: dict[str, dict] = {
    "default (joint, no DC, with mu)": {},
    "per-vector frequency": {"mode": "per-vector"},
    "keep DC in G": {"keep_dc": True},
    "drop mu": {"keep_bias": False},
    "G with quadratic": {"activation": "quadratic"},
    "global top-5 frequencies": {"top_k": 5},
}
"""The filtration rules the book shows side by side (the paper leaves the exact rule open)."""


# ---------------------------------------------------------------------------- phases
def phases(weights: Weights, task: str) -> dict[str, np.ndarray]:
    """Amplitude and phase of every neuron's dominant (joint) component.

    For x_i = lam * cos(2 pi omega i / n + phi): amplitude lam and phase phi.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).

    Returns
    -------
    dict of str to numpy.ndarray
        ``freq``, ``amp_u, amp_v, amp_w`` and ``phi_u, phi_v, phi_w`` as (M,) arrays.
    """
    f = dominant_frequencies(weights, task)["u"]
    out = {"freq": f}
    for k, x in neuron_vectors(weights, task).items():
        n = x.shape[1]
        c = np.fft.rfft(x, axis=1)[np.arange(len(f)), f]
        out[f"amp_{k}"] = 2 * np.abs(c) / n
        out[f"phi_{k}"] = np.angle(c)
    return out


def wrap(x: np.ndarray) -> np.ndarray:
    """Wrap angles to (-pi, pi].

    Parameters
    ----------
    x : numpy.ndarray
        Angles in radians.

    Returns
    -------
    numpy.ndarray
        The same angles in (-pi, pi].
    """
    return -((-np.asarray(x) + np.pi) % (2 * np.pi) - np.pi)


def phase_error(weights: Weights, task: str) -> dict[str, np.ndarray | float]:
    """Wrapped error of the phase relation of every neuron and its strength-weighted mean |error|.

    ``add`` and ``mul`` (log frame): phi_u + phi_v - phi_w; ``sub``: phi_u - phi_v - phi_w.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation.

    Returns
    -------
    dict
        ``per_neuron`` (M,) wrapped errors and ``mean`` (float, radians; ~0 for the analytic
        solution, ~pi/2 for random phases), weighted by :func:`~memgen.model.strength`.
    """
    ph = phases(weights, task)
    sign = -1.0 if task == "sub" else 1.0
    err = wrap(ph["phi_u"] + sign * ph["phi_v"] - ph["phi_w"])
    s = strength(weights)
    wts = s / s.sum() if s.sum() > 0 else np.full_like(s, 1 / len(s))
    return {"per_neuron": err, "mean": float((np.abs(err) * wts).sum())}


def cosine_fit(weights: Weights, task: str) -> dict[str, np.ndarray]:
    """Least-squares fit of every neuron vector by a constant plus one cosine at the neuron's
    dominant (joint) frequency, in the weights' own scale.

    For x over n frame positions the fit is c_0 + A cos(2 pi f i / n + phi) with c_0 the mean,
    A = 2 |x_hat[f]| / n (|x_hat[f]| / n at the Nyquist frequency f = n / 2) and phi the angle of
    x_hat[f]: by orthogonality of the Fourier basis this is the least-squares fit.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (chooses the frame).

    Returns
    -------
    dict of str to numpy.ndarray
        ``u``, ``v``, ``w``: (M, n) fitted vectors; ``r2_u``, ``r2_v``, ``r2_w``: (M,) share of
        each vector's variance around its mean that the cosine explains (1 for a pure cosine);
        ``freq``: (M,) the frequencies used.
    """
    f = dominant_frequencies(weights, task)["u"]
    rows = np.arange(len(f))
    out: dict[str, np.ndarray] = {"freq": f}
    for k, x in neuron_vectors(weights, task).items():
        n = x.shape[1]
        xh = np.fft.rfft(x, axis=1)
        keep = np.zeros_like(xh)
        keep[:, 0] = xh[:, 0]
        keep[rows, f] = xh[rows, f]
        fit = np.fft.irfft(keep, n=n, axis=1)
        resid = ((x - fit) ** 2).sum(1)
        var = ((x - x.mean(1, keepdims=True)) ** 2).sum(1)
        out[k] = fit
        out[f"r2_{k}"] = np.where(var > 0, 1 - resid / np.where(var > 0, var, 1.0), 0.0)
    return out


def shuffled_phase_error(weights: Weights, task: str, draws: int = 20, seed: int = 0) -> np.ndarray:
    """The chance level of :func:`phase_error`: the same strength-weighted mean |error| after
    pairing each neuron's (phi_u, phi_v) with another neuron's phi_w (a random permutation).

    Keeps the marginal distribution of every phase, so a network whose phases cluster is not
    mistaken for one whose phases obey the relation neuron by neuron.

    Parameters
    ----------
    weights : Weights
        The network.
    task : str
        The operation (``sub`` uses phi_u - phi_v - phi_w).
    draws : int, default=20
        Number of permutations.
    seed : int, default=0
        Seed of the permutations.

    Returns
    -------
    numpy.ndarray
        (draws,) mean |error| (radians) of each permutation.
    """
    ph = phases(weights, task)
    sign = -1.0 if task == "sub" else 1.0
    s = strength(weights)
    wts = s / s.sum() if s.sum() > 0 else np.full_like(s, 1 / len(s))
    rng = np.random.default_rng(seed)
    base = ph["phi_u"] + sign * ph["phi_v"]
    return np.array([float((np.abs(wrap(base - ph["phi_w"][rng.permutation(len(s))])) * wts).sum())
                     for _ in range(draws)])
