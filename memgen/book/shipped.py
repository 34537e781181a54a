"""The "at the paper's scale" section of a chapter: results memgen trained elsewhere (a GPU) and
shipped under ``results/<profile>/``, read without training (see :mod:`memgen.results`).

A chapter calls :func:`section` with its stem and its ``results`` parameter (``"paper"`` in the
book; the test build points it at the small CPU-produced ``"test"`` results so that the same code
runs). It shows where the numbers come from (or that they have not been produced yet), then the
chapter's headline figure and its verdicts, judged by the same ``judge_*`` functions of
:mod:`memgen.book.findings` that judge the runs the chapter trains. :func:`shipped_findings` gives
the verdicts alone (the introduction's findings table).

Records are selected by their config fields, so the planned groups of :func:`memgen.results.plan`
need no bookkeeping here: e.g. chapter 2's grid is every ReLU addition run with the profile's
optimizer, steps and weight decay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import plotly.graph_objects as go
from IPython.display import Markdown, display

from .. import images as img
from .. import phases as ph
from .. import progress as pg
from .. import transformer as tfm
from ..configs import RunConfig, get_profile
from ..optimizers import NOISE
from ..results import PARTITION_NOISES, PLAN_SEEDS, load, plan, provenance
from ..verdicts import fmt_seeds
from . import diagnostics as dgb
from . import findings as fd
from . import optimizers as opt
from . import plots, prior_work, report, tables

Record = dict[str, Any]


def banner(source: str, recs: list[Record], chapter: str | None = None, note: str = "") -> Markdown:
    """A note saying where the shipped numbers below come from (and ``note``: what they lack), or
    how to produce them.

    Parameters
    ----------
    source : str
        The shipped profile (``results/<source>/``).
    recs : list of dict
        The chapter's shipped records; empty: the note says how to produce them.
    chapter : str or None, default=None
        The chapter's notebook stem; it decides whether ``python -m memgen produce`` plans its runs
        (None: it does) and whether they need MNIST.
    note : str, default=""
        Appended to the provenance line when there are records.

    Returns
    -------
    IPython.display.Markdown
        A ``note`` admonition.
    """
    if not recs:
        planned = chapter is None or chapter in JUDGES
        mnist = chapter == "10_noise_first_images" and img.SHIPPED_DATA.get(source) == "mnist"
        how = (f"They are produced with `make mnist` (it downloads MNIST's files, checksummed; memgen does not "
               f"ship them) and `python -m memgen produce --profile {source} --groups images --mnist-path "
               "data/mnist` (a CPU is enough; resumable) and committed" if planned and mnist else
               f"They are produced on a GPU with `python -m memgen produce --profile {source} --device cuda` "
               "(resumable) and committed" if planned else
               "`python -m memgen produce` does not plan this chapter's runs yet")
        return Markdown(
            f":::{{admonition}} Results at the `{source}` scale are not shipped yet\n:class: note\n"
            f"Nothing in `results/{source}/` matches this chapter. {how}; until then the section below, "
            "trained now at CPU scale, is all this chapter shows.\n:::")
    kind = {"paper": "the paper's scale",
            "paper20k": "the paper's P = 113; 20k training steps, not the paper's 200k"
            }.get(source, "CPU-scale test results, not the paper's scale")
    return Markdown(f":::{{admonition}} Shipped results ({kind})\n:class: note\n{provenance(recs)}. "
                    f"Read from `results/{source}/`, checksummed; nothing is trained here.{note}\n:::")


# ---------------------------------------------------------------------------- selecting records
def _base(recs: Sequence[Record], source: str, **where: Any) -> list[Record]:
    """Records with the profile's training setup (optimizer, steps, weight decay, untied,
    wrong-label noise), the activation ReLU and task ``add`` unless ``where`` says (None: any)."""
    prof = get_profile(source)
    want = {"optimizer": "adamw", "steps": prof.base["steps"], "weight_decay": prof.base["weight_decay"],
            "tied": False, "noise_mode": "wrong", "activation": "relu", "task": "add", **where}
    want = {k: v for k, v in want.items() if v is not None}  # None: any value
    return [r for r in recs if all(fd._eq(r.get(k), v) for k, v in want.items())]


def _pseudo_run(rec: Record) -> SimpleNamespace:
    """What the history tables read from a run (config, history), from a shipped record."""
    return SimpleNamespace(config=RunConfig.from_dict(rec), history=rec["history"], failed=False)


def _need(*groups: Sequence[Record]) -> bool:
    return all(len(g) > 0 for g in groups)


def _pick(recs: Sequence[Record], keys: Sequence[str], needs: str = "key") -> list[Record] | None:
    """The records named ``keys``, in that order, or None when one is not shipped or lacks ``needs``
    (a number its chapter reads)."""
    by_key = {r["key"]: r for r in recs}
    found = [by_key.get(k) for k in keys]
    return None if any(r is None or needs not in r for r in found) else found


def _planned(recs: Sequence[Record], source: str, group: str) -> bool:
    """Whether every run that :func:`memgen.results.plan` plans for ``group`` at ``source`` is shipped."""
    return _pick(recs, [c.key() for c in plan(source, [group])[group]]) is not None


def _main_noise(rows: Sequence[Record], noise: float) -> tuple[float, dict[str, str]]:
    """``noise`` (a profile's main α) when ``rows`` have it, else the highest α they have: shipped
    results may lack the main α's runs. Also the Findings data that says so for the banner
    (``{"note": ...}``, or nothing); the verdicts name the α judged."""
    have = sorted({r["noise"] for r in rows})
    if any(fd._eq(a, noise) for a in have):
        return noise, {}
    return have[-1], {"note": f" The runs at the main α = {noise:g} (M = {rows[0]['width']}) are not shipped yet: "
                              f"the verdicts below are judged at α = {have[-1]:g}, the highest α shipped there."}


def _used(*groups: Sequence[Record]) -> list[Record]:
    """The distinct records a judge read (their provenance is the chapter's)."""
    return list({r["key"]: r for g in groups for r in g}.values())


# ---------------------------------------------------------------------------- one judge per chapter
def _scaling(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    """Chapter 2 at the grid's highest α, and its width claims (``bigger``, ``g_bigger``) at each
    lighter α > 0 at which the grid has several widths too: keyed ``<key>_alpha<α>``, each right after
    its claim at the highest α, their claims naming their α (and ``bigger``'s the paper's α)."""
    prof = get_profile(source)
    grid = _base(recs, source, task=task)
    if not _need(grid):
        return None
    heavy = max(r["noise"] for r in grid)
    acts = _base(recs, source, task=task, activation=None)
    side_w = sorted({r["width"] for r in acts if r["activation"] != "relu"})
    act = [r for r in acts if fd._eq(r["noise"], heavy) and r["width"] in side_w]
    wd3 = 3 * prof.base["weight_decay"]
    wd = [r for r in _base(recs, source, task=task, weight_decay=None)
          if fd._eq(r["noise"], heavy) and (fd._eq(r["weight_decay"], wd3) or fd._eq(r["weight_decay"],
                                                                                  prof.base["weight_decay"]))]
    wd_w = sorted({r["width"] for r in wd if fd._eq(r["weight_decay"], wd3)})
    wd = [r for r in wd if r["width"] in wd_w]
    # a side sweep is judged only when every run planned for it is shipped (else its claims are "not shipped")
    act, wd = (rows if _planned(recs, source, group) else [] for rows, group in ((act, "activations"),
                                                                                 (wd, "weight_decay")))
    st = {"grid": fd.settings_text([r for r in grid if fd._eq(r["noise"], heavy)], source),
          "activations": fd.settings_text(act, source, activations=", ".join(sorted({r["activation"] for r in act}))),
          "weight_decay": fd.settings_text(wd, source, **{"weight decay": ", ".join(
              f"{x:g}" for x in sorted({r["weight_decay"] for r in wd}))})}
    verdicts = fd.judge_scaling(grid, act, wd, heavy=heavy, side=heavy, settings=st)
    lighter = [a for a in sorted({r["noise"] for r in grid}) if 0 < a < heavy
               and len({r["width"] for r in grid if fd._eq(r["noise"], a)}) > 1]
    extra = {}
    for a in lighter:  # shorter training may show the growth with width at a light α before the heaviest
        at = fd.judge_scaling(grid, [], [], heavy=a, side=a, settings={
            "grid": fd.settings_text([r for r in grid if fd._eq(r["noise"], a)], source)})
        extra.setdefault("bigger", {})[f"bigger_alpha{a:g}"] = replace(
            at["bigger"], claim=f"{at['bigger'].claim} (the paper claims it even at α = {heavy:g})")
        extra.setdefault("g_bigger", {})[f"g_bigger_alpha{a:g}"] = at["g_bigger"]  # the book's control
    ordered = {}
    for key, v in verdicts.items():  # each claim at a lighter α right after its claim at the highest
        ordered[key] = v
        ordered.update(extra.get(key, {}))
    return fd.Findings("02_scaling", ordered, {"grid": grid, "p": grid[0]["p"], "chance": fd.chance(grid[0]),
                                                "records": _used(grid, act, wd),
                                                "summary": _scaling_summary(grid) if lighter else ""})


def _scaling_summary(grid: Sequence[Record]) -> str:
    """Chapter 2's shipped numbers in words: raw and G-part test accuracy by width at each α > 0."""
    out = [f"Test accuracy by width, mean over seeds (chance 1/P = {fd.chance(grid[0]):.3f}):", ""]
    for a in sorted({r["noise"] for r in grid if r["noise"] > 0}):
        at = [r for r in grid if fd._eq(r["noise"], a)]
        widths = sorted({r["width"] for r in at})

        def by_width(k: str) -> str:
            return " / ".join(f"{np.mean([r[k] for r in at if r['width'] == w]):.3f}" for w in widths)

        n = sorted({len({r["seed"] for r in at if r["width"] == w}) for w in widths})  # seeds per width
        seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}–{n[-1]}"
        out.append(f"- α = {a:g}, M = {' / '.join(str(w) for w in widths)}: the raw network {by_width('test_acc')}, "
                   f"its frequency-filtered G part {by_width('G_test_acc')} ({seeds} seed{'s' if n[-1] > 1 else ''}).")
    return "\n".join(out)


def _noise_first(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    rows = _base(recs, source, task=task, optimizer="adam", steps=500, weight_decay=0.0)
    rows = [r for r in rows if fd._eq(r["noise"], 0.3)]
    if not _need(rows):
        return None
    runs = [_pseudo_run(r) for r in rows]
    order = tables.memorization_order(runs)
    gaps = [{"width": r.config.width, "seed": r.config.seed, "gap": tables.early_gradient_gap(r)} for r in runs]
    verdicts = fd.judge_noise_first(order, gaps, steps=500, settings=fd.settings_text(rows, source))
    return fd.Findings("03_noise_first", verdicts, {"runs": runs, "p": rows[0]["p"], "records": _used(rows)})


def _hidden_rule(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    prof = get_profile(source)
    rows = [r for r in _base(recs, source, task=task, width=prof.width) if "phase_error_shuffled" in r]
    if not _need(rows):
        return None
    (alpha, extra), vis = _main_noise(rows, prof.noise), fd.visible_noise(rows)
    st = {a: fd.settings_text([r for r in rows if fd._eq(r["noise"], a)], source) for a in (vis, alpha)}
    st["both"] = fd.settings_text(rows, source)
    verdicts = fd.judge_hidden_rule(rows, noise=alpha, visible=vis, settings=st)
    return fd.Findings("04_hidden_rule", verdicts, {"rows": rows, "p": rows[0]["p"], "chance": fd.chance(rows[0]),
                                                    "records": _used(rows), **extra})


def _filtration(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    prof = get_profile(source)
    curve = [r for r in _base(recs, source, task=task, width=prof.width) if "vote_test_acc" in r]
    if not _need(curve):
        return None
    alpha, extra = _main_noise(curve, prof.noise)
    rows = [r for r in curve if fd._eq(r["noise"], alpha)]
    first = [r for r in curve if r["seed"] == min(x["seed"] for x in curve)]
    verdicts = fd.judge_filtration(rows, first, noise=alpha, settings=fd.settings_text(rows, source),
                                   curve_settings=fd.settings_text(first, source))
    return fd.Findings("05_frequency_filtration", verdicts, {"curve": curve, "p": rows[0]["p"],
                                                             "chance": fd.chance(rows[0]),
                                                             "records": _used(curve), **extra})


def _partition(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    """Chapter 6 at the profile's α and, where their records are shipped, at :data:`PARTITION_NOISES`
    (a lower α, where the raw network generalizes and a partition has more to find): the lower α's
    verdicts are keyed ``<key>_alpha<α>`` and their claims start with "At α = <α>,"."""
    main = get_profile(source).noise
    curved = [r for r in _base(recs, source, task=task) if "strength_G_test" in r]
    by_alpha = {}
    for a in dict.fromkeys((main, *PARTITION_NOISES)):
        rows = [r for r in curved if fd._eq(r["noise"], a)]
        if rows:
            by_alpha[a] = rows
    if main not in by_alpha:
        return None
    verdicts = fd.judge_partition(by_alpha[main], settings=fd.settings_text(by_alpha[main], source))
    for a, rows in by_alpha.items():
        if a != main:
            for k, v in fd.judge_partition(rows, settings=fd.settings_text(rows, source)).items():
                verdicts[f"{k}_alpha{a:g}"] = replace(v, claim=f"At α = {a:g}, {v.claim}")
    rows = by_alpha[main]
    return fd.Findings("06_partition", verdicts, {"rows": rows, "by_alpha": by_alpha, "p": rows[0]["p"],
                                                  "chance": fd.chance(rows[0]), "records": _used(*by_alpha.values()),
                                                  "summary": _partition_summary(by_alpha)})


def _partition_summary(by_alpha: dict[float, list[Record]]) -> str:
    """Chapter 6's shipped numbers in words at each α (empty with one α: its verdicts say it all)."""
    if len(by_alpha) < 2:
        return ""
    out = []
    for a, rows in by_alpha.items():
        i, g, r = fd._best_fraction(rows, "strength")
        kept = f"{rows[0]['fractions'][i]:.0%}"
        seeds = f"{len(rows)} seed{'s' if len(rows) > 1 else ''}"
        out.append(f"At α = {a:g} ({seeds}) the whole network answers "
                   f"{fmt_seeds([x['test_acc'] for x in rows])} of the test pairs; kept alone, its top {kept} of "
                   f"neurons by strength answer {fmt_seeds(g)} of them, a random {kept} {fmt_seeds(r)}, and "
                   f"frequency filtration of the whole network {fmt_seeds([x['ff_whole_test'] for x in rows])} "
                   f"(chance {fd.chance(rows[0]):.3f}).")
    return "\n\n".join(out)  # a paragraph per α


def _misspecification(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    tied = _base(recs, source, task=task, tied=True, noise_mode=None)
    tied = [r for r in tied if fd._eq(r["noise"], 0.4) and "mirror_share" in r]
    widths = sorted({r["width"] for r in tied})
    untied = [r for r in _base(recs, source, task=task) if fd._eq(r["noise"], 0.4) and r["width"] in widths]
    if not _need(tied, untied):
        return None
    rows = [{**r, "setting": "untied, wrong"} for r in untied]
    rows += [{**r, "setting": f"tied, {r['noise_mode']}"} for r in tied]
    verdicts = fd.judge_misspecification(rows, settings=fd.settings_text(rows, source))
    return fd.Findings("07_misspecification", verdicts, {"rows": rows, "p": rows[0]["p"],
                                                         "records": _used(untied, tied)})


def _optimizers(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    prof = get_profile(source)
    width, steps = opt.SIZE[source]
    settings_ = opt.optimizer_settings(prof.base["lr"], prof.base["weight_decay"])
    picked = {name: _base(recs, source, task=task, width=width, steps=steps, noise=NOISE, **kw)
              for name, kw in settings_.items()}
    if not all(picked.values()):
        return None
    seeds = sorted({r["seed"] for rs in picked.values() for r in rs})
    by_seed = {name: {r["seed"]: r for r in rs} for name, rs in picked.items()}  # a diverged seed is missing

    def per_seed(name: str, get: Callable[[Record], float]) -> np.ndarray:
        return np.array([get(by_seed[name][s]) if s in by_seed[name] else np.nan for s in seeds], dtype=float)

    r0 = picked["AdamW"][0]
    values = {n: {k: per_seed(n, lambda r, k=k: r[k]) for k in opt.METRICS} for n in settings_}
    reached = {n: per_seed(n, lambda r: tables.first_step_reaching(_pseudo_run(r), "noisy_acc", opt.MEMORIZED))
               for n in settings_}
    short = f"{task}, P = {r0['p']}, M = {width}, α = {NOISE:g}, {steps} steps"
    settings = fd.settings_text([r for rs in picked.values() for r in rs], source, optimizers=opt.describe(settings_))
    verdicts, t90 = opt.judge_optimizers(values, reached, p=r0["p"], n_test=r0["n_test"], n_noisy=r0["n_noisy"],
                                         steps=steps, settings=settings, chance=fd.chance(r0))
    return fd.Findings("11_optimizers", verdicts, {"values": values, "t90": t90, "p": r0["p"],
                                                   "chance": fd.chance(r0), "short": short,
                                                   "opts": settings_, "records": _used(*picked.values())})


def _transformer(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    """Chapter 9 on the shipped Transformer records (``results/<source>/transformer/``) at the
    profile's main α and ``n_keep``; ``recs`` (two-layer records) are not used."""
    C = tfm.profile_config(source, task=task)
    planned = [c for c in tfm.sweep_configs(C, [C.noise], list(PLAN_SEEDS), source) if c.noise == C.noise]
    shipped = [r for r in load(source, kind="transformer") if r["n_keep"] == C.n_keep]
    rows = _pick(shipped, [c.key() for c in planned])  # every seed of the main α, filtered as the chapter does
    if rows is None:
        return None
    metrics = ("train_acc", "clean_acc", "noisy_acc", "noisy_true_acc", "test_acc")
    ffs = [{"before": {k: r[k] for k in metrics}, "after": {k: r[f"ff_{k}"] for k in metrics}} for r in rows]
    r0 = rows[0]
    where = (f"profile {source}: {task}, P = {r0['p']}, train fraction {r0['train_frac']:g}, one-layer "
             f"Transformer (d_model {r0['d_model']}, {r0['n_heads']} heads, d_mlp {r0['d_mlp']}), AdamW lr "
             f"{r0['lr']:g}, weight decay {r0['weight_decay']:g}, {r0['steps']} steps; α = {C.noise:g}, "
             f"n_keep = {C.n_keep}, seeds {[r['seed'] for r in rows]}")
    # the other shipped α (one seed each): test accuracy before → after filtration, in the note
    sweep = sorted((r for r in shipped if r["seed"] == r0["seed"] and r["task"] == task), key=lambda r: r["noise"])
    note = ("" if len(sweep) < 2 else
            f" Test accuracy before → after filtration across the shipped α (seed {r0['seed']}): "
            + "; ".join(f"α = {r['noise']:g}: {r['test_acc']:.3f} → {r['ff_test_acc']:.3f}" for r in sweep)
            + f". The verdicts below are judged at α = {C.noise:g}, over its seeds.")
    V = tfm.judge_filtration(ffs, n_train=r0["n_train"], n_test=r0["n_test"], n_noisy=r0["n_noisy"], p=r0["p"],
                             task=task, settings=where)
    return fd.Findings("09_transformer", {k: V[k] for k in ("memorized", "test", "noisy", "split")},
                       {"ff": ffs, "p": r0["p"], "chance": fd.chance(r0), "noise": C.noise,
                        "n_keep": C.n_keep, "records": _used(rows),
                        "note": note})


def _images(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    """Chapter 10 on the shipped image records (``results/<source>/images/``) at the chapter's
    defaults (the profile's network, the paper's α); ``recs`` and ``task`` are not used."""
    rows = _pick(load(source, kind="images"),  # every planned α and seed
                 [img.record_key(c, img.SHIPPED_DATA[source]) for c in img.plan_configs(source)])
    if rows is None:
        return None
    noises = list(img.PAPER_NOISES)
    fields = set(img.ImageConfig.__dataclass_fields__) - {"device"}
    runs = [SimpleNamespace(config=img.ImageConfig(**{k: r[k] for k in fields}), history=r["history"]) for r in rows]
    r0 = rows[0]
    seeds = sorted({r["seed"] for r in rows})
    where = (f"{r0['source']}; MLP {r0['hidden']}-{r0['hidden']}, {r0['optimizer']} lr {r0['lr']:g}, full batch, "
             f"{r0['epochs']} epochs, {len(seeds)} seeds; profile {source}")
    V = img.judge_noise_first(runs, noises, n_train=r0["n_train"], n_classes=r0["n_classes"], settings=where)
    verdicts = {f"noise_first_{a:g}": v for a, v in zip(noises, V["noise_first"])}
    verdicts.update(clean_ahead=V["clean_ahead"], paper=V["paper"])
    return fd.Findings("10_noise_first_images", verdicts,
                       {"runs": runs, "noises": noises, "p": r0["n_classes"], "data": r0["source"],
                        "epochs": r0["epochs"], "records": _used(rows)})


def _phases(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    """Chapter 12 on the shipped records of the ``phases`` group (they carry ``doshi`` numbers and,
    in the pruning cell, ``prune`` curves) at the profile's :data:`memgen.phases.PHASE_SIZES`."""
    grid_cfgs, prune_cfgs = ph.phase_configs(source)
    grid_recs = _pick(recs, [c.key() for c in grid_cfgs], "doshi")
    prune_recs = _pick(recs, [c.key() for c in prune_cfgs], "prune")
    if grid_recs is None or prune_recs is None:
        return None
    row = lambda c, r: {**c.to_dict(), **r["doshi"]}  # noqa: E731  (phase_record's fields)
    grid = [row(c, r) for c, r in zip(grid_cfgs, grid_recs)]
    prune_rows = [row(c, r) for c, r in zip(prune_cfgs, prune_recs)]
    prune = [r["prune"] for r in prune_recs]
    c0 = grid_cfgs[0]
    settings = (f"profile {source}; add mod P = {c0.p}, M = {c0.width}, x², MSE, AdamW lr {c0.lr:g}, {c0.steps} steps, "
                "labels corrupted over all P classes")
    verdicts = prior_work.judge_phases(grid, prune_rows, prune, settings=settings)
    return fd.Findings("12_grokking_phases", verdicts,
                       {"grid": grid, "p": c0.p, "short": f"add mod {c0.p}, M = {c0.width}, x², MSE, {c0.steps} steps",
                        "records": _used(grid_recs, prune_recs)})


def _progress(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
    """Chapter 13 on the shipped records of the ``progress`` group (each carries its ``measured``
    curves over the snapshots), at the chapter's defaults."""
    configs = pg.progress_configs(source)
    picked = _pick(recs, [c.key() for c in configs], "measured")
    if picked is None:
        return None
    entries = [{"config": c.to_dict(), "history": r["history"], **r["measured"]} for c, r in zip(configs, picked)]
    rows = [pg.progress_record(e) for e in entries]
    half = len(configs) // 2
    c0 = configs[0]
    settings = (f"profile {source}; {c0.task} mod P = {c0.p}, M = {c0.width}, {c0.activation}, {c0.loss}, "
                f"lr {c0.lr:g}, wd {c0.weight_decay:g}, {c0.steps} steps, {half} seeds")
    verdicts = prior_work.judge_progress(rows[:half], rows[half:], settings=settings)
    return fd.Findings("13_progress_measures", verdicts,
                       {"clean": entries[:half], "noisy": entries[half:], "p": c0.p, "noise": configs[-1].noise,
                        "short": f"{c0.task} mod {c0.p}, M = {c0.width}, {c0.steps} steps",
                        "records": _used(picked)})


class _Missing(Exception):
    """A chapter asked for a run that is not shipped (or lacks the numbers it reads)."""


def _diagnosed(chapter: Callable[..., fd.Findings], needs: str) -> Callable[..., fd.Findings | None]:
    """Chapters 14-16 on shipped records: the chapter's own function, its runs looked up among the
    records that carry ``needs`` (:func:`memgen.diagnostics.diagnostic_record`) instead of trained."""
    def judge(recs: Sequence[Record], source: str, task: str = "add") -> fd.Findings | None:
        used: list[Record] = []

        def rows(configs: list[RunConfig]) -> list[Record]:
            found = _pick(recs, [c.key() for c in dict.fromkeys(configs)], needs)
            if found is None:
                raise _Missing
            used.extend(found)
            return [dict(r) for r in found]

        try:
            F = chapter(source, task=task, shipped=rows)
        except _Missing:
            return None
        F.data.update(p=used[0]["p"], records=_used(used))
        return F

    return judge


#: chapter stem -> its judge on shipped records (None: the records it needs are not shipped)
JUDGES: dict[str, Callable[..., fd.Findings | None]] = {
    "02_scaling": _scaling,
    "03_noise_first": _noise_first,
    "04_hidden_rule": _hidden_rule,
    "05_frequency_filtration": _filtration,
    "06_partition": _partition,
    "07_misspecification": _misspecification,
    "09_transformer": _transformer,
    "10_noise_first_images": _images,
    "11_optimizers": _optimizers,
    "12_grokking_phases": _phases,
    "13_progress_measures": _progress,
    "14_topology": _diagnosed(dgb.topology, "h1_mean"),
    "15_heavy_tails": _diagnosed(dgb.heavy_tails, "pl_p_U"),
    "16_clustering": _diagnosed(dgb.clustering, "ncc_test_acc"),
}


#: Where a chapter's shipped section looks when its profile has nothing for it: the paper-scale
#: runs that one short GPU session produced (shorter training, fewer widths; the banner says so).
FALLBACK = {"paper": "paper20k"}


def resolve(chapter: str, source: str = "paper", task: str = "add",
            cache: dict[str, list[Record]] | None = None) -> tuple[str, fd.Findings | None]:
    """The shipped profile a chapter's section shows, and its findings there: ``source``, or when
    nothing at ``source`` matches the chapter, its :data:`FALLBACK` if that has the chapter's runs.

    Parameters
    ----------
    chapter : str
        The chapter's notebook stem.
    source : str, default="paper"
        The shipped profile asked for.
    task : str, default="add"
        The chapter's task.
    cache : dict or None, default=None
        Records already loaded, by profile (filled in as profiles are loaded).

    Returns
    -------
    tuple of (str, Findings or None)
        The profile shown and its findings (None: nothing shipped for the chapter at either).
    """
    cache = {} if cache is None else cache
    for src in dict.fromkeys([source, FALLBACK.get(source, source)]):
        if src not in cache:
            cache[src] = load(src)
        F = shipped_findings(chapter, src, task, cache[src])
        if F is not None:
            F.data["source"] = src
            return src, F
    return source, None


def shipped_findings(chapter: str, source: str = "paper", task: str = "add",
                     recs: Sequence[Record] | None = None) -> fd.Findings | None:
    """A chapter's verdicts judged on the shipped results of ``source``.

    Parameters
    ----------
    chapter : str
        The chapter's notebook stem, e.g. ``"05_frequency_filtration"``.
    source : str, default="paper"
        The shipped profile (``results/<source>/``).
    task : str, default="add"
        The task of the chapter (its variants use ``sub`` or ``mul``).
    recs : sequence of dict or None, default=None
        The records of ``source`` when already loaded (None: load them).

    Returns
    -------
    Findings or None
        None when the chapter has no judge on shipped results or its records are not shipped.
    """
    judge = JUDGES.get(chapter)
    if judge is None or not source:
        return None
    recs = load(source) if recs is None else recs
    return judge(recs, source, task=task)  # None when the records it needs are not shipped


# ---------------------------------------------------------------------------- headline figures
def _figure(F: fd.Findings, source: str) -> tuple[go.Figure, str]:
    """The headline figure of a chapter's shipped findings, and what its caption says to look at."""
    d, chapter = F.data, F.chapter
    chance = d.get("chance", 1 / d["p"])  # 1/P; chapters 4–6 give theirs (more for ×: fd.chance_level)
    if chapter == "02_scaling":
        fig = plots.seed_width_slider(d["grid"], {"train_acc": "train (noisy labels)", "test_acc": "test",
                                                  "noisy_acc": "noisy labels memorized",
                                                  "G_test_acc": "test, FF G part"},
                                      f"Accuracy against width ({source} results)", dash={"G_test_acc": "dash"})
        say = ("accuracy against width at each noise level (slider); the test curves against the chance line, and "
               "whether test accuracy grows with width while the noisy labels stay memorized")
    elif chapter == "03_noise_first":
        by_w = {}
        for r in d["runs"]:
            by_w.setdefault(f"M={r.config.width}", []).append(r)
        fig = plots.history_seed_slider(dict(sorted(by_w.items(), key=lambda kv: int(kv[0][2:]))),
                                        {"clean_acc": "clean subset", "noisy_acc": "noisy subset (memorized)",
                                         "test_acc": "test"}, f"Early training ({source} results)", log_x=True)
        say = "training accuracy of the noisy and the clean subsets over the first steps, per width (slider)"
    elif chapter == "04_hidden_rule":
        fig = plots.seed_lines(d["rows"], "noise", {"phase_error": "trained phases",
                                                    "phase_error_shuffled": "shuffled phases (chance)"},
                               f"Phase error against label noise ({source} results)", "noise α",
                               "mean phase error (rad)", dash={"phase_error_shuffled": "dot"})
        say = "the phase error of the trained neurons against its shuffled chance level, at each α"
    elif chapter == "05_frequency_filtration":
        fig = plots.seed_lines(d["curve"], "noise", {"test_acc": "full", "G_test_acc": "G", "R_test_acc": "R",
                                                     "vote_test_acc": "majority vote (labels only)"},
                               f"Test accuracy against label noise ({source} results)", "noise α", "test accuracy",
                               dash={"vote_test_acc": "dot"}, yaxis_range=[0, 1.05])
        say = "the G part against the raw network, the R part and the labels-only vote, as α grows"
    elif chapter == "06_partition":
        def curves(rows: Sequence[Record]) -> dict[str, np.ndarray]:
            arr = lambda k: np.array([r[k] for r in rows], dtype=float)  # noqa: E731
            return {"f<sup>G</sup> test (strength)": arr("strength_G_test"),
                    "f<sup>R</sup> memorized (strength)": arr("strength_R_noisy"),
                    "random subset test": arr("random_test" if "random_test" in rows[0] else "strength_random_test")}

        by_alpha, title, dash = d["by_alpha"], f"Partition curves ({source} results)", {"random subset test": "dot"}
        fr = lambda rows: np.asarray(rows[0]["fractions"])  # noqa: E731
        if len(by_alpha) == 1:
            fig = plots.seed_array_lines(fr(d["rows"]), curves(d["rows"]), title, "fraction of neurons kept",
                                         "accuracy", yrange=[0, 1.05], dash=dash)
        else:  # a slider over α, the profile's first
            fig = plots.slider_figure([(f"{a:g}", plots.seed_traces(fr(rows), curves(rows), dash=dash))
                                       for a, rows in by_alpha.items()], title, "α",
                                      xtitle="fraction of neurons kept", ytitle="accuracy")
            fig.update_yaxes(range=[0, 1.05])
        say = ("test accuracy of the top-strength neurons f^G against a random subset of the same size, and how "
               "many of the memorized noisy labels the remaining neurons f^R still fit, by the fraction kept "
               + (f"(α = {d['rows'][0]['noise']:g}, the profile's noise level, which this chapter judges)"
                  if len(by_alpha) == 1 else
                  f"(slider: α = {', '.join(f'{a:g}' for a in by_alpha)}; the first is the profile's noise level, "
                  "the verdicts at every other start with their α)"))
    elif chapter == "09_transformer":
        names = {"clean_acc": "clean train", "noisy_acc": "noisy train (memorized labels)", "test_acc": "test"}
        bars = {side_name: {label: [f[side][k] for f in d["ff"]] for k, label in names.items()}
                for side, side_name in (("before", "before FF"), ("after", f"after FF (top {d['n_keep']})"))}
        fig = plots.seed_bars(bars, f"Transformer before and after FF (α = {d['noise']:g}, {source} results)",
                              chance=chance)
        say = ("accuracy of the Transformer before filtration and after keeping only the strongest frequencies of "
               "its unembedding, on the clean and the memorized noisy training labels and on the test set "
               "(bars: mean over seeds, whiskers: range)")
    elif chapter == "10_noise_first_images":
        gap = {f"α = {a:g}": img.curves(d["runs"], a, "noisy_acc") - img.curves(d["runs"], a, "clean_acc")
               for a in d["noises"]}
        fig = plots.seed_array_lines(range(d["epochs"] + 1), gap,
                                     f"Noisy minus clean, per epoch ({source} results)<br><sup>{d['data']}</sup>",
                                     "epoch (= full-batch step)", "noisy − clean training accuracy",
                                     colors=dict(zip(gap, ("#2ca02c", "#9467bd"))))
        fig.add_hline(y=0, line_color="black", line_width=1)
        fig.update_yaxes(range=None, autorange=True)
        say = ("training accuracy on the noisy subset (against its wrong labels) minus the clean subset's, per "
               "epoch and α; above zero at epoch 1 is the paper's noise-first claim (whiskers: range over seeds)")
    elif chapter == "12_grokking_phases":
        fig = prior_work.phase_heatmap(d["grid"], "test_acc",
                                       f"Test accuracy ({source} results)<br><sup>{d['short']}; seed 0</sup>")
        say = ("test accuracy over weight decay (x) and label corruption (y), each cell labelled with its phase by the "
               "chapter's rule; a `*` marks a cell whose phase rests on a number at chance level (1/P), and the "
               "hover text says which")
    elif chapter == "13_progress_measures":
        fig = prior_work.progress_figure({"α = 0": d["clean"], f"α = {d['noise']:g}": d["noisy"]},
                                         f"Progress measures over training ({source} results)<br><sup>{d['short']}"
                                         "</sup>", d["p"])
        say = ("the restricted and excluded losses and the accuracies over training, for the clean and the noisy run "
               "(slider: the clean and the noisy run; mean over seeds, error bars from the lowest to the highest seed)")
    elif chapter in ("14_topology", "15_heavy_tails", "16_clustering"):
        w = d["width"]
        rows = [r for r in d["grid"] if r["width"] == w]
        series = {"14_topology": ({"h1_mean": "longest H1 bar per frequency (mean)",
                                   "shuffled_h1_mean_mean": "shuffled control"}, "H1 persistence"),
                  "15_heavy_tails": ({"hill_U": "Hill α of U", "hill_V": "Hill α of V", "hill_W": "Hill α of W"},
                                     "power-law exponent (Hill)"),
                  "16_clustering": ({"ncc_test_acc": "nearest class centre, test", "test_acc": "network output, test",
                                     "ncc_noisy_true_acc": "nearest class centre, noisy pairs' true labels"},
                                    "accuracy")}[chapter]
        fig = plots.seed_lines(rows, "noise", series[0], f"Against label noise at M = {w} ({source} results)",
                               "noise α", series[1], dash={k: "dot" for k in series[0] if k.startswith("shuffled")})
        say = {"14_topology": "the persistence of the token circles of each key frequency against its shuffled "
                              "control, at each α",
               "15_heavy_tails": "the heavy-tail exponent of each layer's spectrum at each α (smaller: heavier tail)",
               "16_clustering": "test accuracy of the nearest class centre in the hidden layer against the network's "
                                "output, and how often a mislabelled pair sits with its true class, at each α"
               }[chapter]
    elif chapter == "11_optimizers":
        bars = {label: {n: d["values"][n][k] for n in d["opts"]} for k, label in opt.METRICS.items()}
        fig = plots.seed_bars(bars, f"Four optimizers, one setting ({source} results)<br><sup>{d['short']}</sup>",
                              chance=chance, colors=dict(zip(opt.METRICS.values(), ("#7f7f7f", "#2ca02c", "#d62728"))))
        say = ("per optimizer, the raw network's test accuracy, the FF G part's and the noisy labels memorized "
               "(bars: mean over seeds, whiskers: range)")
    else:  # 07
        fig = plots.seed_grouped_lines(fd.with_g_part(d["rows"]), "width", "test_acc", "setting",
                                       f"Test accuracy of tied and untied models ({source} results)", "width M",
                                       "test accuracy", log_x=True)
        say = ("test accuracy against width for the untied model and the tied one under wrong and symmetric noise, "
               "and the test accuracy of frequency filtration's G part of the tied model under wrong noise")
    if chapter in ("02_scaling", "03_noise_first", "05_frequency_filtration", "06_partition", "07_misspecification",
                   "16_clustering"):  # the others plot no accuracy, a heat map, or draw their own chance line
        plots.add_chance(fig, chance)
    return fig, say


def section(chapter: str, source: str = "paper", task: str = "add") -> None:
    """Show a chapter's shipped-results section: where the numbers come from, then (when results
    at ``source`` are shipped) the chapter's headline figure and verdict box drawn from them.

    Parameters
    ----------
    chapter : str
        The chapter's notebook stem, e.g. ``"02_scaling"``.
    source : str, default="paper"
        The shipped profile to read (``results/<source>/``); the test build uses ``"test"``;
        ``""`` shows nothing.
    task : str, default="add"
        The chapter's task (variants: ``sub``, ``mul``).
    """
    if not source:
        return
    source, F = resolve(chapter, source, task)
    display(banner(source, F.data["records"] if F is not None else [], chapter,  # the chapter's runs
                   F.data.get("note", "") if F is not None else ""))
    if F is None:
        return
    fig, say = _figure(F, source)
    display(fig)
    display(Markdown(f"**Figure S.** Shipped `{source}` results: {say}."))
    if F.data.get("summary"):  # the chapter's shipped numbers in words
        display(Markdown(F.data["summary"]))
    display(report.verdict_box(*F, title=f"Verdict at the `{source}` scale (shipped results)"))


def book_shipped(source: str = "paper", variants: Sequence[dict[str, Any]] | None = None
                 ) -> dict[str, fd.Findings | None]:
    """Every chapter's (and variant's) verdicts on the shipped results of ``source``.

    Parameters
    ----------
    source : str, default="paper"
        The shipped profile.
    variants : list of dict or None, default=None
        Variant entries as in ``book/variants.yml``; None reads that file.

    Returns
    -------
    dict of str to Findings or None
        By document path relative to ``book/`` (as in :func:`memgen.book.findings.book_findings`);
        None where the chapter's records are not shipped or it has no judge on shipped results.
    """
    if variants is None:
        from .bookgen import load_variants

        variants = load_variants()
    cache: dict[str, list[Record]] = {}  # each profile loaded once for the whole book
    out: dict[str, fd.Findings | None] = {}
    for stem in fd.CHAPTERS:
        out[stem] = resolve(stem, source, cache=cache)[1]
        for v in variants:
            if v["notebook"].removesuffix(".ipynb") == stem:
                out[f"generated/{v['name']}"] = resolve(stem, source, v["parameters"].get("task", "add"), cache)[1]
    return out


def _differing_tail(here: str, there: str) -> str:
    """Claim ``there`` from the clause where it starts to differ from ``here``, "…" for the common
    start: the clause begins after the innermost bracket still open at the first difference, or
    after a later ", " inside it (a bracket closed by the end is dropped with it). ``there`` whole
    when no such clause exists or the two differ only after ``there`` ends."""
    n = 0
    while n < min(len(here), len(there)) and here[n] == there[n]:
        n += 1
    if n >= len(there) or "$" in there:  # nothing of its own to show, or math that must not be split
        return there
    opens, start = [], 0
    for i, ch in enumerate(there[:n]):
        if ch == "(":
            opens.append(i)
            start = i + 1
        elif ch == ")" and opens:
            opens.pop()
            start = 0 if not opens else opens[-1] + 1
        elif there.startswith(", ", i) and i + 2 <= n:
            start = i + 2
    if start <= 0:
        return there
    tail = there[start:]
    if opens and tail.endswith(")") and tail.count(")") > tail.count("("):
        tail = tail[:-1]
    return "…" + tail


#: this build's cell of a claim judged only on the shipped results (e.g. chapter 6 at α = 0.2)
SHIPPED_ONLY = "judged on the shipped results only"


def claims_table(entries: Sequence[tuple[str, str, fd.Findings]], shipped: dict[str, fd.Findings | None],
                 source: str = "paper") -> Markdown:
    """The introduction's table: one row per claim, with the verdict at the shipped scale and the
    verdict of this build side by side.

    Parameters
    ----------
    entries : list of (str, str, Findings)
        :func:`memgen.book.findings.book_findings` (this build).
    shipped : dict of str to Findings or None
        :func:`book_shipped` (the same claims judged on shipped results).
    source : str, default="paper"
        The shipped profile's name, for the column header.

    Returns
    -------
    Markdown
        A MyST table: chapter, claim (this build's wording), verdict at ``source`` scale with its
        key number, its settings in small print (or, without them, the profile it was read from)
        and, where its wording differs, the clause of the claim as judged there,
        verdict of this build with its key number and, in small print, its settings (four
        columns, so that the table fits a page's column). A claim judged only on the shipped
        results (a key this build's findings lack) has its own row, which says so.
    """
    def cell(v: Any) -> str:
        return f"{report.ICONS[v.verdict]} **{v.verdict}**" + (f"<br>{v.key}" if v.key else "")

    def row(*cells: str) -> dict[str, str]:
        return dict(zip(("chapter", "claim", "shipped", "build"), cells))

    body = []
    for doc, title, f in entries:
        sf = shipped.get(doc)
        via = "" if sf is None or sf.data.get("source", source) == source else f"<br>(`{sf.data['source']}`)"
        for k, v in f.verdicts.items():
            sv = None if sf is None else sf.verdicts.get(k)
            # the claim column is this build's wording; where the shipped one differs (e.g. its
            # widths), the shipped cell says what it judged
            there = ("" if sv is None or not sv.claim or sv.claim == v.claim
                     else f"<br>*judged there: {_differing_tail(v.claim, sv.claim)}*")
            small = f"<br><small>{sv.settings}</small>" if sv is not None and sv.settings else via
            body.append(row(f"[{title}]({doc})", v.claim, "not shipped" if sv is None else cell(sv) + small + there,
                            cell(v) + (f"<br><small>{v.settings}</small>" if v.settings else "")))
        for k, sv in ({} if sf is None else sf.verdicts).items():  # judged on the shipped results only
            if k not in f.verdicts:
                small = f"<br><small>{sv.settings}</small>" if sv.settings else via
                body.append(row(f"[{title}]({doc})", sv.claim, cell(sv) + small, SHIPPED_ONLY))
    # in a container the book's CSS (_ext/book_assets.py) turns into one card per claim on a phone
    return report.table(body, row("chapter", "claim", f"at the `{source}` scale (shipped)",
                                  "this build (its settings in small print)"), container="claims-table")
