"""Context and diagnostics chapters (14–16): topology, heavy-tailed spectra, hidden clusters.

One function per chapter, like :mod:`memgen.book.findings`: :func:`topology`,
:func:`heavy_tails` and :func:`clustering` take the chapter's parameters, train or load the runs
they need through the run store (or, given ``shipped``, look them up among shipped records that
already carry the chapter's numbers: :mod:`memgen.book.shipped`), and return
:class:`~memgen.book.findings.Findings` (verdicts by short id, the records the chapter draws, the
setup), so the introduction's findings table can list them.

They read the width × α grid that chapter 2 trains (ReLU unless ``activation`` is given): the
profile's widths and noise levels at the first seed, and every seed at the highest α — the runs
:func:`memgen.book.findings.scaling` trains — plus every seed at the α where the raw rule is
visible (as chapter 4 trains them). Weights are stored only at the end of a run, so "over
training" means runs of the same config trained to several step counts: with a constant learning
rate and full batch, the run of s steps is the first s steps of the longer one (same seed, same
data), at the cost of training each prefix once (``series_steps``, at one width).

The metrics themselves are in :mod:`memgen.diagnostics`; the verdicts use the one rule of
:mod:`memgen.verdicts`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .. import diagnostics as dg
from .. import experiments
from ..checkpoint import StoreError, atomic_save, checked_load, stored_digest
from ..configs import ConfigError, RunConfig, validate_noise
from ..diagnostics import SERIES_FRACTIONS, default_series_width, series_steps  # noqa: F401  (the chapters' names)
from ..store import default_store, sweep
from ..tasks import chance_level
from ..verdicts import (
    CONTRADICTED,
    NOT_SHOWN,
    REPRODUCED,
    Verdict,
    above_chance,
    combine,
    compare,
    judge_above_chance,
    judge_at_least,
    undefined,
)
from .findings import (
    FITS,
    SEEDS,
    Findings,
    _eq,
    chance,
    lowest_chance,
    n_test,
    settings_text,
    values,
    visible_noise,
)

#: configs -> their records (trained now, or shipped): see ``shipped`` of the chapter functions
Rows = Callable[[list[RunConfig]], list[dict[str, Any]]]

#: A power-law tail counts as fitted when powerlaw prefers it to an exponential at this p-value ...
PL_P = 0.1
#: ... with at least this many tail eigenvalues.
PL_MIN_TAIL = 10


# ---------------------------------------------------------------------------- shared
def _seeds(seeds: Sequence[int] | None) -> list[int]:
    return list(seeds) if seeds else list(SEEDS)


def _check_steps(series: Sequence[int] | None, steps: int) -> list[int]:
    if series is None:
        return series_steps(steps)
    if not isinstance(series, (list, tuple)) or not series or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in series):
        raise ConfigError(f"series={series!r} is not allowed; it must be a non-empty list of step counts >= 1")
    return sorted({int(s) for s in series})


def _setup(profile: str, task: str, widths: Sequence[int] | None, noises: Sequence[float] | None,
           seeds: list[int], run: dict[str, Any]) -> experiments.Setup:
    return experiments.setup(profile, task=task, widths=None if widths is None else list(widths),
                             noises=None if noises is None else list(noises), seeds=seeds, **run)


def _grid_configs(S: experiments.Setup, seeds: list[int]) -> list[RunConfig]:
    """Chapter 2's grid: every width × α at the first seed, every seed at the highest α."""
    heavy = max(S.noises)
    cfg = S.grid(seeds=seeds[:1])
    if len(seeds) > 1:
        cfg += S.grid(noises=[heavy], seeds=seeds[1:])
    return list(dict.fromkeys(cfg))


#: Bumped when a cached per-run number (:func:`cached_extra`) is computed differently.
EXTRA_VERSION = 1


def cached_extra(run: Any, name: str, extra: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """``extra(run)``, kept in the run store next to the run (``<key>.<name>.v<N>.pt``, checksummed).

    A run's weights never change once stored, so its topology and power-law numbers (seconds per
    run) are computed once: chapters 14-15 and the introduction, which re-judges every chapter,
    then read them. The file names the checksum of the run entry it was computed from: a run
    trained again (its entry damaged and replaced) gets its numbers computed again, and so does a
    damaged file. A store that cannot be written to only loses the caching. Changing how
    ``extra`` computes needs :data:`EXTRA_VERSION` bumped (or ``runs/`` deleted).

    Parameters
    ----------
    run : memgen.train.Run
        A stored run.
    name : str
        What ``extra`` computes, with its parameters (part of the file name; letters, digits, "-").
    extra : callable
        Run -> dict of Python numbers, strings and lists.

    Returns
    -------
    dict
        ``extra(run)``.
    """
    if not name.replace("-", "").isalnum():
        raise ValueError(f"name={name!r} is not allowed; use letters, digits and '-'")
    entry = default_store().path(run.config)
    path = entry.parent / f"{entry.stem}.{name}.v{EXTRA_VERSION}.pt"
    digest = stored_digest(entry)
    if path.exists():
        try:
            saved = checked_load(path)
            if digest is not None and saved.get("entry") == digest:
                return saved["data"]
        except StoreError:
            pass
    out = extra(run)
    if digest is not None:
        try:
            atomic_save(path, {"entry": digest, "data": out})
        except OSError as e:  # a read-only store: computed, not kept
            warnings.warn(f"run store: cannot keep {path.name} ({e}); computing it each time", stacklevel=2)
    return out


def _records(configs: list[RunConfig], extra, progress: bool | None, name: str | None) -> list[dict[str, Any]]:
    """:func:`memgen.experiments.table` records with ``extra(run)`` merged in (kept in the store
    under ``name`` unless it is None), in config order."""
    configs = list(dict.fromkeys(configs))
    rows = experiments.table(configs, progress=progress)
    by_key = {RunConfig.from_dict(r).key(): r for r in rows}
    runs = sweep(configs, progress=progress)
    get = extra if name is None else (lambda r: cached_extra(r, name, extra))
    return [{**by_key[r.config.key()], **get(r)} for r in runs]


def _rows_of(extra, progress: bool | None, shipped: Rows | None, name: str | None = None) -> Rows:
    """How a chapter gets its records: trained (or loaded) with ``extra`` merged in (kept in the
    store under ``name``, see :func:`cached_extra`), or, with ``shipped``, looked up among shipped
    records (chapter 14-16's numbers already in them)."""
    return shipped if shipped is not None else (lambda configs: _records(configs, extra, progress, name))


def _grid_and_visible(S: experiments.Setup, seeds: list[int], rows: Rows) -> tuple[list[dict[str, Any]], float]:
    """The grid's records plus every seed at the visible α (base width); the visible α."""
    grid = rows(_grid_configs(S, seeds))
    curve = [r for r in grid if r["width"] == S.base.width and r["seed"] == seeds[0]]
    if not curve:  # the base width is not in the grid: its α curve at the first seed
        curve = rows(S.grid(widths=[S.base.width], seeds=seeds[:1]))
        grid += curve
    vis = visible_noise(curve)
    have = {RunConfig.from_dict(r).key() for r in grid}
    more = [c for c in (S.config(noise=vis, seed=s) for s in seeds) if c.key() not in have]
    if more:
        grid += rows(more)
    return grid, vis


def _at(rows: Sequence[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    return sorted((r for r in rows if all(_eq(r.get(k), v) for k, v in where.items())), key=lambda r: r["seed"])


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of two sequences (average ranks for ties; NaN pairs dropped).

    Parameters
    ----------
    x, y : sequence of float
        Paired values.

    Returns
    -------
    float
        In [-1, 1]; NaN with fewer than 3 pairs or a constant side.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3:
        return float("nan")

    def rank(v: np.ndarray) -> np.ndarray:
        order = v.argsort(kind="mergesort")
        r = np.empty(v.size)
        r[order] = np.arange(v.size, dtype=float)
        for u in np.unique(v):  # ties: average rank
            m = v == u
            r[m] = r[m].mean()
        return r

    ra, rb = rank(a), rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _no_rule_in_output(rows: Sequence[dict[str, Any]], key: str = "test_acc") -> Verdict:
    """"The raw output shows no rule": Reproduced when no seed's test accuracy is above chance
    (1/P, the lowest level, for every task: :func:`~memgen.book.findings.lowest_chance`)."""
    r0 = rows[0]
    v = judge_above_chance("", values(rows, key), n_test(r0), lowest_chance(r0), name="raw test")
    return Verdict("the raw network's test accuracy is not above chance", NOT_SHOWN if v.reproduced else REPRODUCED,
                   v.evidence, v.numbers, key=v.key)


def _series(S: experiments.Setup, width: int | None, steps: Sequence[int] | None, noises: Sequence[float],
            seed: int) -> list[RunConfig]:
    w = default_series_width(S) if width is None else S.config(width=width).width
    st = _check_steps(steps, S.base.steps)
    return [S.config(width=w, noise=a, seed=seed, steps=s) for a in dict.fromkeys(noises) for s in st]


# ---------------------------------------------------------------------------- chapter 14: topology
def topology_extra(run: Any, *, which: str = "uv", shuffles: int = 3) -> dict[str, Any]:
    """:func:`memgen.diagnostics.topology_record` of a run's weights (for :func:`topology`).

    Parameters
    ----------
    run : Run
        A trained run (its weights and task are read).
    which : {"uv", "u", "v"}, default="uv"
        The embedding cloud (:func:`memgen.diagnostics.embedding_cloud`).
    shuffles : int, default=3
        Shuffled control clouds.

    Returns
    -------
    dict
        The record's H1 keys (``h1_mean``, ``h1_max``, ..., ``shuffled_<key>_mean``).
    """
    return dg.topology_record(run.weights, task=run.config.task, which=which, shuffles=shuffles)


def _shuffles(rows: Sequence[dict[str, Any]]) -> list[float]:
    """The H1 signature of every shuffled control cloud of ``rows`` (the control of both α claims:
    its spread is the shuffles' spread, not that of their per-seed means)."""
    return [x for r in rows for x in r["shuffled_h1_mean"]]


def judge_topology(grid: Sequence[dict[str, Any]], series: Sequence[dict[str, Any]], *, low: float, heavy: float,
                   width: int, settings: dict[str, str] | None = None) -> dict[str, Verdict]:
    """Chapter 14's claims from records with :func:`memgen.diagnostics.topology_record` keys.

    Parameters
    ----------
    grid : list of dict
        Records over widths and α (with seeds at α = ``heavy``).
    series : list of dict
        Records of one width and seed trained to several step counts at α = ``low``.
    low, heavy : float
        The lowest and the highest α of the grid.
    width : int
        The width the α claims are judged at.
    settings : dict or None, default=None
        Settings lines under ``low``, ``heavy`` and ``series``.

    Returns
    -------
    dict of str to Verdict
        ``circles`` (a network with the rule has a long H1 bar: above the shuffled control),
        ``tracks_rule`` (at α = ``heavy`` the signature is there while the raw output is at chance
        and the G part has the rule; Contradicted when the signature is measurable, ``circles``, and
        at its control level there), ``rises`` (the signature grows over training as the network
        learns).
    """
    st = settings or {}
    out: dict[str, Verdict] = {}
    lo = _at(grid, noise=low, width=width)
    r0 = lo[0]
    n, ch = n_test(r0), chance(r0)
    out["circles"] = compare(
        f"a network that has learned the rule (α = {low:g}, M = {width}) puts its tokens on a circle per key "
        "frequency: the longest H1 bar of each frequency's cloud (mean over frequencies) outlives the shuffled control",
        values(lo, "h1_mean"), _shuffles(lo), a_name="H1 per frequency",
        b_name="shuffled", b_unit="shuffles", floor=(values(lo, "test_acc"), n, ch), settings=st.get("low", ""))
    hv = _at(grid, noise=heavy, width=width)
    claim = (f"the H1 signature tracks the hidden rule, not the raw test accuracy: at α = {heavy:g} (M = {width}) the "
             "raw output is at chance, the G part has the rule, and the long H1 bar is still there")
    if _eq(heavy, low):
        out["tracks_rule"] = undefined(claim, "the grid has a single α", settings=st.get("heavy", ""))
    else:
        g = values(hv, "G_test_acc")
        parts = [_no_rule_in_output(hv), judge_above_chance("the G part has the rule", g, n, ch, name="G test"),
                 compare("H1 per frequency above the shuffled control", values(hv, "h1_mean"), _shuffles(hv),
                         a_name="H1 per frequency", b_name="shuffled", b_unit="shuffles", floor=(g, n, ch))]
        v = combine(claim, parts, settings=st.get("heavy", ""))
        measured = np.isfinite(parts[2].numbers.get("difference", np.nan))  # a missing value is no evidence
        if (out["circles"].reproduced and parts[0].reproduced and parts[1].reproduced and measured
                and not parts[2].reproduced):
            # the signature is measurable (it is there at the lowest α) and absent where only the G part has
            # the rule: it follows the output, which contradicts the claim
            v = Verdict(claim, CONTRADICTED, v.evidence + f" · the signature is there at α = {low:g} and gone at "
                        f"α = {heavy:g} although the G part has the rule: it follows the raw output", v.numbers,
                        v.settings, v.key)
        out["tracks_rule"] = v
    if len(series) < 2:
        out["rises"] = undefined("the H1 signature rises over training as the network learns the rule",
                                 "fewer than two step counts", settings=st.get("series", ""))
    else:
        ss = sorted(series, key=lambda r: r["steps"])
        first, last = ss[0], ss[-1]
        margin = max(float(np.ptp(r["shuffled_h1_mean"])) for r in ss)
        out["rises"] = combine(
            f"the H1 signature rises over training as the network learns the rule (α = {first['noise']:g}, "
            f"M = {first['width']}, steps {first['steps']} → {last['steps']})", [
                compare("test accuracy rises", last["test_acc"], first["test_acc"], a_name=f"test@{last['steps']}",
                        b_name=f"test@{first['steps']}", n=n_test(last),
                        floor=(last["test_acc"], n_test(last), chance(last))),
                compare("the H1 signature rises by more than the shuffled control's range", last["h1_mean"],
                        first["h1_mean"], a_name=f"H1 per frequency@{last['steps']}",
                        b_name=f"H1 per frequency@{first['steps']}", min_margin=margin)],
            settings=st.get("series", ""))
    return out


def topology(profile: str = "book", *, task: str = "add", widths: Sequence[int] | None = None,
             noises: Sequence[float] | None = None, width: int | None = None, seeds: Sequence[int] | None = None,
             series_width: int | None = None, series: Sequence[int] | None = None, which: str = "uv",
             shuffles: int = 3, progress: bool | None = False, shipped: Rows | None = None, **run: Any) -> Findings:
    """Chapter 14: persistent homology of the token embeddings across α, width and training.

    Parameters
    ----------
    profile : {"test", "book", "paper"}, default="book"
        The profile.
    task : str, default="add"
        The operation.
    widths, noises : list or None, default=None
        The grid (None: the profile's).
    width : int or None, default=None
        Width of the α claims and of the diagrams (None: the profile's).
    seeds : list of int or None, default=None
        Seeds at the highest α (None: 0, 1, 2).
    series_width : int or None, default=None
        Width of the runs over training (None: the middle of the grid's widths, :func:`default_series_width`).
    series : list of int or None, default=None
        Step counts of the runs over training (None: :func:`series_steps`).
    which : {"uv", "u", "v"}, default="uv"
        The embedding cloud (:func:`memgen.diagnostics.embedding_cloud`).
    shuffles : int, default=3
        Shuffled control clouds per run.
    progress : bool or None, default=False
        Progress bars while training.
    shipped : callable or None, default=None
        Configs -> their shipped records (:mod:`memgen.book.shipped`): nothing is trained and
        the records' own numbers are judged (None: train or load the runs).
    **run : Any
        Further RunConfig fields (e.g. ``steps``, ``activation``).

    Returns
    -------
    Findings
        Verdicts of :func:`judge_topology`; data ``grid`` and ``series`` (records),
        ``diagrams`` (H0/H1 diagrams of the first seed at ``width`` at the lowest and highest α: the
        key frequency with the most neurons, and the whole cloud), ``corr`` (Spearman ρ of the
        signature ``h1_mean`` with G and with raw test accuracy over the grid), ``low``,
        ``heavy``, ``width``.
    """
    dg._choice("which", which, dg.CLOUDS)
    dg._positive_int("shuffles", shuffles)
    seeds = _seeds(seeds)
    S = _setup(profile, task, widths, noises, seeds, {"width": width, **run})
    _check_steps(series, S.base.steps)  # before anything trains
    if series_width is not None:
        S.config(width=series_width)
    low, heavy, w = min(S.noises), max(S.noises), S.base.width
    rows = _rows_of(lambda r: topology_extra(r, which=which, shuffles=shuffles), progress, shipped,
                    f"topology-{which}-{shuffles}")
    grid = rows(_grid_configs(S, seeds) + S.grid(widths=[w], seeds=seeds[:1])
                + S.grid(widths=[w], noises=[heavy], seeds=seeds))
    ser = rows(_series(S, series_width, series, [low], seeds[0]))
    diagrams = {}
    for a in dict.fromkeys([low, heavy]) if shipped is None else ():  # they need weights
        r = sweep([S.config(noise=a, seed=seeds[0])])[0]
        clouds = dg.frequency_clouds(r.weights, r.config.task, which)
        top = max(clouds, key=lambda k: clouds[k].shape[1]) if clouds else None  # the most neurons
        diagrams[f"α = {a:g}, ω = {top}"] = (dg.h1_persistence(clouds[top])["dgms"] if clouds else
                                            [np.zeros((0, 2)), np.zeros((0, 2))])
        diagrams[f"α = {a:g}, whole cloud"] = dg.h1_persistence(dg.embedding_cloud(r.weights, which))["dgms"]
    g0 = [r for r in grid if r["seed"] == seeds[0]]
    corr = {"G": spearman(values(g0, "h1_mean"), values(g0, "G_test_acc")),
            "raw": spearman(values(g0, "h1_mean"), values(g0, "test_acc"))}
    st = {"low": settings_text(_at(grid, noise=low, width=w), profile),
          "heavy": settings_text(_at(grid, noise=heavy, width=w), profile),
          "series": settings_text(ser[::-1], profile, steps=", ".join(str(r["steps"]) for r in ser))}
    verdicts = judge_topology(grid, ser, low=low, heavy=heavy, width=w, settings=st)
    return Findings("14_topology", verdicts, {"grid": grid, "series": ser, "diagrams": diagrams, "corr": corr,
                                              "low": low, "heavy": heavy, "width": w, "which": which}, S)


# ---------------------------------------------------------------------------- chapter 15: heavy tails
def heavy_tail_extra(run: Any) -> dict[str, Any]:
    """:func:`memgen.diagnostics.heavy_tail_record` of a run's weights (for :func:`heavy_tails`).

    Parameters
    ----------
    run : Run
        A trained run (its weights are read).

    Returns
    -------
    dict
        The record's spectrum keys (``hill_<L>``, ``pl_alpha_<L>``, ..., ``eigs_<L>``).
    """
    return dg.heavy_tail_record(run.weights)


def _span(v: Sequence[float]) -> str:
    lo, hi = int(min(v)), int(max(v))
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def pl_fitted(row: dict[str, Any], layer: str) -> bool:
    """True when powerlaw prefers a power-law tail to an exponential one for ``layer`` of a record
    (R > 0, p < :data:`PL_P`) on at least :data:`PL_MIN_TAIL` tail eigenvalues.

    Parameters
    ----------
    row : dict
        A record with :func:`memgen.diagnostics.heavy_tail_record` keys (fitted).
    layer : {"U", "V", "W"}
        The layer.

    Returns
    -------
    bool
        Whether the power-law tail counts as fitted (the fit also valid: ``pl_valid_<layer>`` > 0).
    """
    return (row[f"pl_R_{layer}"] > 0 and row[f"pl_p_{layer}"] < PL_P and row[f"pl_ntail_{layer}"] >= PL_MIN_TAIL
            and row[f"pl_valid_{layer}"] > 0)


def pl_rejected(row: dict[str, Any], layer: str) -> bool:
    """True when powerlaw prefers an exponential tail (R < 0, p < :data:`PL_P`) for ``layer``.

    Parameters
    ----------
    row : dict
        A record with :func:`memgen.diagnostics.heavy_tail_record` keys (fitted).
    layer : {"U", "V", "W"}
        The layer.

    Returns
    -------
    bool
        Whether the power-law tail is rejected.
    """
    return row[f"pl_R_{layer}"] < 0 and row[f"pl_p_{layer}"] < PL_P


def judge_heavy_tails(rows: Sequence[dict[str, Any]], *, visible: float, heavy: float, width: int,
                      settings: str = "") -> dict[str, Verdict]:
    """Chapter 15's claims from records with :func:`memgen.diagnostics.heavy_tail_record` keys.

    Parameters
    ----------
    rows : list of dict
        Records at ``width`` over seeds at α = ``visible`` and α = ``heavy``.
    visible : float
        An α whose raw network generalizes (test above chance), if any.
    heavy : float
        The highest α (the memorizing network).
    width : int
        Their width.
    settings : str, default=""
        Where they were measured.

    Returns
    -------
    dict of str to Verdict
        ``separates`` (the mean Hill exponent is lower for the generalizing network, from the
        weights alone) and ``power_law`` (the generalizing network's layer spectra are power laws,
        HT-SR's premise).
    """
    out: dict[str, Verdict] = {}
    gen, mem = _at(rows, noise=visible, width=width), _at(rows, noise=heavy, width=width)
    r0 = gen[0]
    n, ch = n_test(r0), chance(r0)
    claim = (f"from the weights alone, the HT-SR exponent (mean Hill α of U, V, W) separates a generalizing network "
             f"(α = {visible:g}) from a memorizing one (α = {heavy:g}): lower, heavier-tailed, when it generalizes "
             f"(M = {width})")
    sees = judge_above_chance(f"the network at α = {visible:g} generalizes above chance", values(gen, "test_acc"), n,
                              ch, name="raw test")
    if _eq(visible, heavy) or not sees.reproduced:
        out["separates"] = undefined(claim, "no α below the highest has raw test accuracy above chance, so there is "
                                            f"no generalizing network to compare with ({sees.evidence})",
                                     settings=settings)
    else:
        out["separates"] = combine(claim, [
            sees, _no_rule_in_output(mem),
            compare("Hill α lower when it generalizes", values(mem, "hill_mean"), values(gen, "hill_mean"),
                    a_name=f"Hill α (α={heavy:g})", b_name=f"Hill α (α={visible:g})", digits=2)], settings=settings)
    claim = (f"the layer spectra of the generalizing network (α = {visible:g}, M = {width}) have power-law tails, "
             f"HT-SR's premise: powerlaw prefers a power law to an exponential (p < {PL_P}) on ≥ {PL_MIN_TAIL} tail "
             "eigenvalues in every layer and seed")
    cells = [(r["seed"], L) for r in gen for L in dg.LAYERS]
    fitted = sum(pl_fitted(r, L) for r in gen for L in dg.LAYERS)
    rejected = sum(pl_rejected(r, L) for r in gen for L in dg.LAYERS)
    ntail = [r[f"pl_ntail_{L}"] for r in gen for L in dg.LAYERS]
    neig = [r[f"n_eigs_{L}"] for r in gen for L in dg.LAYERS]
    ev = (f"power law preferred in {fitted} of {len(cells)} layer spectra, exponential preferred in {rejected}; tail "
          f"eigenvalues {_span(ntail)} of {_span(neig)} per spectrum")
    if not sees.reproduced:
        out["power_law"] = undefined(claim, f"no generalizing network to test ({sees.evidence})", settings=settings)
    else:
        v = REPRODUCED if fitted == len(cells) else CONTRADICTED if rejected > len(cells) / 2 else NOT_SHOWN
        out["power_law"] = Verdict(claim, v, ev, {"fitted": fitted, "rejected": rejected, "spectra": len(cells)},
                                   settings, f"power law {fitted}/{len(cells)}")
    return out


def heavy_tails(profile: str = "book", *, task: str = "add", widths: Sequence[int] | None = None,
                noises: Sequence[float] | None = None, width: int | None = None, seeds: Sequence[int] | None = None,
                progress: bool | None = False, shipped: Rows | None = None, **run: Any) -> Findings:
    """Chapter 15: power-law exponents of the layer spectra across the width × α grid.

    Parameters
    ----------
    profile : {"test", "book", "paper"}, default="book"
        The profile.
    task : str, default="add"
        The operation.
    widths, noises : list or None, default=None
        The grid (None: the profile's).
    width : int or None, default=None
        Width of the claims (None: the profile's).
    seeds : list of int or None, default=None
        Seeds at the highest and at the visible α (None: 0, 1, 2).
    progress : bool or None, default=False
        Progress bars while training.
    shipped : callable or None, default=None
        Configs -> their shipped records (:mod:`memgen.book.shipped`): nothing is trained and
        the records' own numbers are judged (None: train or load the runs).
    **run : Any
        Further RunConfig fields.

    Returns
    -------
    Findings
        Verdicts of :func:`judge_heavy_tails`; data ``grid`` (records with
        :func:`memgen.diagnostics.heavy_tail_record` keys), ``visible``, ``heavy``, ``width``,
        ``corr`` (Spearman ρ of the mean Hill α with raw and with G test accuracy over the grid,
        first seed).
    """
    seeds = _seeds(seeds)
    S = _setup(profile, task, widths, noises, seeds, {"width": width, **run})
    heavy, w = max(S.noises), S.base.width
    rows = _rows_of(heavy_tail_extra, progress, shipped, "heavy-tails")
    grid, vis = _grid_and_visible(S, seeds, rows)
    extra = [c for c in S.grid(widths=[w], noises=[heavy], seeds=seeds)
             if c.key() not in {RunConfig.from_dict(r).key() for r in grid}]
    if extra:
        grid += rows(extra)
    judged = _at(grid, noise=vis, width=w) + ([] if _eq(vis, heavy) else _at(grid, noise=heavy, width=w))
    g0 = [r for r in grid if r["seed"] == seeds[0]]
    corr = {"raw": spearman(values(g0, "hill_mean"), values(g0, "test_acc")),
            "G": spearman(values(g0, "hill_mean"), values(g0, "G_test_acc"))}
    verdicts = judge_heavy_tails(judged, visible=vis, heavy=heavy, width=w, settings=settings_text(judged, profile))
    return Findings("15_heavy_tails", verdicts, {"grid": grid, "visible": vis, "heavy": heavy, "width": w,
                                                 "corr": corr}, S)


# ---------------------------------------------------------------------------- chapter 16: clustering
def judge_clustering(rows: Sequence[dict[str, Any]], series: Sequence[dict[str, Any]], *, heavy: float, width: int,
                     settings: dict[str, str] | None = None) -> dict[str, Verdict]:
    """Chapter 16's claims from records with :func:`memgen.diagnostics.ncc_record` keys.

    Parameters
    ----------
    rows : list of dict
        Records at ``width`` over seeds at α = ``heavy``.
    series : list of dict
        Records of one width and seed at α = ``heavy`` trained to several step counts.
    heavy : float
        The chapter's α.
    width : int
        The width of ``rows``.
    settings : dict or None, default=None
        Settings lines under ``heavy`` and ``series``.

    Returns
    -------
    dict of str to Verdict
        ``test_clusters`` (test pairs sit with their true class inside the network, better than
        the output answers them), ``mislabelled`` (a mislabelled training pair sits with its true
        class inside while the output gives the trained label), ``emerges`` (the clusters appear
        over training).
    """
    st = settings or {}
    out: dict[str, Verdict] = {}
    hv = _at(rows, noise=heavy, width=width)
    r0 = hv[0]
    n, nn, ch = int(r0["n_test"]), int(r0["n_noisy"]), chance(r0)
    ncc_te = values(hv, "ncc_test_acc")
    out["test_clusters"] = combine(
        f"test pairs sit with their true class inside the network (nearest class centre of the hidden activations, "
        f"centres from training pairs only), better than the output answers them (α = {heavy:g}, M = {width})", [
            judge_above_chance("NCC on test pairs above chance", ncc_te, n, ch, name="NCC test"),
            compare("NCC beats the output on test pairs", ncc_te, values(hv, "out_test_acc"), a_name="NCC test",
                    b_name="output test", n=n, floor=(ncc_te, n, ch))], settings=st.get("heavy", ""))
    claim = (f"a mislabelled training pair sits with its true class inside the network while the output gives its "
             f"trained (wrong) label (α = {heavy:g}, M = {width})")
    if nn == 0:
        out["mislabelled"] = undefined(claim, "α = 0: there are no mislabelled pairs", settings=st.get("heavy", ""))
    else:
        nt = values(hv, "ncc_noisy_true_acc")
        out["mislabelled"] = combine(claim, [
            judge_at_least("the output gives the trained labels", values(hv, "out_noisy_acc"), nn, FITS,
                           name="output = trained label"),
            compare("inside, the true class is nearer than the trained label's", nt,
                    values(hv, "ncc_noisy_trained_acc"), a_name="NCC = true", b_name="NCC = trained", n=nn,
                    floor=(nt, nn, ch))], settings=st.get("heavy", ""))
    if len(series) < 2:
        out["emerges"] = undefined("the clusters by true class appear over training", "fewer than two step counts",
                                   settings=st.get("series", ""))
    else:
        ss = sorted(series, key=lambda r: r["steps"])
        first, last = ss[0], ss[-1]
        n_last, ch_last = int(last["n_test"]), chance(last)
        v = compare(
            f"the clusters by true class appear over training: NCC test accuracy rises from step {first['steps']} to "
            f"{last['steps']} (α = {first['noise']:g}, M = {first['width']})", last["ncc_test_acc"],
            first["ncc_test_acc"], a_name=f"NCC test@{last['steps']}", b_name=f"NCC test@{first['steps']}",
            n=n_last, floor=(last["ncc_test_acc"], n_last, ch_last), settings=st.get("series", ""))
        if v.verdict == CONTRADICTED and not above_chance(float(first["ncc_test_acc"]), n_last, ch_last):
            # a fall between two numbers at chance says nothing about clusters: there are none at either step
            v = replace(v, verdict=NOT_SHOWN, evidence=f"{v.evidence}; but neither is above chance ("
                                                       f"{ch_last:.3f}): no clusters at either step")
        out["emerges"] = v
    return out


def clustering(profile: str = "book", *, task: str = "add", widths: Sequence[int] | None = None,
               noises: Sequence[float] | None = None, width: int | None = None, noise: float | None = None,
               seeds: Sequence[int] | None = None, series_width: int | None = None,
               series: Sequence[int] | None = None, centres: str = "trained", progress: bool | None = False,
               shipped: Rows | None = None, **run: Any) -> Findings:
    """Chapter 16: nearest-class-centre accuracy of the hidden activations.

    Parameters
    ----------
    profile : {"test", "book", "paper"}, default="book"
        The profile.
    task : str, default="add"
        The operation.
    widths, noises : list or None, default=None
        The grid (None: the profile's).
    width : int or None, default=None
        Width of the claims (None: the profile's).
    noise : float or None, default=None
        α of the claims (None: the highest α of the grid).
    seeds : list of int or None, default=None
        Seeds at the claims' α (None: 0, 1, 2).
    series_width : int or None, default=None
        Width of the runs over training (None: the middle of the grid's widths, :func:`default_series_width`).
    series : list of int or None, default=None
        Step counts of the runs over training (None: :func:`series_steps`).
    centres : {"trained", "clean"}, default="trained"
        Class centres from every training pair by its trained label, or from the clean training
        pairs only (:func:`memgen.diagnostics.ncc_record`).
    progress : bool or None, default=False
        Progress bars while training.
    shipped : callable or None, default=None
        Configs -> their shipped records (:mod:`memgen.book.shipped`): nothing is trained and
        the records' own numbers are judged (None: train or load the runs).
    **run : Any
        Further RunConfig fields.

    Returns
    -------
    Findings
        Verdicts of :func:`judge_clustering`; data ``grid`` (records over the grid with
        :func:`memgen.diagnostics.ncc_record` keys, first seed, plus every seed at the chapter's α),
        ``series``, ``noise``, ``width``, ``centres``.
    """
    dg._choice("centres", centres, dg.CENTRES)
    seeds = _seeds(seeds)
    S = _setup(profile, task, widths, noises, seeds, {"width": width, **run})
    alpha = max(S.noises) if noise is None else validate_noise(noise)
    S.config(noise=alpha)  # the noisy count must fit the split
    _check_steps(series, S.base.steps)  # before anything trains
    if series_width is not None:
        S.config(width=series_width)
    w = S.base.width
    rows = _rows_of(lambda r: dg.ncc_record(r.weights, r.data, centres=centres), progress, shipped)
    grid = rows(_grid_configs(S, seeds) + S.grid(widths=[w], seeds=seeds[:1])
                + S.grid(widths=[w], noises=[alpha], seeds=seeds))
    ser = rows(_series(S, series_width, series, [alpha], seeds[0]))
    st = {"heavy": settings_text(_at(grid, noise=alpha, width=w), profile, centres=centres),
          "series": settings_text(ser[::-1], profile, steps=", ".join(str(r["steps"]) for r in ser),
                                  centres=centres)}
    verdicts = judge_clustering(grid, ser, heavy=alpha, width=w, settings=st)
    return Findings("16_clustering", verdicts, {"grid": grid, "series": ser, "noise": alpha, "width": w,
                                                "centres": centres}, S)


#: chapter notebook stem -> (title, findings function), for the introduction's findings table
CHAPTERS = {
    "14_topology": ("Topology of the learned representation", topology),
    "15_heavy_tails": ("Heavy-tailed self-regularization", heavy_tails),
    "16_clustering": ("Do hidden representations cluster by the rule?", clustering),
}


# ---------------------------------------------------------------------------- figures
def _trace(rows: Sequence[dict[str, Any]], x: str, y: str, name: str, i: int, dash: str | None = None,
           **kw: Any) -> Any:
    import plotly.graph_objects as go

    from .plots import COLORS, SYMBOLS, seed_stats

    xs, mean, lo, hi = seed_stats(rows, x, y)
    err = dict(type="data", symmetric=False, array=[h - m for h, m in zip(hi, mean)],
               arrayminus=[m - v for m, v in zip(mean, lo)], thickness=1.2, width=4)
    c = COLORS[i % len(COLORS)]
    return go.Scatter(x=xs, y=mean, name=name, mode="lines+markers", error_y=err,
                      line=dict(color=c, dash=dash), marker=dict(color=c, symbol=SYMBOLS[i % len(SYMBOLS)]), **kw)


def two_panel(rows: Sequence[dict[str, Any]], x: str, top: dict[str, str], bottom: dict[str, str], title: str,
              xtitle: str, top_title: str, p: int, *, log_x: bool = False, bottom_title: str = "accuracy",
              dash: dict[str, str] | None = None, top_accuracy: bool = False) -> Any:
    """A diagnostic (top) and accuracies (bottom, 0–1 with the chance line) against ``x``, sharing the x axis.

    Lines are means over the seeds present with error bars from the lowest to the highest seed.

    Parameters
    ----------
    rows : list of dict
        Records.
    x : str
        The x key (``noise``, ``width``, ``steps``).
    top, bottom : dict of str to str
        {key: legend name} of the top and the bottom panel.
    title, xtitle, top_title : str
        Figure title, x axis and top y axis titles.
    p : int
        The modulus (chance on the accuracy panel: 1/P, more for ``mul``, see
        :func:`~memgen.tasks.chance_level`).
    log_x : bool, default=False
        Logarithmic x axis.
    bottom_title : str, default="accuracy"
        Bottom y axis title.
    dash : dict or None, default=None
        {key: dash style}.
    top_accuracy : bool, default=False
        The top panel is an accuracy too: 0–1 with the chance line.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    from plotly.subplots import make_subplots

    from .plots import ACC_RANGE, chance_label

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.55, 0.45])
    dash = dash or {}
    for i, (k, name) in enumerate(top.items()):
        fig.add_trace(_trace(rows, x, k, name, i, dash.get(k), legendgroup="top"), row=1, col=1)
    for j, (k, name) in enumerate(bottom.items()):
        fig.add_trace(_trace(rows, x, k, name, len(top) + j, dash.get(k), legendgroup="bottom"), row=2, col=1)
    ch = chance_level(rows[0].get("task", "add") if rows else "add", p)
    for row in (1, 2) if top_accuracy else (2,):
        fig.add_hline(y=ch, line_dash="dash", line_color="#7f7f7f", line_width=1, row=row, col=1,
                      annotation_text=chance_label(ch), annotation_position="top right",
                      annotation_font_color="#7f7f7f", annotation_bgcolor="rgba(255, 255, 255, 0.8)")
    fig.update_yaxes(title_text=top_title, row=1, col=1, automargin=True,
                     **({"range": list(ACC_RANGE)} if top_accuracy else {}))
    fig.update_yaxes(title_text=bottom_title, range=list(ACC_RANGE), row=2, col=1, automargin=True)
    fig.update_xaxes(title_text=xtitle, row=2, col=1, automargin=True)
    if log_x:
        xs = sorted({r[x] for r in rows})
        fig.update_xaxes(type="log", tickvals=xs, ticktext=[f"{v:g}" for v in xs])
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", font=dict(size=15)), template="plotly_white",
                      height=560, margin=dict(l=10, r=10, t=70, b=10),
                      legend=dict(orientation="h", x=0, xanchor="left", y=-0.12, yanchor="top", font=dict(size=12)))
    return fig


def diagram_figure(diagrams: dict[str, Sequence[np.ndarray]], title: str) -> Any:
    """Persistence diagrams (H0 and H1, birth against death), one panel per entry, two per row.

    Parameters
    ----------
    diagrams : dict of str to list of numpy.ndarray
        {panel title: [H0, H1]} as from :func:`memgen.diagnostics.h1_persistence`.
    title : str
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure; infinite deaths (the one H0 class that never dies) are left out.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .plots import COLORS

    names = list(diagrams)
    ncol = min(2, len(names))
    nrow = -(-len(names) // ncol)
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=names, vertical_spacing=0.14)
    top = max([float(np.max(d[np.isfinite(d)])) for dg_ in diagrams.values() for d in dg_ if d.size] + [1.0]) * 1.05
    for i, name in enumerate(names):
        row, c = i // ncol + 1, i % ncol + 1
        for h, d in enumerate(diagrams[name][:2]):
            d = d[np.isfinite(d[:, 1])] if d.size else d
            fig.add_trace(go.Scatter(x=d[:, 0] if d.size else [], y=d[:, 1] if d.size else [], mode="markers",
                                     name=f"H{h}", legendgroup=f"H{h}", showlegend=i == 0,
                                     marker=dict(color=COLORS[h], symbol=("circle", "diamond")[h], size=7)),
                          row=row, col=c)
        fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", line=dict(color="#7f7f7f", dash="dot"),
                                 showlegend=False, hoverinfo="skip"), row=row, col=c)
        fig.update_xaxes(title_text="birth" if row == nrow else None, range=[0, top], row=row, col=c)
        fig.update_yaxes(title_text="death" if c == 1 else None, range=[0, top], row=row, col=c)
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", font=dict(size=15)), template="plotly_white",
                      height=300 * nrow + 120, margin=dict(l=10, r=10, t=80, b=10),
                      legend=dict(orientation="h", x=0, xanchor="left", y=-0.2, yanchor="top"))
    return fig


def scatter_figure(rows: Sequence[dict[str, Any]], x: dict[str, str], y: str, ytitle: str, title: str,
                   xtitle: str = "test accuracy", p: int | None = None, log_y: bool = False) -> Any:
    """``y`` of every record against one or more accuracies (one series per ``x`` key), hover
    text naming the width and α.

    Parameters
    ----------
    rows : list of dict
        Records (with ``width``, ``noise``, ``seed``).
    x : dict of str to str
        {accuracy key: legend name}.
    y : str
        The diagnostic key.
    ytitle, title : str
        The y-axis and figure titles.
    xtitle : str, default="test accuracy"
        The x-axis title.
    p : int or None, default=None
        The modulus: a dashed vertical line at chance 1/P.
    log_y : bool, default=False
        Logarithmic y axis.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    import plotly.graph_objects as go

    from .plots import COLORS, SYMBOLS

    fig = go.Figure()
    text = [f"M={r['width']} α={r['noise']:g} seed {r['seed']}" for r in rows]
    for i, (k, name) in enumerate(x.items()):
        fig.add_trace(go.Scatter(x=[r[k] for r in rows], y=[r[y] for r in rows], mode="markers", name=name,
                                 text=text, hovertemplate="%{text}<br>%{x:.3f}, %{y:.3g}",
                                 marker=dict(color=COLORS[i % len(COLORS)], symbol=SYMBOLS[i % len(SYMBOLS)], size=8,
                                             opacity=0.8)))
    if p:
        fig.add_vline(x=1 / p, line_dash="dash", line_color="#7f7f7f", line_width=1)
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", font=dict(size=15)), template="plotly_white",
                      xaxis=dict(title=xtitle, range=[-0.03, 1.05]), yaxis=dict(title=ytitle),
                      margin=dict(l=10, r=10, t=70, b=10),
                      legend=dict(orientation="h", x=0, xanchor="left", y=-0.2, yanchor="top"))
    if log_y:
        fig.update_yaxes(type="log", dtick=1)
    return fig


def esd_figure(rows: Sequence[dict[str, Any]], title: str) -> Any:
    """The layer spectra of a few runs as complementary CDFs on log–log axes, one panel per layer,
    with each run's fitted power-law tail (``powerlaw``) as a dotted line.

    Parameters
    ----------
    rows : list of dict
        Records with :func:`memgen.diagnostics.heavy_tail_record` keys (one line each, named by α).
    title : str
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure: x the eigenvalue λ, y the fraction of eigenvalues ≥ λ.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .plots import COLORS

    fig = make_subplots(rows=1, cols=len(dg.LAYERS), subplot_titles=list(dg.LAYERS), shared_yaxes=True)
    for c, L in enumerate(dg.LAYERS, start=1):
        for i, r in enumerate(rows):
            ev = np.sort(np.asarray(r[f"eigs_{L}"]))[::-1]
            if ev.size == 0:
                continue
            ccdf = np.arange(1, ev.size + 1) / ev.size
            color = COLORS[i % len(COLORS)]
            fig.add_trace(go.Scatter(x=ev, y=ccdf, mode="markers", name=f"α = {r['noise']:g}",
                                     legendgroup=str(i), showlegend=c == 1,
                                     marker=dict(color=color, size=5)), row=1, col=c)
            a, ntail = r.get(f"pl_alpha_{L}"), r.get(f"pl_ntail_{L}")
            if a and np.isfinite(a) and ntail and ntail >= 2:
                xmin = ev[int(ntail) - 1]
                xs = np.geomspace(xmin, ev[0], 20)
                fig.add_trace(go.Scatter(x=xs, y=ntail / ev.size * (xs / xmin) ** (1 - a), mode="lines",
                                         line=dict(color=color, dash="dot"), showlegend=False,
                                         hovertemplate=f"power-law fit α = {a:.2f}<extra></extra>"),
                              row=1, col=c)
        fig.update_xaxes(type="log", dtick=1, title_text="eigenvalue λ", row=1, col=c)
    fig.update_yaxes(type="log", dtick=1, title_text="fraction ≥ λ", row=1, col=1)
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", font=dict(size=15)), template="plotly_white",
                      height=420, margin=dict(l=10, r=10, t=80, b=10),
                      legend=dict(orientation="h", x=0, xanchor="left", y=-0.25, yanchor="top"))
    return fig


def grid_order(row: dict[str, Any]) -> tuple:
    """Sort key of records for tables: width, α, steps, seed.

    Parameters
    ----------
    row : dict
        A record with ``width``, ``noise``, ``steps`` and ``seed``.

    Returns
    -------
    tuple
        ``(width, noise, steps, seed)``.
    """
    return (row["width"], row["noise"], row["steps"], row["seed"])
