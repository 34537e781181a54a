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

import numpy as np
import torch

from .metrics import evaluate
from .model import Weights, strength
from .tasks import Dataset, log_order


# ---------------------------------------------------------------------------- frames
def frame_order(task: str, p: int) -> np.ndarray:
    """Token order of the Fourier frame: 0..p-1, or the discrete-log order for ``mul``."""
    return log_order(p) if task == "mul" else np.arange(p)


def neuron_vectors(weights: Weights, task: str) -> dict[str, np.ndarray]:
    """u, v, w of every neuron as (M, n) arrays in the task's frame."""
    order = frame_order(task, weights.p)
    return {"u": weights.U.numpy()[:, order], "v": weights.V.numpy()[:, order],
            "w": weights.W.numpy().T[:, order]}


def power_spectra(weights: Weights, task: str) -> dict[str, np.ndarray]:
    """One-sided power spectra (M, n//2 + 1) of u, v and w (index = frequency, 0 = DC)."""
    return {k: np.abs(np.fft.rfft(x, axis=1)) ** 2 for k, x in neuron_vectors(weights, task).items()}


def _normalised(s: np.ndarray) -> np.ndarray:
    tot = s[:, 1:].sum(1, keepdims=True)
    return s / np.where(tot > 0, tot, 1.0)


def joint_spectrum(weights: Weights, task: str) -> np.ndarray:
    """Sum of the u, v, w spectra, each normalised to unit non-DC power: (M, n//2 + 1)."""
    return sum(_normalised(s) for s in power_spectra(weights, task).values())


def dominant_frequencies(weights: Weights, task: str, mode: str = "joint") -> dict[str, np.ndarray]:
    """Dominant frequency (>= 1) of every neuron.

    Returns ``{"u": f, "v": f, "w": f}`` of (M,) int arrays; under ``mode="joint"`` the three
    are the same array.
    """
    if mode == "joint":
        f = 1 + joint_spectrum(weights, task)[:, 1:].argmax(1)
        return {"u": f, "v": f, "w": f}
    if mode == "per-vector":
        return {k: 1 + s[:, 1:].argmax(1) for k, s in power_spectra(weights, task).items()}
    raise ValueError(f"mode={mode!r} is not allowed; choose 'joint' or 'per-vector'")


def frequency_histogram(weights: Weights, task: str) -> np.ndarray:
    """Number of neurons whose (joint) dominant frequency is k, for k = 0..n//2."""
    f = dominant_frequencies(weights, task)["u"]
    n = len(frame_order(task, weights.p))
    return np.bincount(f, minlength=n // 2 + 1)


def concentration(weights: Weights, task: str) -> np.ndarray:
    """Share of each neuron's joint non-DC power at its dominant frequency, in (0, 1]."""
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
    mode : "joint" or "per-vector" dominant frequency (ignored with ``top_k``).
    keep_dc : put each vector's DC term in G (default: in R).
    keep_bias : give both parts the output bias mu (default) or neither.
    top_k : instead of each neuron's own frequency, keep the ``top_k`` frequencies with the most
        total power over the whole network, for every neuron (the global variant).
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
    """Accuracies of named networks (e.g. full / G / R) on ``data``."""
    return {name: evaluate(w, data, activation) for name, w in parts.items()}


def filtration_report(weights: Weights, data: Dataset, activation: str | None = None,
                      **options) -> dict[str, dict[str, float]]:
    """Accuracies of the full, G and R networks (see :func:`filtration` for ``options``)."""
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
    Returns ``freq``, ``amp_u, amp_v, amp_w`` and ``phi_u, phi_v, phi_w`` as (M,) arrays.
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
    """Wrap angles to (-pi, pi]."""
    return -((-np.asarray(x) + np.pi) % (2 * np.pi) - np.pi)


def phase_error(weights: Weights, task: str) -> dict[str, np.ndarray | float]:
    """Wrapped error of the phase relation of every neuron and its strength-weighted mean |error|.

    ``add`` and ``mul`` (log frame): phi_u + phi_v - phi_w; ``sub``: phi_u - phi_v - phi_w.
    Returns ``per_neuron`` (M,) and ``mean`` (radians; ~0 for the analytic solution, ~pi/2 for
    random phases).
    """
    ph = phases(weights, task)
    sign = -1.0 if task == "sub" else 1.0
    err = wrap(ph["phi_u"] + sign * ph["phi_v"] - ph["phi_w"])
    s = strength(weights)
    wts = s / s.sum() if s.sum() > 0 else np.full_like(s, 1 / len(s))
    return {"per_neuron": err, "mean": float((np.abs(err) * wts).sum())}
