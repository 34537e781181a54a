"""Diagnostics that read a trained network without its test labels: topology, spectra, clusters.

Three views of the same weights, each one function per metric (the chapters, the tests and any
script call these):

* **Topology of the embedding** (chapter 14). The point cloud has one point per token t: its
  first-layer embedding, the column t of U stacked on the column t of V (:func:`embedding_cloud`).
  A network that has learned a∘b mod P writes each key frequency ω as a circle
  t ↦ (cos 2πωt/P, sin 2πωt/P) across its neurons, so the cloud carries long-lived 1-dimensional
  holes; a memorizing one need not. The whole cloud mixes most of the ⌈P/2⌉ frequencies and
  hides them, so :func:`frequency_clouds` takes one key frequency at a time (the neurons tuned
  to it). :func:`h1_persistence` computes the Vietoris–Rips persistence (``ripser``) of a cloud,
  scaled by its median pairwise distance, and summarizes the H1 bars (maximum and total
  persistence); :func:`topology_record` adds a shuffled control (every neuron's values permuted
  over the tokens independently, which keeps each coordinate's distribution and destroys any
  circle).
* **Heavy-tailed spectra** (chapter 15, HT-SR / TempBalance). :func:`esd` is the empirical
  spectral density of a layer (eigenvalues of XᵀX / max(n, m)); :func:`hill_alpha` is
  TempBalance's ``PL_Alpha_Hill`` (the Hill estimator with x_min at the median eigenvalue);
  :func:`powerlaw_fit` is the Clauset–Shalizi–Newman fit of the ``powerlaw`` package (x_min by
  the Kolmogorov–Smirnov distance) with its number of tail eigenvalues and a likelihood-ratio test
  against an exponential tail, because a layer of this testbed has at most P eigenvalues.
* **Clusters of hidden activations** (chapter 16). :func:`ncc_record` classifies every pair by
  the nearest class centre of its hidden activations φ(U e_a + V e_b), with centres computed from
  training pairs only (by their trained, possibly wrong, labels by default) and leave-one-out for
  training pairs, and reports the accuracy against the true and the trained labels on clean and
  mislabelled training pairs and on test pairs.

The core imports only torch, numpy and the standard library; ``ripser``, ``persim`` and
``powerlaw`` are imported inside the functions that need them.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import warnings
from typing import Any

import numpy as np
import torch

from .model import Weights, activation_fn
from .tasks import Dataset

#: Embedding clouds :func:`embedding_cloud` builds: U's columns, V's, or both stacked.
CLOUDS = ("u", "v", "uv")
#: Layers :func:`layer_matrices` returns, in order.
LAYERS = ("U", "V", "W")
#: Where :func:`ncc_record` takes its class centres from.
CENTRES = ("trained", "clean")


def _require(module: str, package: str) -> Any:
    """Import ``module`` or raise an ImportError naming ``package`` and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is needed here and is not installed: pip install {package} "
                          "(or pip install -r requirements.txt)") from e


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {', '.join(allowed)}")


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed; it must be an integer >= {minimum}")
    return int(value)


def _points(points: Any, name: str = "points") -> np.ndarray:
    x = np.asarray(points, dtype=float)
    if x.ndim != 2 or x.shape[0] < 3 or x.shape[1] < 1:
        raise ValueError(f"{name} with shape {x.shape} is not allowed; it must be a 2-D array of at least "
                         "3 points (rows) with at least 1 coordinate")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} is not allowed to hold NaN or inf")
    return x


# ---------------------------------------------------------------------------- topology
def embedding_cloud(weights: Weights, which: str = "uv") -> np.ndarray:
    """The first-layer embedding of every token as a point cloud.

    Parameters
    ----------
    weights : Weights
        A network.
    which : {"uv", "u", "v"}, default="uv"
        ``uv``: token t is the column t of U stacked on the column t of V (its embedding as
        either operand, 2M coordinates); ``u`` or ``v``: one of them (M coordinates).

    Returns
    -------
    numpy.ndarray
        (P, D) float64, one row per token, centred (the mean token subtracted).
    """
    _choice("which", which, CLOUDS)
    parts = {"u": [weights.U], "v": [weights.V], "uv": [weights.U, weights.V]}[which]
    x = torch.cat([t.detach().double().cpu() for t in parts], dim=0).T.numpy()
    return x - x.mean(0, keepdims=True)


def median_distance(points: Any) -> float:
    """Median pairwise Euclidean distance of a point cloud (the scale persistence is divided by).

    Parameters
    ----------
    points : array_like
        (N, D) points, N >= 3.

    Returns
    -------
    float
        The median over the N (N - 1) / 2 pairs (0 when all points coincide).
    """
    x = _points(points)
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    iu = np.triu_indices(len(x), 1)
    return float(np.median(np.sqrt(d2[iu])))


def h1_persistence(points: Any, *, scale: bool = True) -> dict[str, Any]:
    """Vietoris–Rips persistent homology (H0 and H1) of a point cloud, with H1 summaries.

    Parameters
    ----------
    points : array_like
        (N, D) points, N >= 3, finite.
    scale : bool, default=True
        Divide the points by their median pairwise distance first, so that persistence is
        comparable between networks of different weight norms (a cloud whose points all
        coincide is left as it is).

    Returns
    -------
    dict
        ``dgms`` (list of two (k, 2) arrays of (birth, death): H0 and H1, from ``ripser``),
        ``scale`` (the divisor used), ``max`` (the longest finite H1 bar, 0 without one),
        ``total`` (the sum of the finite H1 bar lengths), ``second`` (the second longest) and
        ``count`` (the number of H1 bars).

    Raises
    ------
    ImportError
        When ``ripser`` is not installed.
    """
    x = _points(points)
    ripser = _require("ripser", "ripser")
    s = median_distance(x) if scale else 1.0
    if not s > 0:
        s = 1.0
    with warnings.catch_warnings():  # "more columns than rows" is expected: tokens are the rows
        warnings.simplefilter("ignore", UserWarning)
        dgms = ripser.ripser(x / s, maxdim=1)["dgms"]
    h1 = np.asarray(dgms[1], dtype=float).reshape(-1, 2)
    life = h1[:, 1] - h1[:, 0]
    life = np.sort(life[np.isfinite(life)])[::-1]
    return {"dgms": [np.asarray(d, dtype=float).reshape(-1, 2) for d in dgms[:2]], "scale": float(s),
            "max": float(life[0]) if life.size else 0.0, "total": float(life.sum()),
            "second": float(life[1]) if life.size > 1 else 0.0, "count": int(life.size)}


def bottleneck(dgm_a: Any, dgm_b: Any) -> float:
    """Bottleneck distance between two persistence diagrams (``persim.bottleneck``).

    Parameters
    ----------
    dgm_a, dgm_b : array_like
        (k, 2) arrays of (birth, death); bars with an infinite death are left out.

    Returns
    -------
    float
        The largest shift needed to match the two diagrams' points (or move them to the diagonal).

    Raises
    ------
    ImportError
        When ``persim`` is not installed.
    """
    ds = []
    for name, d in (("dgm_a", dgm_a), ("dgm_b", dgm_b)):
        x = np.asarray(d, dtype=float).reshape(-1, 2) if np.size(d) else np.zeros((0, 2))
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"{name} with shape {x.shape} is not allowed; it must be (k, 2) (birth, death)")
        ds.append(x[np.isfinite(x).all(1)])
    persim = _require("persim", "persim")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(persim.bottleneck(ds[0], ds[1]))


def shuffled_cloud(points: Any, seed: int = 0) -> np.ndarray:
    """The control cloud: every coordinate (neuron) permuted over the points independently.

    Parameters
    ----------
    points : array_like
        (N, D) points.
    seed : int, default=0
        Seed of the permutations.

    Returns
    -------
    numpy.ndarray
        (N, D): each column a permutation of the same column of ``points``; the distribution of
        every coordinate is kept, any arrangement of the points on a curve is destroyed.
    """
    x = _points(points)
    rng = np.random.default_rng(_positive_int("seed", seed, 0))
    return np.take_along_axis(x, rng.random(x.shape).argsort(0), axis=0)


def frequency_clouds(weights: Weights, task: str = "add", which: str = "uv", min_neurons: int = 2
                     ) -> dict[int, np.ndarray]:
    """The token cloud of each key frequency: only the neurons whose dominant frequency it is.

    A network that has learned the rule writes frequency ω into the neurons tuned to it as
    u_{m,t} = λ cos(2π ω t / P + φ_m): over those neurons the P tokens lie on one circle. The
    whole cloud mixes every frequency (a two-layer MLP uses most of the ⌈P/2⌉ of them), which
    makes the tokens nearly equidistant and hides the circles; one frequency at a time shows them.

    Parameters
    ----------
    weights : Weights
        A network.
    task : str, default="add"
        The operation (the Fourier frame of :func:`memgen.fourier.dominant_frequencies`, joint
        rule over u, v, w).
    which : {"uv", "u", "v"}, default="uv"
        The embedding (:func:`embedding_cloud`).
    min_neurons : int, default=2
        Frequencies with fewer neurons are left out.

    Returns
    -------
    dict of int to numpy.ndarray
        {ω: (P, D_ω) cloud over the neurons of dominant frequency ω}, ω ascending.
    """
    from .fourier import dominant_frequencies

    _choice("which", which, CLOUDS)
    _positive_int("min_neurons", min_neurons)
    f = np.asarray(dominant_frequencies(weights, task)["u"])
    x = embedding_cloud(weights, which)
    m = weights.width
    out = {}
    for om in np.unique(f):
        idx = np.flatnonzero(f == om)
        if idx.size < min_neurons:
            continue
        cols = np.r_[idx, idx + m] if which == "uv" else idx
        out[int(om)] = x[:, cols]
    return out


def _signature(clouds: dict[int, np.ndarray]) -> dict[str, float]:
    ph = [h1_persistence(c) for c in clouds.values()]
    bars = [p["max"] for p in ph]
    return {"h1_mean": float(np.mean(bars)) if bars else 0.0, "h1_max": float(max(bars)) if bars else 0.0,
            "h1_total": float(sum(p["total"] for p in ph))}


def topology_record(weights: Weights, *, task: str = "add", which: str = "uv", shuffles: int = 3, seed: int = 0
                    ) -> dict[str, Any]:
    """The H1 signature of one network's embedding, per key frequency and whole, with its control.

    Parameters
    ----------
    weights : Weights
        A network.
    task : str, default="add"
        The operation (for the key frequencies).
    which : {"uv", "u", "v"}, default="uv"
        The cloud (:func:`embedding_cloud`).
    shuffles : int, default=3
        Shuffled control clouds (:func:`shuffled_cloud`, seeds ``seed`` .. ``seed + shuffles - 1``),
        each frequency's cloud and the whole cloud shuffled alike.
    seed : int, default=0
        First seed of the shuffles.

    Returns
    -------
    dict
        Per key frequency (:func:`frequency_clouds`): ``h1_mean`` (mean over the key frequencies of
        the longest H1 bar of each one's cloud: the signature the chapter judges), ``h1_max``
        (the longest of them: maximum persistence), ``h1_total`` (every H1 bar of every frequency
        cloud added: total persistence), ``n_freqs``; the whole cloud: ``cloud_h1_max``,
        ``cloud_h1_total``, ``cloud_h1_count``; the controls ``shuffled_<key>`` (lists, one value
        per shuffle) and their means ``shuffled_<key>_mean`` for ``h1_mean``, ``h1_max``,
        ``h1_total`` and ``cloud_h1_max``.
    """
    _positive_int("shuffles", shuffles)
    _positive_int("seed", seed, 0)
    x = embedding_cloud(weights, which)
    clouds = frequency_clouds(weights, task, which)
    whole = h1_persistence(x)
    rec: dict[str, Any] = {**_signature(clouds), "n_freqs": len(clouds), "cloud_h1_max": whole["max"],
                           "cloud_h1_total": whole["total"], "cloud_h1_count": whole["count"]}
    ctrl = [_signature({k: shuffled_cloud(c, seed + i) for k, c in clouds.items()}) for i in range(shuffles)]
    for key in ("h1_mean", "h1_max", "h1_total"):
        rec[f"shuffled_{key}"] = [c[key] for c in ctrl]
    rec["shuffled_cloud_h1_max"] = [h1_persistence(shuffled_cloud(x, seed + i))["max"] for i in range(shuffles)]
    for key in ("h1_mean", "h1_max", "h1_total", "cloud_h1_max"):
        rec[f"shuffled_{key}_mean"] = float(np.mean(rec[f"shuffled_{key}"]))
    return rec


# ---------------------------------------------------------------------------- heavy tails
def layer_matrices(weights: Weights) -> dict[str, np.ndarray]:
    """The network's weight matrices by layer name, as float64 numpy arrays.

    Parameters
    ----------
    weights : Weights
        A network.

    Returns
    -------
    dict of str to numpy.ndarray
        ``U`` and ``V`` (M, P), ``W`` (P, M).
    """
    return {name: getattr(weights, name).detach().double().cpu().numpy() for name in LAYERS}


def esd(matrix: Any, *, rtol: float = 1e-10) -> np.ndarray:
    """Empirical spectral density of a layer: the nonzero eigenvalues of XᵀX / max(n, m).

    Parameters
    ----------
    matrix : array_like
        (n, m) weight matrix, finite, both sides >= 1.
    rtol : float, default=1e-10
        Eigenvalues below ``rtol`` times the largest are dropped (numerical zeros of a rank
        below min(n, m)).

    Returns
    -------
    numpy.ndarray
        The kept eigenvalues (squared singular values over max(n, m)), ascending; at most
        min(n, m) of them (P = 59 for a book-profile layer of width M >= 59).
    """
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2 or min(x.shape) < 1:
        raise ValueError(f"matrix with shape {x.shape} is not allowed; it must be a 2-D array with both sides >= 1")
    if not np.all(np.isfinite(x)):
        raise ValueError("matrix is not allowed to hold NaN or inf")
    if not (isinstance(rtol, (int, float)) and 0 <= rtol < 1):
        raise ValueError(f"rtol={rtol!r} is not allowed; it must be a number in [0, 1)")
    ev = np.sort(np.linalg.svd(x, compute_uv=False) ** 2 / max(x.shape))
    return ev[ev > rtol * ev[-1]] if ev[-1] > 0 else ev[:0]


def _eigs(eigs: Any, minimum: int = 3) -> np.ndarray:
    ev = np.asarray(eigs, dtype=float).ravel()
    if not np.all(np.isfinite(ev)) or np.any(ev <= 0):
        raise ValueError("eigs is not allowed to hold values that are <= 0, NaN or inf")
    if ev.size < minimum:
        raise ValueError(f"eigs has {ev.size} values; at least {minimum} are needed")
    return np.sort(ev)


def hill_alpha(eigs: Any, *, tail: float = 0.5) -> dict[str, float]:
    """TempBalance's ``PL_Alpha_Hill``: the Hill estimator of the ESD's power-law exponent.

    With the eigenvalues sorted ascending and x_min = λ_i at i = floor((1 - tail) n) (the median
    for ``tail = 0.5``, TempBalance's ``xmin_mid``), over the k = n - i largest,
    α = 1 + k / Σ log(λ_j / x_min). A density p(λ) ∝ λ^(-α) gives back α.

    Parameters
    ----------
    eigs : array_like
        Positive eigenvalues (at least 3).
    tail : float, default=0.5
        Fraction of the eigenvalues in the tail, in (0, 1].

    Returns
    -------
    dict
        ``alpha``, ``xmin`` and ``k`` (number of tail eigenvalues). ``alpha`` is inf when the tail
        eigenvalues all equal x_min.
    """
    ev = _eigs(eigs)
    if not (isinstance(tail, (int, float)) and not isinstance(tail, bool) and 0 < tail <= 1):
        raise ValueError(f"tail={tail!r} is not allowed; it must be a number in (0, 1]")
    n = ev.size
    i = min(int(math.floor((1 - tail) * n)), n - 2)
    xmin = ev[i]
    k = n - i
    s = float(np.sum(np.log(ev[i:] / xmin)))
    return {"alpha": 1.0 + k / s if s > 0 else float("inf"), "xmin": float(xmin), "k": float(k)}


def powerlaw_fit(eigs: Any, *, alpha_max: float = 40.0) -> dict[str, float]:
    """Power-law fit of an ESD tail with the ``powerlaw`` package (Clauset, Shalizi, Newman).

    x_min is chosen among the eigenvalues by the smallest Kolmogorov–Smirnov distance D between
    the tail and the fitted power law (continuous maximum likelihood). ``powerlaw`` bounds α to
    [0, 3] by default, which would cut the light-tailed spectra of this testbed; the bound here is
    [1, ``alpha_max``].

    Parameters
    ----------
    eigs : array_like
        Positive eigenvalues (at least 3).
    alpha_max : float, default=40.0
        Upper bound of α (> 1).

    Returns
    -------
    dict
        ``alpha``, ``xmin``, ``sigma`` (standard error of α), ``D`` (KS distance of the chosen
        tail), ``n_tail`` (eigenvalues >= x_min), ``R_exp`` and ``p_exp`` (normalized
        log-likelihood ratio of power law vs exponential on the tail and its p-value: R > 0 with
        small p favours the power law), ``valid`` (1.0 when some x_min gave α inside the bounds,
        else 0.0 and the fit is the closest one).

    Raises
    ------
    ImportError
        When ``powerlaw`` is not installed.
    """
    ev = _eigs(eigs)
    if not (isinstance(alpha_max, (int, float)) and alpha_max > 1):
        raise ValueError(f"alpha_max={alpha_max!r} is not allowed; it must be a number > 1")
    powerlaw = _require("powerlaw", "powerlaw")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(ev, verbose=False, parameter_ranges={"alpha": [1.0, float(alpha_max)]})
        R, p = fit.distribution_compare("power_law", "exponential", normalized_ratio=True)
    return {"alpha": float(fit.alpha), "xmin": float(fit.xmin), "sigma": float(fit.sigma), "D": float(fit.D),
            "n_tail": float(np.sum(ev >= fit.xmin)), "R_exp": float(R), "p_exp": float(p),
            "valid": 0.0 if fit.noise_flag else 1.0}


def heavy_tail_record(weights: Weights, *, tail: float = 0.5, fit: bool = True) -> dict[str, Any]:
    """HT-SR numbers of one network: per layer the Hill exponent and (optionally) the powerlaw fit.

    Parameters
    ----------
    weights : Weights
        A network.
    tail : float, default=0.5
        Tail fraction of :func:`hill_alpha`.
    fit : bool, default=True
        Also run :func:`powerlaw_fit` on every layer.

    Returns
    -------
    dict
        ``hill_<L>``, ``n_eigs_<L>`` for L in U, V, W, ``hill_mean`` (mean over the layers, the
        network's summary as in WeightWatcher's average α); with ``fit``: ``pl_alpha_<L>``,
        ``pl_ntail_<L>``, ``pl_D_<L>``, ``pl_R_<L>``, ``pl_p_<L>``, ``pl_valid_<L>``; and
        ``eigs_<L>`` (the ESD as a list).
    """
    rec: dict[str, Any] = {}
    for name, x in layer_matrices(weights).items():
        ev = esd(x)
        rec[f"eigs_{name}"] = ev.tolist()
        rec[f"n_eigs_{name}"] = int(ev.size)
        rec[f"hill_{name}"] = hill_alpha(ev, tail=tail)["alpha"] if ev.size >= 3 else float("nan")
        if fit:
            f = powerlaw_fit(ev) if ev.size >= 3 else {}
            for k, key in (("alpha", "alpha"), ("ntail", "n_tail"), ("D", "D"), ("R", "R_exp"), ("p", "p_exp"),
                           ("valid", "valid")):
                rec[f"pl_{k}_{name}"] = f.get(key, float("nan"))
    rec["hill_mean"] = float(np.mean([rec[f"hill_{n}"] for n in LAYERS]))
    return rec


# ---------------------------------------------------------------------------- clusters
def hidden_activations(weights: Weights, idx: Any = None, *, chunk: int = 8192) -> torch.Tensor:
    """Hidden activations φ(U e_a + V e_b) of pairs (row-major pair indices a * P + b).

    Parameters
    ----------
    weights : Weights
        A network.
    idx : array_like or None, default=None
        Pair indices in [0, P²); None: all P² pairs in row-major order.
    chunk : int, default=8192
        Pairs per step (bounds memory).

    Returns
    -------
    torch.Tensor
        (N, M) float32.
    """
    p = weights.p
    idx = torch.arange(p * p) if idx is None else torch.as_tensor(np.asarray(idx), dtype=torch.long)
    if idx.ndim != 1 or (idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= p * p)):
        raise ValueError(f"idx is not allowed: it must be a 1-D array of pair indices in [0, {p * p})")
    _positive_int("chunk", chunk)
    phi = activation_fn(weights.activation)
    Ut, Vt = weights.U.T.detach().cpu(), weights.V.T.detach().cpu()
    with torch.no_grad():
        return torch.cat([phi(Ut[idx[s:s + chunk] // p] + Vt[idx[s:s + chunk] % p])
                          for s in range(0, max(len(idx), 1), chunk)])[: len(idx)]


def class_centres(h: Any, labels: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``h`` per class.

    Parameters
    ----------
    h : array_like
        (N, D) representations.
    labels : array_like
        (N,) integer classes in [0, ``n_classes``).
    n_classes : int
        Number of classes.

    Returns
    -------
    centres : numpy.ndarray
        (n_classes, D); NaN rows for classes without members.
    counts : numpy.ndarray
        (n_classes,) members per class.
    """
    hx = np.asarray(h, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).ravel()
    n_classes = _positive_int("n_classes", n_classes)
    if hx.ndim != 2 or len(y) != len(hx):
        raise ValueError(f"h with shape {hx.shape} and labels with {len(y)} values are not allowed; h must be "
                         "(N, D) and labels (N,)")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    counts = np.bincount(y, minlength=n_classes).astype(float)
    sums = np.zeros((n_classes, hx.shape[1]))
    np.add.at(sums, y, hx)
    with np.errstate(invalid="ignore", divide="ignore"):
        centres = sums / counts[:, None]
    return centres, counts


def ncc_predict(h: Any, centres: np.ndarray, counts: np.ndarray | None = None,
                own: Any = None) -> np.ndarray:
    """Nearest class centre (Euclidean) of every row of ``h``.

    Parameters
    ----------
    h : array_like
        (N, D) representations.
    centres : numpy.ndarray
        (C, D) class centres (NaN rows: classes without members, never chosen).
    counts : numpy.ndarray or None, default=None
        (C,) members per class; needed with ``own``.
    own : array_like or None, default=None
        (N,) the class each row was counted in when the centres were made (leave-one-out: the
        row is taken out of its own class's centre, so that a member does not attract itself);
        None when the rows took no part in the centres.

    Returns
    -------
    numpy.ndarray
        (N,) index of the nearest centre.
    """
    hx = np.asarray(h, dtype=np.float64)
    c = np.asarray(centres, dtype=np.float64)
    if hx.ndim != 2 or c.ndim != 2 or hx.shape[1] != c.shape[1]:
        raise ValueError(f"h {hx.shape} and centres {c.shape} are not allowed; both must be 2-D with equal columns")
    ok = np.all(np.isfinite(c), axis=1)
    cz = np.where(ok[:, None], c, 0.0)
    d2 = (hx * hx).sum(1)[:, None] - 2 * hx @ cz.T + (cz * cz).sum(1)[None, :]
    d2 = np.maximum(d2, 0.0)
    if own is not None:
        if counts is None:
            raise ValueError("own needs counts (members per class) for leave-one-out centres")
        o = np.asarray(own).astype(np.int64).ravel()
        if len(o) != len(hx):
            raise ValueError(f"own has {len(o)} values; it must have one per row of h ({len(hx)})")
        n = np.asarray(counts, dtype=float)[o]
        rows = np.arange(len(hx))
        # the centre without the row: h - c' = n / (n - 1) (h - c)
        with np.errstate(divide="ignore", invalid="ignore"):
            d2[rows, o] = np.where(n > 1, d2[rows, o] * (n / (n - 1)) ** 2, np.inf)
    d2[:, ~ok] = np.inf
    return d2.argmin(1)


def ncc_record(weights: Weights, data: Dataset, *, centres: str = "trained") -> dict[str, Any]:
    """Nearest-class-centre accuracy of the hidden activations, by subset and by label.

    The class centres are the mean hidden activations of *training* pairs only (no test label is
    used): by their trained labels (``trained``, what a practitioner has; wrong where the label
    was corrupted) or by the labels of the clean training pairs alone (``clean``, which needs to
    know which labels are wrong). A training pair is compared with centres that leave it out.

    Parameters
    ----------
    weights : Weights
        A network.
    data : Dataset
        Its data (split, trained labels, noise mask).
    centres : {"trained", "clean"}, default="trained"
        Where the centres come from.

    Returns
    -------
    dict
        ``ncc_clean_acc`` (clean training pairs: NCC class = label), ``ncc_noisy_true_acc`` and
        ``ncc_noisy_trained_acc`` (mislabelled training pairs: NCC class = true / trained label),
        ``ncc_test_acc`` (test pairs against their true labels), the output's ``out_noisy_acc``
        (output = trained label on mislabelled pairs), ``out_noisy_true_acc`` and ``out_test_acc``,
        and the counts ``n_clean``, ``n_noisy``, ``n_test``.
    """
    _choice("centres", centres, CENTRES)
    p = data.p
    tr, te = np.asarray(data.train_idx), np.asarray(data.test_idx)
    noisy = np.asarray(data.noisy, dtype=bool)
    y_tr = np.asarray(data.train_labels)
    true = np.asarray(data.true)
    h = hidden_activations(weights).double().numpy()
    h_tr = h[tr]
    use = np.ones(len(tr), dtype=bool) if centres == "trained" else ~noisy
    C, n = class_centres(h_tr[use], y_tr[use], p)
    own = np.where(use, y_tr, 0)
    pred_tr = ncc_predict(h_tr, C, n, own=own) if use.all() else None
    if pred_tr is None:  # only the pairs that made the centres leave themselves out
        pred_tr = ncc_predict(h_tr, C)
        pred_tr[use] = ncc_predict(h_tr[use], C, n, own=y_tr[use])
    pred_te = ncc_predict(h[te], C)
    out = weights.predict()
    acc = lambda pred, lab: float(np.mean(pred == lab)) if len(lab) else float("nan")  # noqa: E731
    t_tr = true[tr]
    return {"ncc_clean_acc": acc(pred_tr[~noisy], y_tr[~noisy]),
            "ncc_noisy_true_acc": acc(pred_tr[noisy], t_tr[noisy]),
            "ncc_noisy_trained_acc": acc(pred_tr[noisy], y_tr[noisy]),
            "ncc_test_acc": acc(pred_te, true[te]),
            "out_noisy_acc": acc(out[tr][noisy], y_tr[noisy]),
            "out_noisy_true_acc": acc(out[tr][noisy], t_tr[noisy]),
            "out_test_acc": acc(out[te], true[te]),
            "n_clean": int((~noisy).sum()), "n_noisy": int(noisy.sum()), "n_test": int(len(te)),
            "centres": centres}


# ---------------------------------------------------------------------------- shipped records
#: Fractions of the profile's steps at which the "over training" runs of chapters 14 and 16 stop.
SERIES_FRACTIONS = (1 / 30, 1 / 10, 1 / 3, 1.0)


def series_steps(steps: int, fractions: Any = SERIES_FRACTIONS) -> list[int]:
    """Step counts of the "over training" runs: ``fractions`` of ``steps``, at least 1, distinct.

    Parameters
    ----------
    steps : int
        The profile's (or chapter's) number of steps.
    fractions : sequence of float, default=SERIES_FRACTIONS
        Fractions in (0, 1].

    Returns
    -------
    list of int
        Sorted distinct step counts; the last is ``steps``.
    """
    return sorted({max(1, int(round(steps * f))) for f in fractions} | {int(steps)})


def default_series_width(S: Any) -> int:
    """Default width of the runs over training: the middle of a setup's widths (book: 129).

    Parameters
    ----------
    S : memgen.experiments.Setup
        The chapter's setup (its ``widths``).

    Returns
    -------
    int
        The middle width.
    """
    return int(S.widths[len(S.widths) // 2])


def available() -> dict[str, bool]:
    """Whether the optional packages of the topology (``ripser``, ``persim``) and power-law
    (``powerlaw``) numbers are installed.

    Returns
    -------
    dict of str to bool
        ``topology`` and ``powerlaw``.
    """
    def has(name: str) -> bool:
        return importlib.util.find_spec(name) is not None

    return {"topology": has("ripser") and has("persim"), "powerlaw": has("powerlaw")}


def diagnostic_record(weights: Weights, data: Dataset, *, task: str = "add") -> dict[str, Any]:
    """Chapters 14–16's numbers of one run at their defaults, for a shipped record.

    :func:`ncc_record` (centres ``trained``, chapter 16) always; :func:`heavy_tail_record`
    (chapter 15) and :func:`topology_record` (``uv`` cloud, 3 shuffles; chapter 14) when their
    packages are installed (:func:`available`); a record without them leaves those chapters
    unshipped.

    Parameters
    ----------
    weights : Weights
        The trained network.
    data : Dataset
        Its data.
    task : str, default="add"
        The operation (the Fourier frame of the topology clouds).

    Returns
    -------
    dict
        The keys of the records it merges.
    """
    have = available()
    out = ncc_record(weights, data, centres="trained")
    if have["powerlaw"]:
        out.update(heavy_tail_record(weights))
    if have["topology"]:
        out.update(topology_record(weights, task=task, which="uv", shuffles=3))
    return out
