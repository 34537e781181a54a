"""Every claim the book states, judged by the one rule of :mod:`memgen.verdicts`.

One function per chapter (:func:`scaling`, :func:`noise_first`, :func:`hidden_rule`,
:func:`filtration`, :func:`partition`, :func:`misspecification`) takes the chapter's parameters,
trains or loads the runs it needs (through the run store, so a second call is cheap), and returns
:class:`Findings`: the verdicts, keyed by a short id, and the records the chapter draws its
figures from. The chapter and the introduction's findings table call the same function, so the
table shows exactly what the chapters state.

The judging itself is done by ``judge_*`` functions that read plain *records*: flat dicts with
the RunConfig fields and the metrics of :func:`memgen.experiments.table` (``train_acc``,
``noisy_acc``, ``test_acc``, ``G_test_acc``, ``R_noisy_acc``, ``phase_error``, ...), plus the few
extra keys a chapter documents (``swap_<activation>_test_acc``, ``concentration_median``, ...).
Records from shipped results (``memgen.results``) have the same keys, so a chapter can judge
results trained elsewhere with the same functions. ``n_test`` and ``n_noisy`` are read from the
record when present and otherwise derived from its config fields.

Every difference between runs is judged over several seeds (``seeds``, three by default; the
``book`` profile's activation sweep of chapter 2, one: :attr:`memgen.configs.Profile.activation_seeds`;
chapter 10, five; chapter 12's phase grid and the run chapters 14 and 16 follow over training, the
first seed) and every accuracy against chance (1/P; for ``mul`` see :func:`chance_level`) with a
95% interval on the number of pairs evaluated; see :mod:`memgen.verdicts`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import baselines, experiments, fourier
from ..analysis import (
    SWAPS,
    control_record,
    mirror_record,
    neuron_record,
    partition_record,
    random_concentration,
)
from ..configs import PROFILES, TRAINING_FIELDS, RunConfig
from ..experiments import Setup
from ..store import sweep
from ..tasks import chance_level  # the chapters call it as mb.findings.chance_level
from ..verdicts import REPRODUCED, Verdict, combine, compare, fmt_seeds, judge_above_chance, judge_at_least, undefined
from . import tables

#: The seeds every claimed difference is judged over (the paper profile's own seeds).
SEEDS = (0, 1, 2)
#: Accuracy on the noisy labels that counts as "fits (memorizes) them".
FITS = 0.95
#: Training accuracy that counts as interpolation (every label fitted, up to a few).
INTERPOLATES = 0.99


@dataclass
class Findings:
    """What a chapter states and the records it was judged on.

    Parameters
    ----------
    chapter : str
        The chapter's document name, e.g. ``05_frequency_filtration``.
    verdicts : dict of str to Verdict
        The judged claims, by short id, in the order the chapter states them.
    data : dict, default={}
        The records, runs and tables the chapter draws.
    setup : Setup or None, default=None
        The chapter's validated parameters (None: none, e.g. findings judged on shipped records).
    """

    chapter: str
    verdicts: dict[str, Verdict]
    data: dict[str, Any] = field(default_factory=dict)
    setup: Setup | None = None

    def __iter__(self):
        return iter(self.verdicts.values())


# ---------------------------------------------------------------------------- record helpers
def _cfg(row: dict[str, Any]) -> RunConfig:
    return RunConfig.from_dict(row)


def n_test(row: dict[str, Any]) -> int:
    """Number of test pairs of a record (``n_test`` or from its config).

    Parameters
    ----------
    row : dict
        A record: RunConfig fields, with or without ``n_test``.

    Returns
    -------
    int
        ``n_test`` when the record gives a non-zero one, else P² minus the training pairs.
    """
    return int(row["n_test"]) if row.get("n_test") else row["p"] ** 2 - _cfg(row).n_train


def n_noisy(row: dict[str, Any]) -> int:
    """Number of corrupted training labels of a record (``n_noisy`` or from its config).

    Parameters
    ----------
    row : dict
        A record: RunConfig fields, with or without ``n_noisy``.

    Returns
    -------
    int
        ``n_noisy`` when the record gives one, else the count its config implies.
    """
    return int(row["n_noisy"]) if row.get("n_noisy") is not None else _cfg(row).n_noisy


def chance(row: dict[str, Any]) -> float:
    """Chance accuracy of a record (:func:`chance_level`: 1/P, more for ``mul``).

    Parameters
    ----------
    row : dict
        A record with ``p`` (and ``task``; ``add`` when absent).

    Returns
    -------
    float
        The chance level.
    """
    return chance_level(row.get("task", "add"), row["p"])


def lowest_chance(row: dict[str, Any]) -> float:
    """1/P: the chance level for a claim that an accuracy is *not* above chance.

    :func:`chance` is the level an accuracy must beat; for ``mul`` it is higher than 1/P. A claim
    that something shows no rule passes at or below the level, so it is judged at the lowest one.

    Parameters
    ----------
    row : dict
        A record with ``p``.

    Returns
    -------
    float
        1/P.
    """
    return 1.0 / row["p"]


def values(rows: Sequence[dict[str, Any]], key: str, **where: Any) -> np.ndarray:
    """``key`` of every record matching ``where`` (one value per seed), in seed order.

    Parameters
    ----------
    rows : list of dict
        Records with ``seed``.
    key : str
        The column.
    **where : Any
        Column values a record must equal to be kept (floats up to 1e-9).

    Returns
    -------
    numpy.ndarray
        The values as floats, sorted by seed; NaN where a record lacks ``key`` or holds None.
    """
    sel = sorted((r for r in rows if all(_eq(r.get(k), v) for k, v in where.items())), key=lambda r: r["seed"])
    return np.array([np.nan if r.get(key) is None else r[key] for r in sel], dtype=float)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) < 1e-9
    return a == b


def _one(rows: Sequence[dict[str, Any]], **where: Any) -> dict[str, Any]:
    for r in rows:
        if all(_eq(r.get(k), v) for k, v in where.items()):
            return r
    raise KeyError(f"no record with {where}")


def _off_profile(rows: Sequence[dict[str, Any]], profile: str, skip: Sequence[str] = ()) -> list[str]:
    """``"<key> <value>"`` for each :data:`~memgen.configs.TRAINING_FIELDS` field that every record sets alike and
    to another value than ``profile``'s runs (empty for an unknown profile), except those named
    in ``skip`` (with ``_`` or a space, singular or plural)."""
    if profile not in PROFILES:
        return []
    ref = PROFILES[profile].config().to_dict()
    skip = {k.replace(" ", "_") for k in skip}
    out = []
    for k in TRAINING_FIELDS:
        if k in skip or f"{k}s" in skip:  # named by the caller, e.g. "weight decay" or "activations"
            continue
        vals = {repr(r.get(k)) for r in rows}
        if len(vals) == 1 and k in rows[0] and rows[0][k] != ref.get(k):
            out.append(f"{k.replace('_', ' ')} {rows[0][k]:g}" if isinstance(rows[0][k], float)
                       else f"{k.replace('_', ' ')} {rows[0][k]}")
    return out


def settings_text(rows: Sequence[dict[str, Any]], profile: str = "", **shown: Any) -> str:
    """Where records were measured, in one line: profile, task, P, steps, the training settings
    the records share that differ from the profile's (e.g. ``weight decay 0.1``), widths, α, seeds.

    Parameters
    ----------
    rows : list of dict
        The records (RunConfig fields).
    profile : str, default=""
        The profile they ran under ("": not named, and no training settings compared).
    **shown : Any
        Further ``<key> <value>`` parts, placed before the seeds.

    Returns
    -------
    str
        The parts joined by "; " (just the profile, or "", when ``rows`` is empty).
    """
    if not rows:
        return f"profile {profile}" if profile else ""
    r0 = rows[0]
    seeds = sorted({r["seed"] for r in rows})
    parts = [f"profile {profile}" if profile else "", f"{r0['task']} mod P = {r0['p']}", f"{r0['steps']} steps",
             *_off_profile(rows, profile, skip=list(shown))]
    widths = sorted({r["width"] for r in rows})
    parts.append(f"M = {widths[0]}" if len(widths) == 1 else f"M = {widths[0]}–{widths[-1]}")
    noises = sorted({r["noise"] for r in rows})
    parts.append("α = " + ", ".join(f"{a:g}" for a in noises))
    parts += [f"{k} {v}" for k, v in shown.items()]
    parts.append(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
    return "; ".join(p for p in parts if p)


def _seeds_param(seeds: Sequence[int] | None) -> list[int]:
    return list(seeds) if seeds else list(SEEDS)


# ---------------------------------------------------------------------------- chapter 2: scaling
def interpolation_width(rows: Sequence[dict[str, Any]], level: float = INTERPOLATES) -> int | None:
    """Smallest width at which every seed's training accuracy reaches ``level`` (None: none).

    Parameters
    ----------
    rows : list of dict
        Records over widths (and seeds) with ``train_acc``.
    level : float, default=INTERPOLATES
        The training accuracy that counts as interpolation (0.99).

    Returns
    -------
    int or None
        The width, or None when no width interpolates in every seed.
    """
    for w in sorted({r["width"] for r in rows}):
        acc = values(rows, "train_acc", width=w)
        if acc.size and np.all(acc >= level):
            return int(w)
    return None


def _threshold_index(rows: Sequence[dict[str, Any]], widths: Sequence[int], seed: int) -> int:
    """Index in ``widths`` of the first width whose run of ``seed`` interpolates (len: none)."""
    for i, w in enumerate(widths):
        acc = values(rows, "train_acc", width=w, seed=seed)
        if acc.size and acc[0] >= INTERPOLATES:
            return i
    return len(widths)


def judge_scaling(grid: Sequence[dict[str, Any]], activations: Sequence[dict[str, Any]],
                  weight_decay: Sequence[dict[str, Any]], *, heavy: float, side: float,
                  settings: dict[str, str] | None = None) -> dict[str, Verdict]:
    """Chapter 2's claims from records.

    Parameters
    ----------
    grid : list of dict
        ReLU records over widths (several seeds at α = ``heavy``).
    activations : list of dict
        Records at α = ``side`` over widths, seeds and ``activation`` (empty: ``ceiling`` is not
        judged, e.g. shipped results without that sweep).
    weight_decay : list of dict
        Records at α = ``side`` over widths, seeds and ``weight_decay`` (empty: ``weight_decay`` is
        not judged).
    heavy, side : float
        The α of the width claims and of the activation / weight-decay claims.
    settings : dict or None, default=None
        Settings lines for ``grid``, ``activations`` and ``weight_decay``.

    Returns
    -------
    dict of str to Verdict
        ``bigger``, ``g_bigger``, ``dip``, ``weight_decay``, ``ceiling``.
    """
    st = settings or {}
    out: dict[str, Verdict] = {}
    hr = [r for r in grid if _eq(r["noise"], heavy)]
    widths = sorted({r["width"] for r in hr})
    wide = widths[-1]
    r_wide = _one(hr, width=wide)
    n, ch = n_test(r_wide), chance(r_wide)
    thr = interpolation_width(hr)
    claim = (f"in the over-parameterized regime a larger network generalizes better at α = {heavy:g} "
             "while fitting the wrong labels")
    if thr is None or thr == wide:
        out["bigger"] = undefined(claim, f"no width below the widest interpolates at α = {heavy:g} (training "
                                         f"accuracy ≥ {INTERPOLATES} in every seed), so there is no "
                                         "over-parameterized range to compare", settings=st.get("grid", ""))
    else:
        out["bigger"] = combine(claim, [
            compare(f"test accuracy grows from M = {thr} (interpolation threshold) to M = {wide}",
                    values(hr, "test_acc", width=wide), values(hr, "test_acc", width=thr),
                    a_name=f"test M={wide}", b_name=f"test M={thr}", n=n,
                    floor=(values(hr, "test_acc", width=wide), n, ch)),
            judge_at_least(f"M = {wide} fits the wrong labels", values(hr, "noisy_acc", width=wide),
                           n_noisy(r_wide), FITS, name="noisy labels fitted")], settings=st.get("grid", ""))
    narrow = widths[0]
    out["g_bigger"] = compare(
        f"control: the rule inside (the frequency-filtered G part) gets better with width at α = {heavy:g}",
        values(hr, "G_test_acc", width=wide), values(hr, "G_test_acc", width=narrow),
        a_name=f"G test M={wide}", b_name=f"G test M={narrow}", n=n,
        floor=(values(hr, "G_test_acc", width=wide), n, ch), settings=st.get("grid", ""))
    claim = f"test accuracy dips at the interpolation threshold and climbs again (double descent), α = {heavy:g}"
    before = [w for w in widths if thr is not None and w < thr]
    if thr is None or not before or thr == wide:
        why = ("no width interpolates" if thr is None else
               f"the threshold M = {thr} is the {'narrowest' if not before else 'widest'} width swept")
        out["dip"] = undefined(claim, why + ": a dip around it cannot be seen", settings=st.get("grid", ""))
    else:
        wb = max(before, key=lambda w: np.nanmean(values(hr, "test_acc", width=w)))
        out["dip"] = combine(claim, [
            compare(f"M = {wb} (below the threshold) beats M = {thr}", values(hr, "test_acc", width=wb),
                    values(hr, "test_acc", width=thr), a_name=f"test M={wb}", b_name=f"test M={thr}", n=n,
                    floor=(values(hr, "test_acc", width=wb), n, ch)),
            compare(f"M = {wide} beats M = {thr}", values(hr, "test_acc", width=wide),
                    values(hr, "test_acc", width=thr), a_name=f"test M={wide}", b_name=f"test M={thr}", n=n,
                    floor=(values(hr, "test_acc", width=wide), n, ch))], settings=st.get("grid", ""))
    if weight_decay:  # shipped results may lack the weight-decay sweep: then its claim is not judged
        # weight decay: the interpolation threshold per seed, as an index into the widths swept
        wds = sorted({r["weight_decay"] for r in weight_decay})
        wws = sorted({r["width"] for r in weight_decay})
        seeds = sorted({r["seed"] for r in weight_decay})
        idx = {wd: [_threshold_index([r for r in weight_decay if _eq(r["weight_decay"], wd)], wws, s) for s in seeds]
               for wd in wds}
        name = lambda i: f"M={wws[i]}" if i < len(wws) else f">{wws[-1]}"  # noqa: E731
        ev = "; ".join(f"wd {wd:g}: " + ", ".join(name(i) for i in ix) for wd, ix in idx.items())
        v = compare(f"stronger weight decay moves the interpolation threshold to larger widths (α = {side:g})",
                    idx[wds[-1]], idx[wds[0]], a_name=f"threshold index wd {wds[-1]:g}",
                    b_name=f"threshold index wd {wds[0]:g}", min_margin=0.5, digits=1,
                    settings=st.get("weight_decay", ""))
        edge = {i for ix in idx.values() for i in ix}
        if edge in ({0}, {len(wws)}):  # every threshold at one end of the sweep: a shift cannot be seen
            why = (f"every weight decay interpolates already at the narrowest width swept (M = {wws[0]})" if edge == {0}
                   else "no weight decay interpolates at any width swept")
            v = Verdict(v.claim, v.verdict, f"{v.evidence}; {why}: a shift cannot be seen in this sweep",
                        v.numbers, v.settings, v.key)
        out["weight_decay"] = Verdict(v.claim, v.verdict, f"first interpolating width per seed: {ev} ({v.evidence})",
                                      v.numbers, v.settings, ev)
    if not activations:
        return out
    # activations: the widest width of the activation sweep
    aw = max(r["width"] for r in activations)
    ar = [r for r in activations if r["width"] == aw]
    relu = values(ar, "test_acc", activation="relu")
    ra = _one(ar, activation="relu")
    parts = [compare(f"ReLU beats {act} at M = {aw}", relu, values(ar, "test_acc", activation=act),
                     a_name="ReLU test", b_name=f"{act} test", n=n_test(ra), floor=(relu, n_test(ra), chance(ra)))
             for act in sorted({r["activation"] for r in ar} - {"relu"})]
    if parts:
        out["ceiling"] = combine(f"quadratic and GeLU hit a ceiling on test accuracy that ReLU does not "
                                 f"(α = {side:g}, widest M = {aw})", parts, settings=st.get("activations", ""))
    return out


def scaling(profile: str = "book", *, task: str = "add", noises: Sequence[float] = (0.0, 0.4, 0.8),
            widths: Sequence[int] | None = None, side_widths: Sequence[int] | None = None,
            side_noise: float | None = None, activations: Sequence[str] = ("relu", "quadratic", "gelu"),
            wd_factors: Sequence[float] = (1.0, 3.0),
            wd_widths: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
            side_seeds: Sequence[int] | None = None, progress: bool | None = None, **run: Any) -> Findings:
    """Chapter 2: width, double descent, weight decay and activations.

    Trains (or loads) the width × α grid at the first seed, every seed at the highest α, and the
    activation and weight-decay sweeps at α = ``side_noise`` (default: the highest α): the
    weight-decay sweep over every seed, the activation sweep over ``side_seeds``.
    ``side_widths`` are the activation sweep's (default: the profile's ``activation_widths``
    when ``widths`` is not given, else every other width; the ``book`` profile stops below its
    widest width, which would cost its CPU build two more minutes). ``side_seeds`` (default: the
    first ``activation_seeds`` of ``seeds`` when the profile sets it, whatever ``widths`` and
    ``seeds`` are given; one for ``book``; else every seed). ``wd_widths`` (default: the profile's
    ``wd_widths`` when ``widths`` is not given and the profile sets them, else the widths up to
    the fourth) locate the interpolation threshold.

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        The profile whose defaults and grids are used.
    task : str, default="add"
        The operation.
    noises : sequence of float, default=(0.0, 0.4, 0.8)
        The α grid; its highest α is the α of the width claims.
    widths : sequence of int or None, default=None
        The width grid (None: the profile's).
    side_widths : sequence of int or None, default=None
        Widths of the activation sweep (None: as above).
    side_noise : float or None, default=None
        α of the activation and weight-decay sweeps (None: the highest α).
    activations : sequence of str, default=("relu", "quadratic", "gelu")
        The activations compared (ReLU against each other one).
    wd_factors : sequence of float, default=(1.0, 3.0)
        The weight decays of the weight-decay sweep, as multiples of the base config's.
    wd_widths : sequence of int or None, default=None
        Widths of the weight-decay sweep (None: as above).
    seeds : sequence of int or None, default=None
        Seeds at the highest α and of the weight-decay sweep; the grid uses the first (None or
        empty: 0, 1, 2).
    side_seeds : sequence of int or None, default=None
        Seeds of the activation sweep (None: as above).
    progress : bool or None, default=None
        Progress bars while training.
    **run : Any
        Further RunConfig fields (e.g. ``steps``, ``p``); None means the profile's default.

    Returns
    -------
    Findings
        Verdicts of :func:`judge_scaling`; data ``grid``, ``activations``, ``weight_decay`` (records).
    """
    seeds = _seeds_param(seeds)
    S = experiments.setup(profile, task=task, widths=widths, noises=list(noises), seeds=seeds, **run)
    heavy = max(S.noises)
    side = heavy if side_noise is None else float(side_noise)
    own = S.profile.activation_widths if widths is None else ()  # the profile's, for its widths
    side_w = list(side_widths or own or S.widths[::2])
    own_wd = S.profile.wd_widths if widths is None else ()
    wd_w = list(wd_widths or own_wd or S.widths[:4])
    own_seeds = seeds[:S.profile.activation_seeds or None]
    given = experiments.checked_grid("side_seeds", side_seeds, lambda s: S.config(seed=s).seed, "integers >= 0")
    act_seeds = list(given or own_seeds)
    wds = sorted({round(S.base.weight_decay * f, 6) for f in wd_factors})
    for a in activations:
        S.config(activation=a)
    grid_cfg = S.grid(seeds=seeds[:1]) + S.grid(noises=[heavy], seeds=seeds[1:]) if len(seeds) > 1 else S.grid()
    act_cfg = [c for a in activations for c in S.grid(widths=side_w, noises=[side], activation=a, seeds=act_seeds)]
    wd_cfg = [c for wd in wds for c in S.grid(widths=wd_w, noises=[side], weight_decay=wd)]
    # one sweep: runs that differ only in seed, noise or weight decay train as one batch
    rows = experiments.table(grid_cfg + act_cfg + wd_cfg, progress=progress)
    by_key = {RunConfig.from_dict(r).key(): r for r in rows}
    grid = [by_key[c.key()] for c in dict.fromkeys(grid_cfg)]
    act = [by_key[c.key()] for c in dict.fromkeys(act_cfg)]
    wd = [by_key[c.key()] for c in dict.fromkeys(wd_cfg)]
    st = {"grid": settings_text([r for r in grid if _eq(r["noise"], heavy)], profile),
          "activations": settings_text(act, profile, activations=", ".join(activations)),
          "weight_decay": settings_text(wd, profile, **{"weight decay": ", ".join(f"{x:g}" for x in wds)})}
    verdicts = judge_scaling(grid, act, wd, heavy=heavy, side=side, settings=st)
    return Findings("02_scaling", verdicts, {"grid": grid, "activations": act, "weight_decay": wd,
                                              "heavy": heavy, "side": side}, S)


# ---------------------------------------------------------------------------- chapter 3: noise first
def judge_noise_first(order: Sequence[dict[str, Any]], gaps: Sequence[dict[str, Any]], *, steps: int,
                      settings: str = "") -> dict[str, Verdict]:
    """Chapter 3's claims from per-run rows.

    Parameters
    ----------
    order : list of dict
        :func:`memgen.book.tables.memorization_order` rows (``width``, ``seed``, ``noisy 50%``,
        ``clean 50%``, ``noisy 90%``, ...): first steps reaching each level (NaN: never).
    gaps : list of dict
        ``width``, ``seed``, ``gap`` (:func:`memgen.book.tables.early_gradient_gap`).
    steps : int
        Length of the runs (a level never reached counts as reached at ``steps``).
    settings : str, default=""
        Where they were measured.

    Returns
    -------
    dict of str to Verdict
        ``noisy_first``, ``larger_faster``, ``gradients``.
    """
    out: dict[str, Verdict] = {}
    widths = sorted({r["width"] for r in order})
    cens = lambda a: np.where(np.isnan(a), float(steps), a)  # noqa: E731
    fit50 = [w for w in widths if np.all(np.isfinite(values(order, "noisy 50%", width=w)))]
    claim = "noisy labels reach 50% training accuracy before clean ones, at every width that fits them"
    if len(fit50) < 2:
        out["noisy_first"] = undefined(claim, f"only {len(fit50)} width(s) fit half the noisy labels within "
                                              f"{steps} steps in every seed", settings=settings)
    else:
        # a clean subset that never reaches 50% is counted at the last step, and the evidence says so
        def not_reached(w: int) -> str:
            k = int(np.isnan(values(order, "clean 50%", width=w)).sum())
            return f" ({steps} = not reached in {k} seed{'s' if k > 1 else ''})" if k else ""
        out["noisy_first"] = combine(claim, [
            compare(f"M = {w}", cens(values(order, "clean 50%", width=w)), values(order, "noisy 50%", width=w),
                    a_name="clean: step" + not_reached(w), b_name="noisy: step", min_margin=1.0, digits=0,
                    margin_why="one step, the least difference counted")
            for w in fit50],
            settings=settings,
            key=", ".join(f"M={w}: noisy {fmt_seeds(values(order, 'noisy 50%', width=w), 0)} vs clean "
                          f"{fmt_seeds(cens(values(order, 'clean 50%', width=w)), 0)}{not_reached(w)}"
                          for w in fit50[-1:]))
    fit90 = [w for w in widths if np.all(np.isfinite(values(order, "noisy 90%", width=w)))]
    claim = "larger models memorize faster (fewer steps to 90% on the noisy labels)"
    if len(fit90) < 2:
        out["larger_faster"] = undefined(claim, f"only {len(fit90)} width(s) reach 90% on the noisy labels within "
                                                f"{steps} steps in every seed", settings=settings)
    else:
        lo, hi = fit90[0], fit90[-1]
        out["larger_faster"] = compare(claim, values(order, "noisy 90%", width=lo),
                                       values(order, "noisy 90%", width=hi), a_name=f"steps M={lo}",
                                       b_name=f"steps M={hi}", min_margin=1.0, digits=0, settings=settings,
                                       margin_why="one step, the least difference counted")
    gw = sorted({r["width"] for r in gaps})
    out["gradients"] = combine(
        "noisy samples carry larger per-sample gradients than clean ones in the first 20 steps",
        [compare(f"M = {w}", values(gaps, "gap", width=w), 0.0, a_name="relative excess", b_name="none")
         for w in gw], settings=settings,
        key=", ".join(f"M={w}: {np.nanmean(values(gaps, 'gap', width=w)):+.1%}" for w in (gw[0], gw[-1])))
    return out


def noise_first(profile: str = "book", *, task: str = "add", noise: float = 0.3, widths: Sequence[int] | None = None,
                steps: int = 500, optimizer: str = "adam", seeds: Sequence[int] | None = None,
                progress: bool | None = None, **run: Any) -> Findings:
    """Chapter 3: the early phase of training at several widths (Adam, no weight decay).

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        The profile whose defaults and widths are used.
    task : str, default="add"
        The operation.
    noise : float, default=0.3
        α, the same at every width.
    widths : sequence of int or None, default=None
        The widths (None: the profile's).
    steps : int, default=500
        Length of the runs.
    optimizer : str, default="adam"
        The optimizer.
    seeds : sequence of int or None, default=None
        The seeds at every width (None or empty: 0, 1, 2).
    progress : bool or None, default=None
        Progress bars while training.
    **run : Any
        Further RunConfig fields; ``weight_decay`` is 0 unless given here.

    Returns
    -------
    Findings
        Verdicts of :func:`judge_noise_first`; data ``runs``, ``order``, ``gaps``.
    """
    seeds = _seeds_param(seeds)
    S = experiments.setup(profile, task=task, noise=noise, widths=widths, steps=steps, optimizer=optimizer,
                          weight_decay=run.pop("weight_decay", 0.0), seeds=seeds, **run)
    runs = sweep(S.grid(noises=[S.base.noise]), progress=progress)
    order = tables.memorization_order(runs)
    gaps = [{"width": r.config.width, "seed": r.config.seed, "gap": tables.early_gradient_gap(r)} for r in runs]
    rows = [{**r.config.to_dict()} for r in runs]
    verdicts = judge_noise_first(order, gaps, steps=S.base.steps,
                                 settings=settings_text(rows, profile))
    return Findings("03_noise_first", verdicts, {"runs": runs, "order": order, "gaps": gaps}, S)


# ---------------------------------------------------------------------------- chapter 4: hidden rule
_ACT_NAME = {"relu": "ReLU", "quadratic": "x²", "gelu": "GeLU", "reverse_relu": "reverse-ReLU"}


def judge_phases(rows: Sequence[dict[str, Any]], noise: float, settings: str = "") -> Verdict:
    """"The phases obey φa ± φb = φc": trained phase error below its shuffled chance level.

    Parameters
    ----------
    rows : list of dict
        Records with :func:`neuron_record` keys (``phase_error``, ``phase_error_shuffled``) over seeds.
    noise : float
        The α judged (records at other α are ignored).
    settings : str, default=""
        Where they were measured.

    Returns
    -------
    Verdict
        The claim (φa − φb = φc for ``sub``), Reproduced when the trained error is below the
        shuffled one.
    """
    rs = [r for r in rows if _eq(r["noise"], noise)]
    rel = "φa − φb = φc" if rs and rs[0]["task"] == "sub" else "φa + φb = φc"
    return compare(f"the phases of trained neurons obey {rel} (α = {noise:g}): error below the shuffled control",
                   values(rs, "phase_error_shuffled", noise=noise), values(rs, "phase_error", noise=noise),
                   a_name="shuffled phases (rad)", b_name="trained (rad)", settings=settings)


def judge_swap(rows: Sequence[dict[str, Any]], noise: float, act: str, settings: str = "") -> Verdict:
    """The activation swap at α = ``noise``: test kept or improved AND noisy-label accuracy drops.

    Parameters
    ----------
    rows : list of dict
        Records with the swap keys ``swap_<activation>_test_acc`` and ``swap_<activation>_noisy_acc``
        (ReLU's among them) over seeds.
    noise : float
        The α judged (records at other α are ignored).
    act : {"quadratic", "reverse_relu"}
        The activation swapped in at inference.
    settings : str, default=""
        Where they were measured.

    Returns
    -------
    Verdict
        Both parts combined; at α = 0 the noisy-label part is undefined (no noisy labels).
    """
    rs = [r for r in rows if _eq(r["noise"], noise)]
    r0 = rs[0]
    n, nn, ch = n_test(r0), n_noisy(r0), chance(r0)
    name = _ACT_NAME[act]
    claim = (f"swapping ReLU for {name} at inference keeps or improves test accuracy while the accuracy on the "
             f"memorized noisy labels drops (α = {noise:g})")
    new, old = values(rs, f"swap_{act}_test_acc"), values(rs, "swap_relu_test_acc")
    parts = [compare("test accuracy kept or improved", new, old, a_name=f"{name} test", b_name="ReLU test",
                     n=n, at_least=True, floor=(new, n, ch))]
    if nn == 0:
        parts.append(undefined("noisy-label accuracy drops", "α = 0: there are no noisy labels"))
    else:
        parts.append(compare("noisy-label accuracy drops", values(rs, "swap_relu_noisy_acc"),
                             values(rs, f"swap_{act}_noisy_acc"), a_name="ReLU noisy", b_name=f"{name} noisy",
                             n=nn, floor=(values(rs, "swap_relu_noisy_acc"), nn, ch)))
    return combine(claim, parts, settings=settings)


def judge_hidden_rule(rows: Sequence[dict[str, Any]], *, noise: float, visible: float,
                      random_level: float | None = None, settings: dict[float, str] | None = None
                      ) -> dict[str, Verdict]:
    """Chapter 4's claims from records with :func:`neuron_record` keys.

    Parameters
    ----------
    rows : list of dict
        Records at α = ``noise`` and α = ``visible`` over seeds (one width).
    noise : float
        The chapter's α.
    visible : float
        A lower α, where the raw network's test accuracy is above chance if any α > 0 is.
    random_level : float or None, default=None
        Median concentration of random weights (for the evidence line).
    settings : dict or None, default=None
        Settings line per α, and under ``"both"`` for the two together.

    Returns
    -------
    dict of str to Verdict
        ``one_cosine``, ``phases``, ``phase_grows`` (with a lower ``visible`` α), ``swap_<act>_visible``
        (at ``visible``) and ``swap_<act>`` (at ``noise``) for x² and reverse-ReLU.
    """
    st = settings or {}
    out: dict[str, Verdict] = {}
    rs = [r for r in rows if _eq(r["noise"], noise)]
    conc = values(rs, "concentration_median")
    r2 = values(rs, "cosine_r2_median")
    ev = (f"median share of a neuron's power at its dominant frequency {fmt_seeds(conc)} (needs > 0.5 in every "
          f"seed{'' if random_level is None else f'; random weights: {random_level:.3f}'}); median variance "
          f"explained by the fitted cosine {fmt_seeds(r2)}")
    if not _eq(visible, noise):
        ev += (f"; at α = {visible:g}: power share {fmt_seeds(values(rows, 'concentration_median', noise=visible))}, "
               f"variance explained {fmt_seeds(values(rows, 'cosine_r2_median', noise=visible))}")
    ok = conc.size > 0 and bool(np.all(conc > 0.5))
    out["one_cosine"] = Verdict(f"each neuron is close to a single cosine (α = {noise:g})",
                                REPRODUCED if ok else "Not shown", ev,
                                {"concentration": float(np.nanmean(conc)), "r2": float(np.nanmean(r2))},
                                st.get(noise, ""), f"median power share {np.nanmean(conc):.3f}")
    out["phases"] = judge_phases(rows, noise, st.get(noise, ""))
    if not _eq(visible, noise):
        locked = judge_phases(rows, visible, st.get(visible, ""))
        grows = compare(f"the phase error is larger at α = {noise:g} than at α = {visible:g}",
                        values(rows, "phase_error", noise=noise), values(rows, "phase_error", noise=visible),
                        a_name=f"error α={noise:g}", b_name=f"error α={visible:g}")
        out["phase_grows"] = combine("the phase error grows with label noise", [locked, grows],
                                     settings=st.get("both", ""), key=grows.key)
    for a, tag in ([(visible, "_visible")] if not _eq(visible, noise) else []) + [(noise, "")]:
        for act in SWAPS:
            if any(f"swap_{act}_test_acc" in r for r in rows):
                out[f"swap_{act}{tag}"] = judge_swap(rows, a, act, st.get(a, ""))
    return out


def visible_noise(rows: Sequence[dict[str, Any]]) -> float:
    """The largest α > 0 of ``rows`` whose raw test accuracy is above chance (else the smallest α > 0).

    Parameters
    ----------
    rows : list of dict
        Records over α with ``test_acc``.

    Returns
    -------
    float
        That α; the largest α of ``rows`` when none is above 0.
    """
    pos = sorted({r["noise"] for r in rows if r["noise"] > 0})
    if not pos:
        return max(r["noise"] for r in rows)
    ok = [a for a in pos if judge_above_chance("", values(rows, "test_acc", noise=a), n_test(_one(rows, noise=a)),
                                               chance(rows[0])).reproduced]
    return max(ok) if ok else pos[0]


def hidden_rule(profile: str = "book", *, task: str = "add", noise: float | None = None, width: int | None = None,
                noises: Sequence[float] | None = None, seeds: Sequence[int] | None = None,
                progress: bool | None = None, **run: Any) -> Findings:
    """Chapter 4: one cosine per neuron, the phase relation, the activation swap.

    Trains (or loads) the α grid at the first seed (the phase-error curve), then every seed at
    the chapter's α and at the α where the raw rule is visible (:func:`visible_noise`).

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        The profile whose defaults and grids are used.
    task : str, default="add"
        The operation.
    noise : float or None, default=None
        The chapter's α (None: the profile's).
    width : int or None, default=None
        The width (None: the profile's).
    noises : sequence of float or None, default=None
        The α grid of the curve (None: the profile's).
    seeds : sequence of int or None, default=None
        The seeds judged; the curve uses the first (None or empty: 0, 1, 2).
    progress : bool or None, default=None
        Progress bars while training.
    **run : Any
        Further RunConfig fields (e.g. ``steps``, ``activation``); None means the profile's default.

    Returns
    -------
    Findings
        Verdicts of :func:`judge_hidden_rule`; data ``curve`` (records over α), ``rows`` (judged
        records with :func:`neuron_record` keys), ``run`` (first seed at the chapter's α),
        ``visible``, ``analytic`` (phase error of the analytic network).
    """
    seeds = _seeds_param(seeds)
    S = experiments.setup(profile, task=task, noise=noise, width=width, noises=None if noises is None else list(noises),
                          seeds=seeds, **run)
    alpha = S.base.noise
    curve_cfg = S.grid(widths=[S.base.width], seeds=seeds[:1])
    curve_runs = sweep(curve_cfg, progress=progress)
    curve = []
    for r in curve_runs:
        curve.append({**r.config.to_dict(), **{k: r.final(k) for k in ("train_acc", "noisy_acc", "test_acc")},
                      **neuron_record(r)})
    vis = visible_noise(curve)
    judged_cfg = [S.config(noise=a, seed=s) for a in dict.fromkeys([vis, alpha]) for s in seeds]
    runs = sweep(judged_cfg, progress=progress)
    rows = [{**r.config.to_dict(), **{k: r.final(k) for k in ("train_acc", "noisy_acc", "test_acc")},
             **neuron_record(r)} for r in runs]
    st = {a: settings_text([r for r in rows if _eq(r["noise"], a)], profile) for a in (vis, alpha)}
    if not _eq(vis, alpha):
        seen = judge_above_chance("", values(curve, "test_acc", noise=vis), n_test(curve[0]), chance(curve[0]))
        st[vis] += ("; the largest α whose raw test accuracy is above chance" if seen.reproduced else
                    "; no α > 0 has raw test accuracy above chance: the smallest α > 0")
    st["both"] = settings_text(rows, profile)
    rnd = random_concentration(S.base.task, S.base.p, S.base.width)
    verdicts = judge_hidden_rule(rows, noise=alpha, visible=vis, random_level=rnd, settings=st)
    analytic = fourier.phase_error(baselines.analytic_weights(S.base.task, S.base.p, S.base.width), S.base.task)["mean"]
    main = next(r for r in runs if r.config == S.base.replace(seed=seeds[0]))
    return Findings("04_hidden_rule", verdicts, {"curve": curve, "rows": rows, "run": main, "visible": vis,
                                                  "analytic": analytic, "random_concentration": rnd}, S)


# ---------------------------------------------------------------------------- chapter 5: filtration
def ff_report(row: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The full / G / R accuracies of a record, shaped like :func:`memgen.fourier.filtration_report`.

    Parameters
    ----------
    row : dict
        A record with ``train_acc``, ``clean_acc``, ``noisy_acc``, ``noisy_true_acc`` and
        ``test_acc``, and the same keys prefixed with ``G_`` and ``R_``.

    Returns
    -------
    dict of str to dict
        ``full``, ``G`` and ``R``, each mapping those five accuracy keys to their values.
    """
    keys = ("train_acc", "clean_acc", "noisy_acc", "noisy_true_acc", "test_acc")
    return {"full": {k: row[k] for k in keys}, "G": {k: row[f"G_{k}"] for k in keys},
            "R": {k: row[f"R_{k}"] for k in keys}}


def judge_filtration(rows: Sequence[dict[str, Any]], curve: Sequence[dict[str, Any]], *, noise: float,
                     settings: str = "", curve_settings: str = "") -> dict[str, Verdict]:
    """Chapter 5's claims from records.

    Parameters
    ----------
    rows : list of dict
        Records at α = ``noise`` over seeds, with :func:`control_record` keys.
    curve : list of dict
        Records over α (first seed) for the "heavy noise" claim.
    noise : float
        The chapter's α.
    settings, curve_settings : str, default=""
        Where they were measured.

    Returns
    -------
    dict of str to Verdict
        ``near_perfect``, ``g_beats_raw``, ``r_memorizes``, ``beats_vote``, ``rule_choice``, ``heavy``.
    """
    rs = [r for r in rows if _eq(r["noise"], noise)]
    r0 = rs[0]
    n, nn, ch = n_test(r0), n_noisy(r0), chance(r0)
    g, raw, vote = values(rs, "G_test_acc"), values(rs, "test_acc"), values(rs, "vote_test_acc")
    out: dict[str, Verdict] = {}
    out["near_perfect"] = judge_at_least(f"at α = {noise:g} the G subnetwork is near-perfect on the test set", g, n,
                                         0.9, name="G test", level_name="0.9 (near-perfect)", settings=settings)
    out["g_beats_raw"] = compare(f"at α = {noise:g} the G part shows more of the rule than the raw network "
                                 "(G test above raw test)", g, raw, a_name="G test", b_name="raw test", n=n,
                                 floor=(g, n, ch), settings=settings)
    if nn:
        rn, gn = values(rs, "R_noisy_acc"), values(rs, "G_noisy_acc")
        out["r_memorizes"] = combine(f"the R part keeps the memorized labels and G does not (α = {noise:g})", [
            judge_at_least("R fits the noisy labels", rn, nn, FITS, name="R noisy"),
            compare("R beats G on the noisy labels", rn, gn, a_name="R noisy", b_name="G noisy", n=nn,
                    floor=(rn, nn, ch))], settings=settings)
    out["beats_vote"] = compare("control: the G part recovers more of the rule than a labels-only majority vote "
                                "(no network) does", g, vote, a_name="G test", b_name="vote test", n=n,
                                floor=(g, n, ch), settings=settings)
    perv = values(rs, "perv_G_test_acc")
    out["rule_choice"] = combine(
        "control: the rule is recovered as well under the per-vector dominant-frequency rule as under the joint one "
        "(the paper leaves the rule open)", [
            judge_above_chance("per-vector G above chance", perv, n, ch, name="per-vector G test"),
            compare("joint and per-vector G do not differ", perv, g, a_name="per-vector G test",
                    b_name="joint G test", n=n, at_least=True, floor=(perv, n, ch))],
        settings=settings, key=f"per-vector {np.nanmean(perv):.3f} vs joint {np.nanmean(g):.3f}")
    heavy = sorted(a for a in {r["noise"] for r in curve} if a >= 0.6)
    if heavy:
        out["heavy"] = combine("the G part stays near-perfect (test > 0.9) under heavy noise, α ≥ 0.6", [
            judge_at_least(f"α = {a:g}", values(curve, "G_test_acc", noise=a), n, 0.9, name=f"G test α={a:g}")
            for a in heavy], settings=curve_settings)
    return out


def filtration(profile: str = "book", *, task: str = "add", width: int | None = None, noise: float | None = None,
               noises: Sequence[float] | None = None, widths: Sequence[int] | None = None,
               seeds: Sequence[int] | None = None, progress: bool | None = None, **run: Any) -> Findings:
    """Chapter 5: full, G and R networks; controls; the filtration rule.

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        The profile whose defaults and grids are used.
    task : str, default="add"
        The operation.
    width : int or None, default=None
        The width of the curve and of the judged runs (None: the profile's).
    noise : float or None, default=None
        The chapter's α (None: the profile's).
    noises : sequence of float or None, default=None
        The α grid of the curve; its highest α is the width sweep's (None: the profile's).
    widths : sequence of int or None, default=None
        The widths swept at the highest α (None: the profile's).
    seeds : sequence of int or None, default=None
        The seeds judged at the chapter's α; the curve and the width sweep use the first (None or
        empty: 0, 1, 2).
    progress : bool or None, default=None
        Progress bars while training.
    **run : Any
        Further RunConfig fields (e.g. ``steps``, ``activation``); None means the profile's default.

    Returns
    -------
    Findings
        Verdicts of :func:`judge_filtration`; data ``curve`` (records over α, first seed),
        ``rows`` (records at the chapter's α over seeds, with controls), ``widths`` (records over
        widths at the highest α), ``run`` (first seed at the chapter's α).
    """
    seeds = _seeds_param(seeds)
    S = experiments.setup(profile, task=task, width=width, noise=noise, seeds=seeds,
                          noises=None if noises is None else list(noises),
                          widths=None if widths is None else list(widths), **run)
    alpha = S.base.noise
    hi = max(S.noises)
    curve_cfg = S.grid(widths=[S.base.width], seeds=seeds[:1])
    judged_cfg = [S.config(seed=s) for s in seeds]
    width_cfg = S.grid(noises=[hi], seeds=seeds[:1])
    records = experiments.table(curve_cfg + judged_cfg + width_cfg, progress=progress)
    by_key = {RunConfig.from_dict(r).key(): r for r in records}
    curve = [by_key[c.key()] for c in curve_cfg]
    wrows = [by_key[c.key()] for c in width_cfg]
    runs = sweep(judged_cfg, progress=progress)
    rows = [{**by_key[r.config.key()], **control_record(r)} for r in runs]
    verdicts = judge_filtration(rows, curve, noise=alpha, settings=settings_text(rows, profile),
                                curve_settings=settings_text(curve, profile))
    return Findings("05_frequency_filtration", verdicts, {"curve": curve, "rows": rows, "widths": wrows,
                                                           "run": runs[0]}, S)


# ---------------------------------------------------------------------------- chapter 6: partition
def gamma_g_defined(rows: Sequence[dict[str, Any]], score: str = "strength") -> bool:
    """Whether γ_G means anything for ``score``: at its best fraction f^G is above chance and beats
    a random subset of the same size in every seed (as :func:`judge_partition` asks).

    Parameters
    ----------
    rows : list of dict
        :func:`memgen.partition.partition_record` rows over seeds.
    score : {"strength", "ipr"}, default="strength"
        The score that ranks the neurons.

    Returns
    -------
    bool
        False where γ_G is undefined.
    """
    n, ch = n_test(rows[0]), chance(rows[0])
    _, gi, ri = _best_fraction(rows, score)
    return judge_above_chance("", gi, n, ch).reproduced and compare("", gi, ri, n=n, floor=(gi, n, ch)).reproduced


def _best_fraction(rows: Sequence[dict[str, Any]], score: str) -> tuple[int, np.ndarray, np.ndarray]:
    """The kept fraction (index) where ``score``'s f^G tests best on the seeds' mean, and the f^G
    and random-subset test accuracies there, per seed."""
    g = np.array([r[f"{score}_G_test"] for r in rows], dtype=float)  # seeds × fractions
    i = int(np.argmax(g.mean(0)))
    return i, g[:, i], np.array([r[f"{score}_random_test"] for r in rows], dtype=float)[:, i]


def judge_partition(rows: Sequence[dict[str, Any]], *, settings: str = "") -> dict[str, Verdict]:
    """Chapter 6's claims from :func:`partition_record` rows (one per seed, one task and α).

    Parameters
    ----------
    rows : list of dict
        The records, one per seed.
    settings : str, default=""
        Where they were measured.

    Returns
    -------
    dict of str to Verdict
        ``random_control``, ``gammas``, ``scores`` (+ and −: IPR and strength agree; ×: strength
        beats IPR), ``ff_beats_partition``, ``ff_whole``.
    """
    r0 = rows[0]
    n, ch = n_test(r0), chance(r0)
    fr = np.asarray(r0["fractions"])
    out: dict[str, Verdict] = {}
    curve = lambda key: np.array([r[key] for r in rows], dtype=float)  # noqa: E731 (seeds × fractions)
    i, gi, ri = _best_fraction(rows, "strength")
    at = f"{fr[i]:.0%} of neurons kept (the best fraction)"
    out["random_control"] = compare(f"the strength-ranked f^G generalizes better than a random subset of the same "
                                    f"size ({at})", gi, ri, a_name="f^G test", b_name="random test", n=n,
                                    floor=(gi, n, ch), settings=settings)
    claim = "γ_G + γ_R ≤ 1: the generalizing and the memorizing neurons sit in disjoint sets"
    g_ok = judge_above_chance("", gi, n, ch).reproduced
    sums = np.array([r["strength_gamma_G"] + r["strength_gamma_R"] for r in rows], dtype=float)
    if not g_ok:
        out["gammas"] = undefined(claim, f"γ_G is undefined: f^G is not above chance even at its best fraction "
                                         f"({fmt_seeds(gi)} at {fr[i]:.0%} kept; chance {ch:.3f})", settings=settings)
    elif not out["random_control"].reproduced:
        out["gammas"] = undefined(claim, f"γ_G is undefined: at its best fraction ({fr[i]:.0%} kept) f^G does not "
                                         f"beat a random subset of the same size ({fmt_seeds(gi)} vs "
                                         f"{fmt_seeds(ri)}), so the score has found no generalizing neurons",
                                  settings=settings)
    elif not np.all(np.isfinite(sums)):
        out["gammas"] = undefined(claim, "γ_R is undefined in some seed: no f^R keeps 90% of the memorized labels",
                                  settings=settings)
    else:
        ok = bool(np.all(sums <= 1.0))
        out["gammas"] = Verdict(claim, REPRODUCED if ok else ("Contradicted" if np.all(sums > 1.0) else "Not shown"),
                                f"γ_G + γ_R = {fmt_seeds(sums, 2)} (strength score)", {"sum": float(sums.mean())},
                                settings, f"γ_G + γ_R {sums.mean():.2f}")
    best = {s: curve(f"{s}_G_test").max(1) for s in ("strength", "ipr")}
    rho = np.array([r["rho"] for r in rows], dtype=float)
    if r0["task"] == "mul":
        out["scores"] = compare("the strength score beats IPR on × (best f^G test accuracy)", best["strength"],
                                best["ipr"], a_name="best f^G strength", b_name="best f^G IPR", n=n,
                                floor=(best["strength"], n, ch), settings=settings)
    else:
        diff = compare("", best["strength"], best["ipr"], n=n, a_name="best f^G strength", b_name="best f^G IPR")
        floor_ok = all(judge_above_chance("", best[s], n, ch).reproduced for s in best)
        agree = diff.verdict == "Not shown" and floor_ok
        why = diff.evidence + f"; Spearman ρ of the two scores {fmt_seeds(rho, 2)}"
        if not floor_ok:
            why += "; but a best f^G is not above chance, so agreement means nothing"
        out["scores"] = Verdict(f"IPR and strength agree on {'+' if r0['task'] == 'add' else '−'} (f^G equally good "
                                "under either score)", REPRODUCED if agree else "Not shown", why,
                                diff.numbers, settings, diff.key)
    best_part = np.maximum(best["strength"], best["ipr"])
    ffw = curve("ff_whole_test")
    out["ff_beats_partition"] = compare("frequency filtration beats the best neuron partition", ffw, best_part,
                                        a_name="FF test", b_name="best f^G test (either score)", n=n,
                                        floor=(ffw, n, ch), settings=settings)
    if not out["random_control"].reproduced:  # a true comparison, but with a partition that found nothing
        v = out["ff_beats_partition"]
        out["ff_beats_partition"] = replace(v, evidence=v.evidence + (
            "; the partition itself found nothing here: its f^G does not beat a random subset of the same size "
            "(see the random control)"))
    out["ff_whole"] = compare("filtering the whole network beats filtering f^G, the top half of the neurons (the "
                              "rule is spread over many neurons)", ffw, curve("ff_sub_test"),
                              a_name="FF(whole) test", b_name="FF(f^G) test", n=n, floor=(ffw, n, ch),
                              settings=settings)
    return out


def partition_findings(profile: str = "book", *, task: str = "add", noise: float | None = None,
                       width: int | None = None, seeds: Sequence[int] | None = None, progress: bool | None = None,
                       **run: Any) -> Findings:
    """Chapter 6: Algorithm 1 with both scores, a random control, and FF of f^G.

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        The profile whose defaults are used.
    task : str, default="add"
        The operation.
    noise : float or None, default=None
        α (None: the profile's).
    width : int or None, default=None
        The width (None: the profile's).
    seeds : sequence of int or None, default=None
        The seeds (None or empty: 0, 1, 2).
    progress : bool or None, default=None
        Progress bars while training.
    **run : Any
        Further RunConfig fields (e.g. ``steps``, ``activation``); None means the profile's default.

    Returns
    -------
    Findings
        Verdicts of :func:`judge_partition`; data ``rows`` (:func:`partition_record` per seed) and
        ``run`` (first seed).
    """
    seeds = _seeds_param(seeds)
    S = experiments.setup(profile, task=task, noise=noise, width=width, seeds=seeds, **run)
    runs = sweep([S.config(seed=s) for s in seeds], progress=progress)
    rows = [partition_record(r) for r in runs]
    verdicts = judge_partition(rows, settings=settings_text(rows, profile))
    return Findings("06_partition", verdicts, {"rows": rows, "run": runs[0]}, S)


# ---------------------------------------------------------------------------- chapter 7: tied embeddings
TIED_SETTINGS = {"untied, wrong": dict(tied=False, noise_mode="wrong"),
                 "tied, wrong": dict(tied=True, noise_mode="wrong"),
                 "tied, symmetric": dict(tied=True, noise_mode="symmetric")}


def with_g_part(rows: Sequence[dict[str, Any]], setting: str = "tied, wrong") -> list[dict[str, Any]]:
    """``rows`` plus, for each record of ``setting``, a copy whose ``test_acc`` is FF's G part's
    and whose ``setting`` says so: one more line in a figure of test accuracy by setting.

    Parameters
    ----------
    rows : list of dict
        Chapter 7's records (``setting``, ``test_acc``, ``G_test_acc``).
    setting : str, default="tied, wrong"
        The setting whose G part is added.

    Returns
    -------
    list of dict
        The records, then the added ones (setting ``"<setting>: FF's G part"``).
    """
    return list(rows) + [{**r, "setting": f"{setting}: FF's G part", "test_acc": r["G_test_acc"]}
                         for r in rows if r["setting"] == setting and r.get("G_test_acc") is not None]


def judge_misspecification(rows: Sequence[dict[str, Any]], *, settings: str = "") -> dict[str, Verdict]:
    """Chapter 7's claims from records with a ``setting`` key and :func:`mirror_record` keys,
    judged at the widest width: the paper's as levels against chance, the G/R split as two
    differences (over the seeds given; the chapter trains one per setting).

    Parameters
    ----------
    rows : list of dict
        Records over widths of every setting of :data:`TIED_SETTINGS`, with the accuracies of FF's
        G part (and R part, when present).
    settings : str, default=""
        Where they were measured.

    Returns
    -------
    dict of str to Verdict
        ``coexistence``, ``hidden_rule`` (the G/R split of the tied model under wrong noise: a
        check beyond the paper), ``regularization``.
    """
    wide = max(r["width"] for r in rows)
    at = {s: [r for r in rows if r["setting"] == s and r["width"] == wide] for s in TIED_SETTINGS}
    out: dict[str, Verdict] = {}
    sym, wrong = at["tied, symmetric"], at["tied, wrong"]
    r0 = wrong[0]
    ch, nn = chance(r0), n_noisy(r0)
    nm_sym = int(sym[0]["n_no_mirror"])
    nm_wrong = int(r0["n_no_mirror"])
    coexist_sym = combine("tied, symmetric noise: fits the noisy labels and answers test pairs it cannot look up", [
        judge_at_least("fits the noisy labels", values(sym, "noisy_acc"), n_noisy(sym[0]), FITS, name="noisy fitted"),
        judge_above_chance("rule beyond lookup", values(sym, "test_no_mirror"), nm_sym, ch,
                           name="test without mirror")])
    no_rule = judge_above_chance("", values(wrong, "test_no_mirror"), nm_wrong, lowest_chance(r0))
    share = np.nanmean(values(wrong, "mirror_share"))
    ev = (f"tied + wrong: raw test {fmt_seeds(values(wrong, 'test_acc'))} vs mirror-lookup share {share:.3f}; on the "
          f"{nm_wrong} test pairs lookup cannot answer: {no_rule.evidence}; noisy labels fitted "
          f"{fmt_seeds(values(wrong, 'noisy_acc'))} of {nn}")
    wrong_part = Verdict("tied, wrong noise: no rule beyond lookup",
                         "Not shown" if no_rule.reproduced else REPRODUCED, ev, no_rule.numbers)
    out["coexistence"] = combine(f"with tied embeddings, asymmetric noise suppresses the coexistence of memorization "
                                 f"and generalization and symmetric noise restores it (M = {wide})",
                                 [coexist_sym, wrong_part], settings=settings,
                                 key=f"tied+wrong raw test {np.nanmean(values(wrong, 'test_acc')):.3f} vs lookup share "
                                     f"{share:.3f}")
    claim = (f"beyond the paper: with tied embeddings and asymmetric noise the neurons still carry the rule, which "
             f"frequency filtration recovers (M = {wide})")
    if not nn:
        out["hidden_rule"] = undefined(claim, "α = 0: there are no noisy labels, so no asymmetric noise",
                                       settings=settings)
    else:
        # on the test pairs lookup cannot answer, so that memorized mirror pairs lift neither side
        g, raw = values(wrong, "G_test_no_mirror"), values(wrong, "test_no_mirror")
        parts = [compare("on the test pairs lookup cannot answer, the G part answers what the output does not", g,
                         raw, a_name="G test without mirror", b_name="raw test without mirror", n=nm_wrong,
                         floor=(g, nm_wrong, ch))]
        if "R_noisy_acc" in r0:
            rn, gn = values(wrong, "R_noisy_acc"), values(wrong, "G_noisy_acc")
            parts.append(compare("the R part fits more of the noisy labels than the G part", rn, gn,
                                 a_name="R noisy", b_name="G noisy", n=nn, floor=(rn, nn, ch)))
        out["hidden_rule"] = combine(claim, parts, settings=settings,
                                     key=f"tied+wrong, no mirror: G test {np.nanmean(g):.3f} vs raw "
                                         f"{np.nanmean(raw):.3f}")
    out["regularization"] = undefined("under misspecification, regularization matters more than scale",
                                      "not tested here: this chapter sweeps the width of tied models, not their "
                                      "weight decay", settings=settings)
    return out


def misspecification(profile: str = "book", *, task: str = "add", noise: float = 0.4,
                     widths: Sequence[int] | None = None, seeds: Sequence[int] | None = (0,),
                     progress: bool | None = None, **run: Any) -> Findings:
    """Chapter 7: untied, tied + wrong and tied + symmetric noise across widths.

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        The profile whose defaults and widths are used.
    task : str, default="add"
        The operation.
    noise : float, default=0.4
        α, the same in every setting.
    widths : sequence of int or None, default=None
        The widths (None: every other width of the profile's).
    seeds : sequence of int or None, default=(0,)
        The seeds (None or empty: 0).
    progress : bool or None, default=None
        Progress bars while training.
    **run : Any
        Further RunConfig fields (e.g. ``steps``); None means the profile's default.

    Returns
    -------
    Findings
        Verdicts of :func:`judge_misspecification`; data ``rows`` (records with ``setting``, the
        accuracies of FF's G and R parts and :func:`mirror_record` keys).
    """
    seeds = list(seeds) if seeds else [0]
    S = experiments.setup(profile, task=task, noise=noise, widths=widths, seeds=seeds, **run)
    ws = list(S.widths) if widths else list(S.widths[::2])
    configs = {name: S.grid(widths=ws, noises=[S.base.noise], **kw) for name, kw in TIED_SETTINGS.items()}
    flat = [c for cs in configs.values() for c in cs]
    runs = sweep(flat, progress=progress)  # batched where shapes allow
    rows = []
    for (name, _), r in zip(((n, c) for n, cs in configs.items() for c in cs), runs):
        s = experiments.summarize(r)
        rows.append({**r.config.to_dict(), "setting": name, **{k: s[k] for k in ("train_acc", "noisy_acc", "test_acc")},
                     **{f"{part}_{k}": s["ff"][part][k] for part in "GR" for k in ("test_acc", "noisy_acc")},
                     **mirror_record(r)})
    verdicts = judge_misspecification(rows, settings=settings_text(rows, profile))
    return Findings("07_misspecification", verdicts, {"rows": rows}, S)


# ---------------------------------------------------------------------------- chapters 9 and 10
def transformer_findings(profile: str = "book", *, task: str = "add", noise: float | None = None,
                         n_keep: int | None = None, seeds: Sequence[int] | None = None,
                         progress: bool | None = None) -> Findings:
    """Chapter 9: frequency filtration of a Transformer's unembedding (the paper's Table 3).

    Trains (or loads) the seeds at the chapter's α and judges them with
    :func:`memgen.transformer.judge` (the chapter also sweeps α and the number of kept frequencies).

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        The Transformer profile (:func:`memgen.transformer.profile_config`).
    task : str, default="add"
        The operation.
    noise : float or None, default=None
        α (None: the profile's).
    n_keep : int or None, default=None
        Frequencies the filtration keeps (None: the profile's).
    seeds : sequence of int or None, default=None
        The seeds (None: the profile's).
    progress : bool or None, default=None
        Progress bar while training.

    Returns
    -------
    Findings
        Verdicts ``memorized``, ``test``, ``noisy``, ``split``; data ``runs``.
    """
    from .. import transformer as tfm

    C = tfm.profile_config(profile, task=task, noise=noise, n_keep=n_keep)
    configs = [c for c in tfm.sweep_configs(C, [C.noise], seeds, profile) if c.noise == C.noise]
    runs = tfm.train_or_load(configs, progress=progress)
    where = (f"profile {profile}: {task}, P = {C.p}, d_model {C.d_model}, {C.steps} steps; α = {C.noise:g}, "
             f"n_keep = {C.n_keep}, seeds {[c.seed for c in configs]}")
    V = tfm.judge(runs, C.n_keep, where)
    return Findings("09_transformer", {k: V[k] for k in ("memorized", "test", "noisy", "split")}, {"runs": runs})


def images_findings(profile: str = "book", *, data: str = "digits", progress: bool | None = None,
                    **params: Any) -> Findings:
    """Chapter 10: noise first on images (the paper's MNIST check; digits when offline).

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        The image profile (:func:`memgen.images.setup_images`).
    data : {"digits", "mnist"}, default="digits"
        The data set.
    progress : bool or None, default=None
        Not used: the image runs show no progress bar (accepted like every chapter's, for
        :func:`book_findings`).
    **params : Any
        Further parameters of :func:`memgen.images.setup_images` (``mnist_path``, ``noises``,
        ``seeds``, ImageConfig fields).

    Returns
    -------
    Findings
        Verdicts ``noise_first_<α>`` (one per α), ``clean_ahead``, ``paper``; data ``runs``.
    """
    from .. import images

    S = images.setup_images(profile, data=data, **params)
    runs = images.sweep_images(S.data, S.noises, S.seeds, **S.run)
    V = images.noise_first_verdicts(S, runs)
    verdicts = {f"noise_first_{a:g}": v for a, v in zip(S.noises, V["noise_first"])}
    verdicts.update(clean_ahead=V["clean_ahead"], paper=V["paper"])
    return Findings("10_noise_first_images", verdicts, {"runs": runs})


def _lazy(module: str, name: str) -> Callable[..., Findings]:
    """A chapter's findings function from its own module of the book layer, imported when called
    (those modules import this one)."""
    def target() -> Callable[..., Findings]:
        return getattr(importlib.import_module(f"memgen.book.{module}"), name)

    def fn(profile: str = "book", **params: Any) -> Findings:
        return target()(profile, **params)

    fn.__name__ = fn.__qualname__ = name
    fn.target = target  # type: ignore[attr-defined]
    return fn


# ---------------------------------------------------------------------------- the whole book
#: chapter notebook stem -> (title, findings function)
CHAPTERS: dict[str, tuple[str, Callable[..., Findings]]] = {
    "02_scaling": ("Bigger generalizes better", scaling),
    "03_noise_first": ("Noisy labels are memorized first", noise_first),
    "04_hidden_rule": ("The hidden rule", hidden_rule),
    "05_frequency_filtration": ("Frequency filtration", filtration),
    "06_partition": ("Partitioning neurons", partition_findings),
    "07_misspecification": ("Tied embeddings", misspecification),
    "09_transformer": ("Filtration on a Transformer", transformer_findings),
    "10_noise_first_images": ("Noise first on images", images_findings),
    "11_optimizers": ("Optimizers", _lazy("optimizers", "optimizers")),
    "12_grokking_phases": ("Grokking phases (Doshi et al.)", _lazy("prior_work", "grokking_phases")),
    "13_progress_measures": ("Progress measures (Nanda et al.)", _lazy("prior_work", "progress_measures")),
    "14_topology": ("Topology of the representation", _lazy("diagnostics", "topology")),
    "15_heavy_tails": ("Heavy-tailed spectra", _lazy("diagnostics", "heavy_tails")),
    "16_clustering": ("Clusters by the rule", _lazy("diagnostics", "clustering")),
}


def book_findings(profile: str = "book", variants: Sequence[dict[str, Any]] | None = None,
                  progress: bool | None = False) -> list[tuple[str, str, Findings]]:
    """Every chapter's (and variant's) findings at its default parameters under ``profile``.

    Parameters
    ----------
    profile : str, default="book"
        The profile the chapters run under.
    variants : list of dict or None, default=None
        Variant entries (``notebook``, ``name``, ``title``, ``parameters``) as in
        ``book/variants.yml``; None reads that file.
    progress : bool or None, default=False
        Progress bars while training.

    Returns
    -------
    list of (str, str, Findings)
        (document path relative to ``book/``, title, findings), chapters first in book order,
        each followed by its variants.
    """
    if variants is None:
        from .bookgen import load_variants

        variants = load_variants()
    out = []
    for stem, (title, fn) in CHAPTERS.items():
        out.append((stem, title, fn(profile, progress=progress)))
        for v in variants:
            if v["notebook"].removesuffix(".ipynb") == stem:
                params = {k: val for k, val in v["parameters"].items() if k != "profile"}
                out.append((f"generated/{v['name']}", v["title"], fn(profile, progress=progress, **params)))
    return out
