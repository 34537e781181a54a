"""Chapter 11's findings: AdamW, Adam, Muon and SGD trained on one setting, judged by the one rule
of :mod:`memgen.verdicts`.

:func:`optimizers` trains (or loads, through the run store) every optimizer over the seeds and
returns :class:`~memgen.book.findings.Findings` with the chapter's verdicts and the per-seed
numbers its figures and tables draw. A seed whose loss diverges is kept (``failed``) and counts as
NaN in the accuracies and as "never memorized" in the time to memorize.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import experiments
from ..optimizers import SIZE, optimizer_settings
from ..store import sweep
from ..tasks import chance_level
from ..verdicts import above_chance, combine, compare, fmt_seeds, judge_at_least, seed_range
from . import tables
from .findings import Findings, settings_text

#: Accuracy on the noisy labels that counts as memorized for the time to memorize.
MEMORIZED = 0.9
#: Verdict keys: optimizer memorizes and its G part beats the raw network, SGD slower than AdamW.
KEYS = {"adamw": "AdamW", "adam": "Adam", "muon": "Muon", "sgd_slower": "SGD",
        "sgd_same_lr_slower": "SGD at AdamW's lr"}
#: Metrics compared in the chapter's headline figure.
METRICS = {"test_acc": "raw network, test", "G_test_acc": "FF G part, test",
           "noisy_acc": "noisy labels memorized"}


def optimizers(profile: str = "book", *, progress: bool | None = False, task: str = "add",
               noise: float = 0.4, width: int | None = None, steps: int | None = None,
               seeds: Sequence[int] | None = None,
               lrs: Mapping[str, float] | None = None) -> Findings:
    """Chapter 11: the optimizers side by side on one setting, and their verdicts.

    Parameters
    ----------
    profile : {"test", "book", "paper"}, default="book"
        The profile whose defaults are used.
    progress : bool or None, default=False
        Progress bar while training.
    task : str, default="add"
        The task.
    noise : float, default=0.4
        α, the same for every optimizer.
    width, steps : int or None, default=None
        None: :data:`SIZE` of the profile (book: 129 and 600).
    seeds : sequence of int or None, default=None
        None: 0, 1, 2.
    lrs : mapping or None, default=None
        {optimizer: lr} overriding the defaults of :func:`optimizer_settings`.

    Returns
    -------
    Findings
        Verdicts ``adamw``, ``adam``, ``muon`` (memorizes the noisy labels and its G part beats
        the raw network), ``sgd_slower`` and ``sgd_same_lr_slower`` (slower to memorize than
        AdamW). Data: ``opts`` (name: optimizer settings), ``configs`` and ``runs`` (name: one
        per seed), ``values`` (name: {metric: per-seed array, NaN where diverged} for the keys
        of :data:`METRICS`), ``t90`` (name: steps to :data:`MEMORIZED` on the noisy labels per
        seed, the run length when never, NaN where it diverged), ``diverged`` (name: count), ``p``,
        ``chance`` (the level the G part must beat), ``steps``, ``n_test``, ``n_noisy``, ``short``
        and ``settings`` (one-line descriptions).
    """
    w0, s0 = SIZE.get(profile, SIZE["book"])
    S = experiments.setup(profile, task=task, noise=noise, width=width or w0, steps=steps or s0,
                          seeds=list(seeds) if seeds else [0, 1, 2])
    base = S.base
    opts = optimizer_settings(base.lr, base.weight_decay, lrs)
    configs = {name: [S.config(seed=s, **kw) for s in S.seeds] for name, kw in opts.items()}
    flat = [c for cs in configs.values() for c in cs]
    trained = dict(zip(flat, sweep(flat, progress=progress, allow_failures=True)))
    runs = {name: [trained[c] for c in cs] for name, cs in configs.items()}
    done = [c for c in dict.fromkeys(flat) if not trained[c].failed]
    row_of = dict(zip(done, experiments.table(done)))  # loads the runs just stored
    P, n_test, n_noisy, n_steps = base.p, base.p**2 - base.n_train, base.n_noisy, base.steps

    def per_seed(name: str, key: str) -> np.ndarray:
        return np.array([row_of[c][key] if c in row_of else np.nan for c in configs[name]], dtype=float)

    def to_memorize(name: str) -> np.ndarray:
        return np.array([np.nan if r.failed else tables.first_step_reaching(r, "noisy_acc", MEMORIZED)
                         for r in runs[name]], dtype=float)

    values = {n: {k: per_seed(n, k) for k in METRICS} for n in opts}
    short = f"{task}, P = {P}, M = {base.width}, α = {noise:g}, {n_steps} steps"
    settings = settings_text([dataclasses.asdict(c) for c in flat], profile, optimizers=describe(opts))
    verdicts, t90 = judge_optimizers(values, {n: to_memorize(n) for n in opts}, p=P, n_test=n_test,
                                     n_noisy=n_noisy, steps=n_steps, settings=settings,
                                     chance=chance_level(task, P))
    data = {"opts": opts, "configs": configs, "runs": runs, "values": values, "t90": t90,
            "diverged": {n: sum(bool(r.failed) for r in runs[n]) for n in opts},
            "p": P, "chance": chance_level(task, P), "steps": n_steps, "n_test": n_test, "n_noisy": n_noisy,
            "short": short, "settings": settings}
    return Findings("11_optimizers", verdicts, data, S)


def describe(opts: Mapping[str, Mapping[str, Any]]) -> str:
    """The optimizers with their learning rates and weight decays, for a settings line.

    Parameters
    ----------
    opts : mapping of str to mapping
        :func:`memgen.optimizers.optimizer_settings`' result.

    Returns
    -------
    str
        E.g. ``AdamW (lr 0.001, wd 0.1), ..., SGD (lr 3, wd 3.3e-05), ...``.
    """
    return ", ".join(f"{name} (lr {kw['lr']:g}, wd {kw['weight_decay']:.2g})" for name, kw in opts.items())


def judge_optimizers(values: Mapping[str, Mapping[str, np.ndarray]], reached: Mapping[str, np.ndarray], *,
                     p: int, n_test: int, n_noisy: int, steps: int, settings: str,
                     chance: float | None = None) -> tuple[dict, dict]:
    """Chapter 11's verdicts from per-seed numbers (trained runs or shipped records alike).

    Parameters
    ----------
    values : mapping
        Optimizer name: {metric of :data:`METRICS`: per-seed array, NaN where a run diverged}.
    reached : mapping
        Optimizer name: per-seed first step at :data:`MEMORIZED` on the noisy labels (NaN: never,
        or diverged).
    p, n_test, n_noisy, steps : int
        Modulus, test and noisy-label counts, run length.
    settings : str
        One line naming the setting (in every verdict).
    chance : float or None, default=None
        The level the G part must beat (None: 1/P; :func:`memgen.tasks.chance_level`
        for ``mul``).

    Returns
    -------
    verdicts : dict of str to Verdict
        Keyed as :data:`KEYS`.
    t90 : dict of str to numpy.ndarray
        Steps to memorize per seed, the run length where never reached, NaN where the run diverged.
    """
    # never reached counts as the run length; a diverged seed (NaN accuracies) stays NaN and is left out
    t90 = {n: np.where(np.isnan(t) & np.isfinite(values[n]["noisy_acc"]), steps, t) for n, t in reached.items()}
    verdicts = {}
    for key, name in list(KEYS.items())[:3]:
        g, raw, mem = values[name]["G_test_acc"], values[name]["test_acc"], values[name]["noisy_acc"]
        verdicts[key] = combine(
            f"{name}: memorizes the noisy labels, and its G part beats the raw network",
            [judge_at_least("memorizes", mem, n_noisy, MEMORIZED, name="noisy-label accuracy",
                            settings=settings),
             compare("G beats raw", g, raw, a_name="G test", b_name="raw test", n=n_test,
                     floor=(g, n_test, 1 / p if chance is None else chance), settings=settings)])
    for key, name in list(KEYS.items())[3:]:
        verdicts[key] = compare(
            f"{name} is slower to memorize than AdamW (steps to 90% on the noisy labels)",
            t90[name], t90["AdamW"], a_name=f"{name} steps", b_name="AdamW steps", digits=0,
            settings=settings + f"; never counts as {steps}")
    return verdicts, t90


def failures(F: Findings) -> list[str]:
    """Where each optimizer of :func:`optimizers` fails, one markdown bullet per optimizer.

    A seed whose loss diverged, a run that never memorizes, a G part not above chance in some
    seed (95% interval), and which of the optimizers that memorize is the slowest (named only when
    its mean steps to memorize exceed the next one's by more than either one's range over seeds).

    Parameters
    ----------
    F : Findings
        The findings of :func:`optimizers` (or of the shipped records), read from ``F.data``.

    Returns
    -------
    list of str
        One markdown bullet per optimizer, in the order of ``F.data["opts"]``.
    """
    d = F.data
    n_steps, n_test = d["steps"], d["n_test"]
    live = {n: _live(d, n) for n in d["opts"]}  # a diverged seed is said once, as diverged
    fit = [n for n in d["opts"] if live[n].any() and (d["t90"][n][live[n]] < n_steps).all()]
    mean_t = {n: np.mean(d["t90"][n][live[n]]) for n in fit}
    slowest = None
    if len(fit) > 1:  # named only when slower than the next beyond both one's ranges over seeds
        last, second = sorted(fit, key=mean_t.get)[-2:][::-1]
        spread = max(seed_range(d["t90"][n][live[n]]) for n in (last, second))
        slowest = last if mean_t[last] - mean_t[second] > spread else None
    lines = []
    for n in d["opts"]:
        t, g = d["t90"][n][live[n]], d["values"][n]["G_test_acc"][live[n]]
        bad = []
        if d["diverged"][n]:
            bad.append(f"{d['diverged'][n]} of {len(d['runs'][n])} seeds diverged")
        if (t >= n_steps).any():
            bad.append(f"never reaches 90% on the noisy labels in {n_steps} steps "
                       f"({int((t >= n_steps).sum())} of {len(t)} seeds)")
        if len(g) and not all(above_chance(x, n_test, d.get("chance", 1 / d["p"])) for x in g):
            bad.append(f"its G part is not above chance in every seed (G test {fmt_seeds(g)})")
        ok = f"no failure here: memorizes in {fmt_seeds(t, 0)} steps, G test {fmt_seeds(g)}"
        if n == slowest:
            ok += "; the slowest of those that memorize"
        lines.append(f"- **{n}**: " + ("; ".join(bad) if bad else ok))
    return lines


def summary_rows(F: Findings) -> list[dict[str, Any]]:
    """What the build measured, one row per optimizer: settings, accuracies, time, divergences.

    Parameters
    ----------
    F : Findings
        The findings of :func:`optimizers` (or of the shipped records), read from ``F.data``.

    Returns
    -------
    list of dict
        One row per optimizer: ``optimizer``, ``lr``, ``wd``, ``raw test``, ``G test``, ``noisy
        memorized`` and ``steps to 90%`` (the mean and range over seeds, as text) and ``diverged``
        (the number of seeds).
    """
    d = F.data
    rows = []
    for n, kw in d["opts"].items():
        live = _live(d, n)  # the seeds that did not diverge ("–" when none)
        rows.append({"optimizer": n, "lr": f"{kw['lr']:g}", "wd": f"{kw['weight_decay']:.3g}",
                     "raw test": fmt_seeds(d["values"][n]["test_acc"][live]),
                     "G test": fmt_seeds(d["values"][n]["G_test_acc"][live]),
                     "noisy memorized": fmt_seeds(d["values"][n]["noisy_acc"][live]),
                     "steps to 90%": fmt_seeds(d["t90"][n][live], 0), "diverged": d["diverged"][n]})
    return rows


def _live(d: Mapping[str, Any], name: str) -> np.ndarray:
    """Which seeds of optimizer ``name`` did not diverge (their accuracies are numbers, not NaN)."""
    return np.isfinite(np.asarray(d["values"][name]["noisy_acc"], dtype=float))
