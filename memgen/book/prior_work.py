"""Context and diagnostics: two earlier pictures of grokking, recomputed with memgen.

:func:`grokking_phases` (chapter 12) reproduces Doshi et al., "To grok or not to grok:
disentangling generalization and memorization on corrupted algorithmic datasets" (ICLR 2024):
a phase diagram over weight decay x label corruption for a quadratic-activation network trained
with MSE, and pruning by the neurons' inverse participation ratio (IPR).

:func:`progress_measures` (chapter 13) follows Nanda et al., "Progress measures for grokking via
mechanistic interpretability" (ICLR 2023): restricted loss, excluded loss and the sparsity of the
embedding's Fourier spectrum over training (:mod:`memgen.progress`), for a clean and a noisy run.

Both return :class:`memgen.book.findings.Findings` like the functions of
:mod:`memgen.book.findings`, judged by the one rule of :mod:`memgen.verdicts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .. import progress as pg
from ..configs import ConfigError, validate_noise
from ..experiments import setup as make_setup
from ..phases import (  # noqa: F401
    DOSHI,
    FAILS,
    FITS_TRAIN,
    GENERALIZES,
    INVERTS,
    MEMORIZES,
    PHASE_SIZES,
    PHASES,
    PRUNE_FRACTIONS,
    SEEDS,
    corrupted_dataset,
    phase_of,
    phase_record,
    prune_curves,
)
from ..progress import (  # noqa: F401
    FORMED,
    MAX_SNAPSHOTS,
    PROGRESS_SIZES,
    PROGRESS_VERSION,
    RISEN,
    _snapshots,
    first_step,
    measured_runs,
    progress_record,
    snapshot_steps,
)
from ..store import sweep
from ..verdicts import (
    NOT_SHOWN,
    REPRODUCED,
    Verdict,
    combine,
    compare,
    fmt_seeds,
    judge_above_chance,
    judge_at_least,
    undefined,
)
from .findings import Findings


# ---------------------------------------------------------------------------- chapter 12: phases
# the setup, the phase rule and the pruning curves live in the core (memgen.phases): `produce`
# records them for shipped results too
def _phase_sizes(profile: str, params: dict[str, Any]) -> dict[str, Any]:
    if profile not in PHASE_SIZES:
        raise ConfigError(f"profile={profile!r} is not allowed; choose one of {', '.join(PHASE_SIZES)}")
    sizes = dict(PHASE_SIZES[profile])
    for k in list(sizes):
        v = params.pop(k, None)
        if v is not None:
            sizes[k] = v
    for name in ("weight_decays", "noises"):
        v = sizes[name]
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if not isinstance(v, (list, tuple)) or not v:
            raise ConfigError(f"{name}={v!r} is not allowed; it must be a non-empty list of numbers")
        sizes[name] = tuple(float(x) for x in v)
    for a in sizes["noises"] + (sizes["prune_noise"],):
        validate_noise(a)
    if any(w < 0 for w in sizes["weight_decays"]) or sizes["prune_wd"] < 0:
        raise ConfigError("weight decays are not allowed to be negative; give numbers >= 0")
    return sizes


def grokking_phases(profile: str = "book", *, progress: bool | None = False, seeds: Sequence[int] | None = None,
                    **params: Any) -> Findings:
    """Chapter 12: Doshi et al.'s phase diagram and IPR pruning, at the profile's scale.

    Parameters
    ----------
    profile : {"test", "book", "paper"}, default="book"
        The scale (:data:`PHASE_SIZES`); ``paper`` is Doshi et al.'s own (P = 97, width 500,
        2000 steps).
    progress : bool or None, default=False
        Progress bars while training.
    seeds : sequence of int or None, default=None
        Seeds of the pruning cell (None: 0, 1, 2); the grid uses the first.
    **params : Any
        ``p``, ``width``, ``steps``, ``weight_decays``, ``noises``, ``prune_wd``,
        ``prune_noise`` override :data:`PHASE_SIZES`; other RunConfig fields override
        :data:`DOSHI`.

    Returns
    -------
    Findings
        Verdicts ``phases``, ``coexistence``, ``inversion``, ``ipr_pruning``; data ``grid``
        (:func:`phase_record` per cell), ``prune`` (per seed: pruning curves),
        ``prune_rows`` (:func:`phase_record` per seed), ``sizes``.

    Raises
    ------
    ConfigError
        When a parameter is not allowed.
    """
    sizes = _phase_sizes(profile, params)
    seeds = list(seeds) if seeds else list(SEEDS)
    base = {**DOSHI, **params}
    S = make_setup(profile, p=sizes["p"], width=sizes["width"], steps=sizes["steps"], seeds=seeds,
                   noise=sizes["prune_noise"], weight_decay=sizes["prune_wd"], **base)
    grid_cfgs = [S.config(weight_decay=wd, noise=a, seed=seeds[0])
                 for wd in sizes["weight_decays"] for a in sizes["noises"]]
    prune_cfgs = [S.config(seed=s) for s in seeds]
    runs = dict(zip(grid_cfgs + prune_cfgs, sweep(grid_cfgs + prune_cfgs, progress=progress)))
    grid = [phase_record(runs[c]) for c in grid_cfgs]
    prune_rows = [phase_record(runs[c]) for c in prune_cfgs]
    prune = [prune_curves(runs[c]) for c in prune_cfgs]
    settings = (f"profile {profile}; add mod P = {S.base.p}, M = {S.base.width}, x², MSE, AdamW lr "
                f"{S.base.lr:g}, {S.base.steps} steps, labels corrupted over all P classes")
    verdicts = judge_phases(grid, prune_rows, prune, settings=settings)
    return Findings("12_grokking_phases", verdicts, {"grid": grid, "prune": prune, "prune_rows": prune_rows,
                                                     "sizes": sizes}, S)


def judge_phases(grid: Sequence[dict[str, Any]], prune_rows: Sequence[dict[str, Any]],
                 prune: Sequence[dict[str, Any]], *, settings: str = "") -> dict[str, Verdict]:
    """Chapter 12's claims from :func:`phase_record` cells and :func:`prune_curves` per seed.

    Parameters
    ----------
    grid : list of dict
        One record per (weight decay, corruption) cell.
    prune_rows : list of dict
        The pruning cell, one record per seed.
    prune : list of dict
        Its pruning curves, one per seed.
    settings : str, default=""
        Where they were measured.

    Returns
    -------
    dict of str to Verdict
        ``phases`` (all five phases appear), ``coexistence``, ``inversion`` and ``ipr_pruning``.
    """
    out: dict[str, Verdict] = {}
    found = {r["phase"] for r in grid}
    missing = [ph for ph in PHASES if ph not in found]
    ev = (f"phases found: {', '.join(sorted(found))}" + (f"; missing: {', '.join(missing)}" if missing else "")
          + f" (rule: test ≥ {GENERALIZES}, memorized / inverted ≥ {MEMORIZES}, train ≥ {FITS_TRAIN})")
    out["phases"] = Verdict("the weight decay × corruption plane holds five phases: coexistence, full and partial "
                            "inversion, memorization, forgetting", REPRODUCED if not missing else "Not shown", ev,
                            {"found": len([p for p in PHASES if p in found])}, settings,
                            f"{len(PHASES) - len(missing)} of {len(PHASES)} phases")

    def cell_claim(key: str, phase: str, claim: str, second: str, level_name: str) -> None:
        cells = [r for r in grid if r["phase"] == phase]
        if not cells:
            out[key] = undefined(claim, f"no cell of the grid is in the {phase} phase by the rule", settings=settings)
            return
        # the cell that is most clearly in the phase: the largest smaller excess over the two levels
        r = max(cells, key=lambda r: (min(r["test_acc"] - GENERALIZES, r[second] - MEMORIZES), r["noise"]))
        where = f"at wd = {r['weight_decay']:g}, α = {r['noise']:g}, its most clearly {phase} cell"
        out[key] = combine(f"{claim} ({where})", [
            judge_at_least("generalizes", r["test_acc"], r["n_test"], GENERALIZES, name="test accuracy"),
            judge_at_least(level_name, r[second], r["n_changed"], MEMORIZES, name=level_name)],
            settings=settings + "; one seed")

    cell_claim("coexistence", "coexistence", "memorization and generalization coexist: the corrupted labels are "
               "fitted and the test set is predicted", "mem_acc", "corrupted labels memorized")
    inv = [r for r in grid if r["phase"] in ("full inversion", "partial inversion")]
    claim = "weight decay makes the network generalize and predict the true value of corrupted labels (inversion)"
    if not inv:
        out["inversion"] = undefined(claim, "no cell of the grid is in a full or partial inversion phase by the rule",
                                     settings=settings)
    else:
        r = max(inv, key=lambda r: (r["inv_acc"], r["noise"]))
        ch = 1.0 / r["p"]
        out["inversion"] = combine(f"{claim} (wd = {r['weight_decay']:g}, α = {r['noise']:g})", [
            judge_at_least("generalizes", r["test_acc"], r["n_test"], GENERALIZES, name="test accuracy"),
            judge_above_chance("corrupted labels predicted at their true value", r["inv_acc"], r["n_changed"], ch,
                               name="inverted")], settings=settings + "; one seed")
    out["ipr_pruning"] = judge_pruning(prune_rows, prune, settings=settings)
    return out


def best_prune_index(prune: Sequence[dict[str, Any]]) -> int:
    """Index of the kept fraction (below 1) where the top-IPR subnetwork best separates rule from memory.

    The fraction maximises the mean over seeds of (test accuracy − accuracy on the corrupted
    labels) of the top-IPR subnetwork: Doshi et al.'s picture is both at once, test up and
    memorization down.

    Parameters
    ----------
    prune : list of dict
        :func:`prune_curves` per seed.

    Returns
    -------
    int
        The index into ``fractions`` (ties: the larger fraction).
    """
    fr = np.asarray(prune[0]["fractions"])
    t = np.array([c["ipr_test"] for c in prune], dtype=float).mean(0)
    m = np.nan_to_num(np.array([c["ipr_mem"] for c in prune], dtype=float).mean(0))
    cand = [i for i in range(len(fr)) if fr[i] < 1.0] or [0]
    return max(cand, key=lambda i: (t[i] - m[i], fr[i]))


def judge_pruning(rows: Sequence[dict[str, Any]], prune: Sequence[dict[str, Any]], *, settings: str = "") -> Verdict:
    """Doshi et al.'s pruning claim, over seeds, with a random-pruning control.

    At the kept fraction chosen by :func:`best_prune_index`: the top-IPR subnetwork's test
    accuracy beats the full network's, its accuracy on the corrupted labels falls below the
    full network's, and it beats random subsets of the same size.

    Parameters
    ----------
    rows : list of dict
        :func:`phase_record` of the pruning cell, one per seed.
    prune : list of dict
        :func:`prune_curves`, one per seed (same order).
    settings : str, default=""
        Where they were measured.

    Returns
    -------
    Verdict
        The combined verdict.
    """
    i = best_prune_index(prune)
    fr = prune[0]["fractions"][i]
    r0 = rows[0]
    n, nc, ch = r0["n_test"], r0["n_changed"], 1.0 / r0["p"]
    col = lambda k: np.array([c[k][i] for c in prune], dtype=float)  # noqa: E731
    full_test = np.array([r["test_acc"] for r in rows], dtype=float)
    full_mem = np.array([r["mem_acc"] for r in rows], dtype=float)
    st = settings + f"; wd = {r0['weight_decay']:g}, α = {r0['noise']:g}, {len(rows)} seeds"
    claim = "keeping only the high-IPR neurons restores test accuracy and forgets the corrupted labels"
    if nc == 0:
        return undefined(claim, "the pruning cell has no corrupted label (α = 0)", settings=st)
    if np.all(full_test >= GENERALIZES) and np.all(full_mem < 0.5):
        return undefined(claim,
                         f"the full network at the pruning cell already generalizes (test {fmt_seeds(full_test)}) and "
                         f"has not memorized the corrupted labels ({fmt_seeds(full_mem)}): there is nothing for "
                         "pruning to restore or forget (Doshi et al. prune networks that memorize)", settings=st)
    ipr_t, ipr_m, rnd_t = col("ipr_test"), col("ipr_mem"), col("random_test")
    return combine(
        f"keeping only the high-IPR neurons ({fr:.0%} of them) restores test accuracy and forgets the corrupted "
        "labels; random pruning does not", [
            compare("test accuracy rises", ipr_t, full_test, a_name="top-IPR test", b_name="full test", n=n,
                    floor=(ipr_t, n, ch)),
            compare("memorization of the corrupted labels falls", full_mem, ipr_m, a_name="full memorized",
                    b_name="top-IPR memorized", n=nc, floor=(full_mem, nc, ch)),
            compare("control: top-IPR beats random neurons", ipr_t, rnd_t, a_name="top-IPR test",
                    b_name="random test", n=n, floor=(ipr_t, n, ch))],
        settings=st, key=f"test {np.mean(full_test):.3f} → {np.mean(ipr_t):.3f}, memorized {np.mean(full_mem):.3f} → "
                         f"{np.mean(ipr_m):.3f}")


# ---------------------------------------------------------------------------- chapter 12: figures
#: Short cell labels of the phase heat maps (the full names do not fit a cell in a phone's column;
#: hovering and the key under the plot show them).
SHORT_PHASES = {"coexistence": "coex", "full inversion": "full inv", "partial inversion": "part inv",
                "memorization": "mem", "forgetting": "forget", "generalization (α = 0)": "gen",
                "intermediate": "mid", "unclassified": "?"}


def phase_heatmap(grid: Sequence[dict[str, Any]], key: str, title: str) -> Any:
    """A heat map of ``key`` over weight decay (x) × corruption (y), each cell labelled with its phase.

    Parameters
    ----------
    grid : list of dict
        :func:`phase_record` cells.
    key : str
        The accuracy shown as colour (0 to 1), e.g. ``test_acc`` or ``mem_acc``.
    title : str
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        The heat map. Each cell shows its value and its phase as in :data:`SHORT_PHASES` (the
        full name on hover, and a key to the short names below the plot), so that the labels stay
        legible in a phone's column; a cell whose phase rests on a chance-level number is marked
        with ``*``. The colour bar lies under the plot, leaving its width to the cells.
    """
    import plotly.graph_objects as go

    from .plots import _layout, _wrap

    wds = sorted({r["weight_decay"] for r in grid})
    noises = sorted({r["noise"] for r in grid})
    at = {(r["weight_decay"], r["noise"]): r for r in grid}
    z, text, hover, shown = [], [], [], {}
    for a in noises:
        zr, tr, hr = [], [], []
        for wd in wds:
            r = at.get((wd, a))
            v = None if r is None or r[key] is None or not np.isfinite(r[key]) else round(float(r[key]), 3)
            zr.append(v)
            value, star = ("–" if v is None else f"{v:.2f}"), ("*" if r is not None and r["phase_note"] else "")
            if r is not None:
                shown[r["phase"]] = SHORT_PHASES.get(r["phase"], r["phase"])
            tr.append("" if r is None else f"{value}<br>{shown[r['phase']]}{star}")
            hr.append("" if r is None else f"{value}<br>{r['phase']}{star}")
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    xs = [f"{w:g}" for w in wds]
    ys = [f"{a:g}" for a in noises]
    key_text = _wrap(" · ".join(f"{short} = {full}" for full, short in shown.items() if short != full), 60, " · ")
    key_px = 18 * (key_text.count("<br>") + 1) if key_text else 0
    height = 520 + key_px
    # under the plot, from the bottom up: the key to the short names, then the colour bar
    fig = go.Figure(go.Heatmap(z=z, x=xs, y=ys, text=text, customdata=hover, texttemplate="%{text}", zmin=0,
                               zmax=1, colorscale="Viridis",
                               colorbar=dict(orientation="h", x=0, xanchor="left", yref="container",
                                             y=(key_px + 8) / height, yanchor="bottom", len=1, thickness=12),
                               hovertemplate="wd %{x}, α %{y}<br>%{customdata}<extra></extra>"))
    if key_text:
        fig.add_annotation(text=key_text, x=0, xanchor="left", xref="paper", y=0, yref="paper", yanchor="top",
                           yshift=-105, showarrow=False, align="left", font=dict(size=11))
    _layout(fig, title, "weight decay", "corruption α", height=height)
    fig.update_layout(margin_b=110 + key_px)
    return fig.update_xaxes(type="category").update_yaxes(type="category")


# ---------------------------------------------------------------------------- chapter 13: progress measures
# the sizes, the snapshots taken during training and each run's summary live in the core
# (memgen.progress): `produce` records them for shipped results too
def _progress_sizes(profile: str, params: dict[str, Any]) -> dict[str, Any]:
    if profile not in PROGRESS_SIZES:
        raise ConfigError(f"profile={profile!r} is not allowed; choose one of {', '.join(PROGRESS_SIZES)}")
    sizes = dict(PROGRESS_SIZES[profile])
    for k in list(sizes):
        v = params.pop(k, None)
        if v is not None:
            sizes[k] = v
    validate_noise(sizes["noise"])
    if sizes["noise"] <= 0:
        raise ConfigError(f"noise={sizes['noise']!r} is not allowed here; the noisy run needs α > 0")
    return sizes


def progress_measures(profile: str = "book", *, progress: bool | None = False, seeds: Sequence[int] | None = None,
                      key_power: float = pg.KEY_POWER, **params: Any) -> Findings:
    """Chapter 13: Nanda et al.'s progress measures over training, for a clean and a noisy run.

    Parameters
    ----------
    profile : {"test", "book", "paper"}, default="book"
        The scale (:data:`PROGRESS_SIZES`).
    progress : bool or None, default=False
        Progress bar while training.
    seeds : sequence of int or None, default=None
        Seeds of both runs (None: 0, 1, 2).
    key_power : float, default=0.9
        Share of the final logits' rule-direction power the key frequencies hold
        (:func:`memgen.progress.spectrum_key_frequencies`, read on the test pairs).
    **params : Any
        ``p``, ``width``, ``steps``, ``lr``, ``weight_decay``, ``noise`` (the noisy run's α)
        override :data:`PROGRESS_SIZES`; other RunConfig fields (``task``, ``activation``,
        ``noise_mode``, ...) override the profile's.

    Returns
    -------
    Findings
        Verdicts ``rule_before_test``, ``excluded_rises``, ``sparser``, ``noisy_rule``,
        ``rule_after_memorization``; data ``clean`` and ``noisy`` (:func:`measured_runs` entries
        per seed) and ``rows`` (:func:`progress_record` per run).

    Raises
    ------
    ConfigError
        When a parameter is not allowed (``mul`` has no a + b − c component).
    """
    sizes = _progress_sizes(profile, params)
    if params.get("task", "add") not in pg.COMPONENT_TASKS:
        raise ConfigError(f"task={params['task']!r} is not allowed here; choose one of {', '.join(pg.COMPONENT_TASKS)}")
    seeds = list(seeds) if seeds else list(SEEDS)
    S = make_setup(profile, seeds=seeds, **sizes, **params)
    configs = [S.config(noise=a, seed=s) for a in (0.0, S.base.noise) for s in seeds]
    recs = measured_runs(configs, key_power=key_power, loss="ce", progress=progress)
    clean, noisy = recs[:len(seeds)], recs[len(seeds):]
    rows = [progress_record(r) for r in recs]
    settings = (f"profile {profile}; {S.base.task} mod P = {S.base.p}, M = {S.base.width}, {S.base.activation}, "
                f"{S.base.loss}, lr {S.base.lr:g}, wd {S.base.weight_decay:g}, {S.base.steps} steps, "
                f"{len(seeds)} seeds")
    verdicts = judge_progress(rows[:len(seeds)], rows[len(seeds):], settings=settings)
    return Findings("13_progress_measures", verdicts, {"clean": clean, "noisy": noisy, "rows": rows}, S)


#: Gini coefficient of the embedding's per-frequency norms that counts as a sparse spectrum: the
#: value of norms spread evenly over half the frequencies with none on the rest.
SPARSE = 0.5
#: Share of the final logits' variance the key frequencies must explain before removing them
#: (the excluded loss) can say anything.
KEY_SHARE = 0.1


def _column(rows: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """``key`` of every row as a float array (NaN where a row lacks it)."""
    return np.array([r.get(key, np.nan) for r in rows], dtype=float)


def _widest(rows: Sequence[dict[str, Any]], key: str) -> float:
    """The widest of the rows' ``key`` gaps (:func:`progress_record`'s ``gap_*``; 0 when none)."""
    g = _column(rows, key)
    return float(np.nanmax(g)) if np.isfinite(g).any() else 0.0


def judge_progress(clean: Sequence[dict[str, Any]], noisy: Sequence[dict[str, Any]], *,
                   settings: str = "") -> dict[str, Verdict]:
    """Chapter 13's claims from :func:`progress_record` rows (one per seed for each run).

    "The rule forms" is read off the held-out restricted logits (``t_heldout``,
    ``heldout_acc_final``), which no training label enters: the all-pairs ones let a lookup table
    of the training labels reach them too (``lookup_acc``). Rows measured before memgen had the
    held-out ones leave those claims undefined. A step is the first snapshot (or recorded step) at
    which a level is reached, so it is known to within the gap to the one before it
    (``gap_*``): the rule's snapshot step against the memorized step, read off the denser
    history, needs a difference beyond the widest such gap; two steps on the same snapshots are
    ordered exactly, and the evidence names the gap. The excluded loss is judged only where the key
    frequencies explain at least :data:`KEY_SHARE` of the final logits' variance
    (``key_share_final``).

    Parameters
    ----------
    clean, noisy : list of dict
        Rows of the clean (α = 0) and the noisy run, one per seed (:func:`progress_record`'s keys).
    settings : str, default=""
        Where they were measured.

    Returns
    -------
    dict of str to Verdict
        ``rule_before_test``, ``excluded_rises``, ``sparser`` (clean run), ``noisy_rule`` and
        ``rule_after_memorization`` (noisy run).
    """
    out: dict[str, Verdict] = {}
    v = _column
    c0, n0 = clean[0], noisy[0]
    n, ch, T = c0["n_test"], 1.0 / c0["p"], c0["steps"]
    st_c = settings + "; α = 0"
    st_n = settings + f"; α = {n0['noise']:g}"
    measured = bool(np.isfinite(v([*clean, *noisy], "heldout_acc_final")).all())

    def unmeasured(rows: Sequence[dict[str, Any]]) -> str:
        return (f"these snapshots were measured before memgen had the held-out restricted logits, which this claim "
                f"reads; the all-pairs ones, which the training labels enter, end at "
                f"{fmt_seeds(v(rows, 'restricted_acc_final'))} (a lookup table of the training labels: "
                f"{fmt_seeds(v(rows, 'lookup_acc'))}); re-measuring needs new snapshots (`memgen produce` trains "
                f"these runs again)")

    def key_note(rows: Sequence[dict[str, Any]]) -> str:
        return (f"the key frequencies ({', '.join(str(len(r['key_freqs'])) for r in rows)} per seed) explain "
                f"{fmt_seeds(v(rows, 'key_share_final'))} of the final logits' variance")

    def held(rows: Sequence[dict[str, Any]]) -> str:
        return f"final held-out restricted accuracy {fmt_seeds(v(rows, 'heldout_acc_final'))}"

    # the rule forms before the test accuracy rises (clean run)
    claim = (f"the rule forms (held-out restricted logits ≥ {FORMED} on the test pairs) before the raw test accuracy "
             f"reaches {RISEN}")
    t_rule, t_half = v(clean, "t_heldout"), v(clean, "t_half")
    if not measured:
        out["rule_before_test"] = undefined(claim, unmeasured(clean), settings=st_c)
    elif not np.isfinite(t_rule).all():
        out["rule_before_test"] = undefined(claim, f"the held-out restricted logits never reach {FORMED} in some seed "
                                                   f"({held(clean)}); the raw test accuracy ends at "
                                                   f"{fmt_seeds(v(clean, 'test_acc'))}; {key_note(clean)}",
                                            settings=st_c)
    elif not np.isfinite(t_half).all():
        out["rule_before_test"] = undefined(claim, f"the test accuracy never reaches {RISEN} in some seed within "
                                                   f"{T} steps (final {fmt_seeds(v(clean, 'test_acc'))}), so there is "
                                                   f"no generalization to order; the rule formed at steps "
                                                   f"{fmt_seeds(t_rule, 0)}", settings=st_c)
    else:
        before = compare(claim, t_half, t_rule, a_name="test step", b_name="rule step", digits=0, settings=st_c,
                         floor=(v(clean, "heldout_acc_final"), n, ch))
        gap = max(_widest(clean, "gap_half"), _widest(clean, "gap_heldout"))
        out["rule_before_test"] = replace(before, evidence=f"{before.evidence}; both are first snapshots on one grid, "
                                                           f"each up to {gap:.0f} steps after the snapshot before it: "
                                                           f"the order within a seed is exact, the difference known "
                                                           f"to that gap")
    # the excluded loss rises (clean run): the training fit comes to rely on the rule
    ex_f, ex_m = v(clean, "excluded_final"), v(clean, "excluded_min")
    floor = (v(clean, "test_acc"), n, ch)  # the network generalizes at all
    claim = "the excluded loss (the training loss with the key frequencies removed) rises during training"
    if np.any(v(clean, "key_share_final") < KEY_SHARE):
        out["excluded_rises"] = undefined(claim, f"{key_note(clean)}, below {KEY_SHARE:g} in some seed: removing "
                                                 f"them leaves the logits nearly whole, so the excluded loss cannot "
                                                 f"rise; final excluded loss {fmt_seeds(ex_f)}, raw test accuracy "
                                                 f"{fmt_seeds(v(clean, 'test_acc'))}", settings=st_c)
    else:
        rises = compare(claim, ex_f, ex_m, a_name="final excluded loss", b_name="lowest excluded loss", floor=floor,
                        settings=st_c)
        out["excluded_rises"] = replace(rises, evidence=f"{rises.evidence}; the excluded logits still fit "
                                                        f"{fmt_seeds(v(clean, 'excluded_acc_final'))} of the training "
                                                        f"labels at the end (a uniform guess's loss: log P = "
                                                        f"{np.log(c0['p']):.2f})")
    g_end = v(clean, "gini_final")
    rise = compare("its Gini coefficient rises", g_end, v(clean, "gini_start"), a_name="final Gini",
                   b_name="initial Gini", floor=floor)
    ends = bool(np.all(g_end >= SPARSE))
    level = Verdict(f"it ends sparse (Gini ≥ {SPARSE:g})", REPRODUCED if ends else NOT_SHOWN,
                    f"final Gini {fmt_seeds(g_end)}; needs ≥ {SPARSE:g} in every seed (the Gini of norms spread "
                    f"evenly over half the frequencies, none on the rest)", {"sparse level": SPARSE})
    out["sparser"] = combine(f"the embedding's Fourier spectrum grows sparse (its Gini coefficient rises, to at "
                             f"least {SPARSE:g})", [rise, level], settings=st_c, key=rise.key)
    # noisy run: does the rule still form in the network's answers on unseen pairs?
    claim = (f"under label noise α = {n0['noise']:g} the rule still forms (held-out restricted logits above {FORMED} "
             "on the test pairs in every seed)")
    if not measured:
        out["noisy_rule"] = undefined(claim, unmeasured(noisy), settings=st_n)
    else:
        rule = judge_at_least(claim, v(noisy, "heldout_acc_final"), n, FORMED, settings=st_n,
                              name="final held-out restricted test accuracy")
        out["noisy_rule"] = replace(rule, evidence=f"{rule.evidence} (the pairs are not independent: with many key "
                                                   f"frequencies this accuracy is near 0 or 1 in each seed, and the "
                                                   f"loss below is the graded measure); chance 1/P = {ch:.3f}, "
                                                   f"raw test accuracy {fmt_seeds(v(noisy, 'test_acc'))}; held-out "
                                                   f"restricted loss "
                                                   f"{fmt_seeds(v(noisy, 'heldout_loss_final'))} (a uniform guess: "
                                                   f"log P = {np.log(c0['p']):.2f}); {key_note(noisy)}")
    claim = "under label noise the corrupted labels are memorized before the rule forms"
    t_rule_n, t_mem = v(noisy, "t_heldout"), v(noisy, "t_mem")
    if not measured:
        out["rule_after_memorization"] = undefined(claim, unmeasured(noisy), settings=st_n)
    elif not np.isfinite(t_mem).all():
        out["rule_after_memorization"] = undefined(claim, f"the noisy labels never reach {FORMED} in some seed",
                                                   settings=st_n)
    elif not np.isfinite(t_rule_n).all():
        out["rule_after_memorization"] = undefined(
            claim, f"the held-out restricted logits never reach {FORMED} in some seed within {T} steps "
                   f"({held(noisy)}); memorized at steps {fmt_seeds(t_mem, 0)}", settings=st_n)
    else:
        gap = _widest(noisy, "gap_heldout")
        out["rule_after_memorization"] = compare(claim, t_rule_n, t_mem, a_name="rule step", b_name="memorized step",
                                                 digits=0, settings=st_n, floor=(v(noisy, "heldout_acc_final"), n, ch),
                                                 min_margin=gap,
                                                 margin_why=f"the rule step is a snapshot, up to {gap:.0f} steps "
                                                            f"after the one before it (the memorized step is read off "
                                                            f"the denser history)")
    return out


def progress_summary(findings: Findings) -> str:
    """Chapter 13's numbers in words: how many key frequencies, when memorization and the rule
    came, and how strong the rule is at the end (Markdown, generated from the findings).

    Parameters
    ----------
    findings : Findings
        :func:`progress_measures`'s, or the shipped section's (data ``clean`` and ``noisy``:
        :func:`measured_runs` entries per seed).

    Returns
    -------
    str
        One paragraph of Markdown.
    """
    v = _column
    clean = [progress_record(e) for e in findings.data["clean"]]
    noisy = [progress_record(e) for e in findings.data["noisy"]]
    rows, verdicts = clean + noisy, findings.verdicts
    p, alpha = rows[0]["p"], noisy[0]["noise"]

    def steps(x: np.ndarray) -> str:
        return fmt_seeds(x, 0) if np.isfinite(x).all() else "– (not in every seed)"

    def count(rs: Sequence[dict[str, Any]]) -> str:
        return ", ".join(str(len(r["key_freqs"])) for r in rs)

    text = [f"The key frequencies, the strongest holding {pg.KEY_POWER:g} of the final logits' rule power, number "
            f"{count(clean)} of the {p // 2} per seed in the clean run and {count(noisy)} in the noisy one; they "
            f"explain {fmt_seeds(v(clean, 'key_share_final'))} and {fmt_seeds(v(noisy, 'key_share_final'))} of the "
            f"final logits' variance."]
    if np.isfinite(v(clean, "heldout_acc_final")).all():
        text.append(f"Clean run: the held-out restricted logits reach {FORMED:g} at step "
                    f"{steps(v(clean, 't_heldout'))}, the raw test accuracy reaches {RISEN:g} at step "
                    f"{steps(v(clean, 't_half'))}.")
    text.append(f"At α = {alpha:g}, the corrupted labels reach {FORMED:g} at step {steps(v(noisy, 't_mem'))}; the "
                f"held-out restricted logits reach {FORMED:g} on the test pairs at step "
                f"{steps(v(noisy, 't_heldout'))}. Verdict on 'memorized first': "
                f"**{verdicts['rule_after_memorization'].verdict}**.")
    held, raw = v(noisy, "heldout_acc_final"), v(noisy, "test_acc")
    text.append(f"At the end the held-out restricted logits predict {fmt_seeds(held)} of the test pairs (chance "
                f"{1 / p:.3f}; their loss {fmt_seeds(v(noisy, 'heldout_loss_final'), 2)}, a uniform guess's "
                f"log P = {np.log(p):.2f}) and the raw network {fmt_seeds(raw)}; the all-pairs restricted logits "
                f"reach {fmt_seeds(v(noisy, 'restricted_acc_final'))}, and a lookup table of the training labels "
                f"{fmt_seeds(v(noisy, 'lookup_acc'))} on that same measure.")
    if np.all(held < 1 / p) and np.all(raw < 1 / p):
        text.append(f"The held-out restricted and the raw accuracies both lie below chance {1 / p:.3f}: a network that "
                    "memorizes answers each unseen pair with classes it saw next to a or b in training, and with "
                    "clean labels those are never the pair's true class, so on the test pairs its logits favour a "
                    "wrong offset a + b − c.")
    elif np.all(held >= FORMED) and np.all(raw < RISEN):
        text.append("The rule is in the network's answers on unseen pairs, though memorization outvotes it in most "
                    "of them: the coexistence this book is about, seen through Nanda et al.'s measures.")
    return " ".join(text)


__all__ = ["DOSHI", "PHASES", "PHASE_SIZES", "PROGRESS_SIZES", "best_prune_index", "corrupted_dataset",
           "first_step", "grokking_phases", "judge_phases", "judge_progress", "judge_pruning", "measured_runs",
           "phase_heatmap", "phase_of", "phase_record", "progress_figure", "progress_measures", "progress_record",
           "progress_summary", "prune_curves", "snapshot_steps"]


# ---------------------------------------------------------------------------- chapter 13: figures
HELD = "restricted logits, held out (the rule)"
HELD_LOSS = "restricted loss, held out (dotted: log P)"
ALL_PAIRS = "restricted logits, all pairs (labels leak in)"


def progress_figure(groups: dict[str, Sequence[dict[str, Any]]], title: str, p: int) -> Any:
    """Losses (top, log scale) and accuracies (bottom) over training, one slider step per run.

    The accuracy panel draws the held-out restricted logits' test accuracy (solid green, where
    measured) and the all-pairs one (dotted light green), whose level sets include the training
    labels; the loss panel draws their held-out loss too (dashed dark green, where measured), with a
    dotted line at log P, a uniform guess's loss.

    Parameters
    ----------
    groups : dict of str to list of dict
        Slider label -> :func:`measured_runs` entries (one per seed).
    title : str
        Figure title.
    p : int
        The modulus (chance 1/p on the accuracy panel).

    Returns
    -------
    plotly.graph_objects.Figure
        Mean over seeds with error bars from the lowest to the highest seed.
    """
    from plotly.subplots import make_subplots

    from .plots import _layout, add_chance, seed_traces

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    spans = []
    losses = {"restricted loss (key frequencies only, all pairs)": "restricted_loss",
              "excluded loss (key frequencies removed, training set)": "excluded_loss",
              "training loss": "train_loss", "test loss": "test_loss"}
    colors = {"restricted_loss": "#2ca02c", "excluded_loss": "#9467bd", "train_loss": "#1f77b4",
              "test_loss": "#ff7f0e", "heldout_loss": "#00441b"}
    for i, (label, recs) in enumerate(groups.items()):
        start = len(fig.data)
        steps = recs[0]["steps"]
        shown = {**losses, HELD_LOSS: "heldout_loss"} if all("heldout_loss" in r for r in recs) else losses
        top = seed_traces(steps, {name: np.array([r[k] for r in recs]) for name, k in shown.items()},
                          colors={name: colors[k] for name, k in shown.items()}, dash={HELD_LOSS: "dash"})
        h = [r["history"] for r in recs]
        accs = {"train accuracy": "train_acc", "test accuracy": "test_acc", "noisy labels memorized": "noisy_acc"}
        series = {}
        for name, k in accs.items():
            vals = np.array([[dict(zip(x["step"], x[k])).get(s, np.nan) for s in steps] for x in h], dtype=float)
            if np.isfinite(vals).any():
                series[name] = vals
        if all("heldout_test_acc" in r for r in recs):  # absent from snapshots measured before version 2
            series[HELD] = np.array([r["heldout_test_acc"] for r in recs])
        series[ALL_PAIRS] = np.array([r["restricted_test_acc"] for r in recs])
        bottom = seed_traces(steps, series, colors={"train accuracy": "#1f77b4", "test accuracy": "#ff7f0e",
                                                     "noisy labels memorized": "#d62728", HELD: "#2ca02c",
                                                     ALL_PAIRS: "#98df8a"},
                             dash={ALL_PAIRS: "dot"})
        for tr in top:
            tr.visible = i == 0
            fig.add_trace(tr, row=1, col=1)
        for tr in bottom:
            tr.visible = i == 0
            tr.showlegend = True
            fig.add_trace(tr, row=2, col=1)
        spans.append((label, start, len(fig.data)))
    n = len(fig.data)
    steps_ = [dict(method="update", label=label, args=[{"visible": [s <= j < e for j in range(n)]}])
              for label, s, e in spans]
    # the slider, then the legend as rows below the plot (as the book's other slider figures)
    fig.update_layout(sliders=[dict(active=0, steps=steps_, currentvalue=dict(prefix="run: "), pad=dict(t=50, r=40),
                                    x=0.02, len=0.9)], height=820)
    _layout(fig, title)
    fig.update_yaxes(type="log", dtick=1, title_text="loss (log)", row=1, col=1)
    # log P, a uniform guess's loss (no annotation: on a log axis plotly places its text at 10**y)
    fig.add_hline(y=float(np.log(p)), line_dash="dot", line_color="#7f7f7f", line_width=1, row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], title_text="accuracy", row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    add_chance(fig, 1.0 / p, row=2, col=1)  # above the line: below it the label meets the step ticks
    return fig
