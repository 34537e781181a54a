"""Per-chapter tables: how the noise modes corrupt a split, the filtration rules side by side,
which training subset is fitted first. Each reads runs trained through the run store."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..configs import NOISE_MODES
from ..experiments import Setup
from ..fourier import FF_VARIANTS, filtration_report
from ..tasks import make_dataset
from ..train import Run


def noise_mode_table(st: Setup) -> list[dict[str, Any]]:
    """How the three noise modes corrupt this setup's training set.

    Parameters
    ----------
    st : Setup
        The chapter's setup; its base config's dataset is built under each noise mode (nothing is
        trained; ``symmetric`` is left out for ``sub``).

    Returns
    -------
    list of dict
        One row per mode: ``mode``, ``corrupted`` (noisy labels), ``n_train``, ``accidentally
        correct`` (corrupted labels equal to the true one) and ``(a,b),(b,a) agree`` (the fraction
        of corrupted off-diagonal pairs whose training mirror has the same label; NaN when none).
    """
    rows = []
    for mode in NOISE_MODES:
        if mode == "symmetric" and st.base.task == "sub":
            continue
        d = make_dataset(st.config(noise_mode=mode))
        lab = dict(zip(d.train_idx.tolist(), d.train_labels.tolist()))
        bad = set(d.train_idx[d.noisy].tolist())
        p = d.p
        # corrupted off-diagonal pairs whose mirror (b, a) is also in the training set
        pairs = [(i, (i % p) * p + i // p) for i in bad if i % p != i // p]
        pairs = [(i, j) for i, j in pairs if j in lab]
        agree = np.mean([lab[i] == lab[j] for i, j in pairs]) if pairs else float("nan")
        rows.append({"mode": mode, "corrupted": int(d.noisy.sum()), "n_train": len(d.train_idx),
                     "accidentally correct": int((d.train_labels[d.noisy] == d.train_true[d.noisy]).sum()),
                     "(a,b),(b,a) agree": float(agree)})
    return rows


def first_step_reaching(run: Run, metric: str, level: float) -> float:
    """First recorded step at which ``metric`` reaches ``level`` (NaN if never).

    Parameters
    ----------
    run : Run
        A trained run with a recorded history.
    metric : str
        A key of ``run.history``, e.g. ``"noisy_acc"``.
    level : float
        The level to reach (``>=``).

    Returns
    -------
    float
        The step, or NaN when the metric never reaches the level.
    """
    for s, v in zip(run.history["step"], run.history[metric]):
        if v >= level:
            return float(s)
    return float("nan")


def ff_variants_table(run: Run) -> list[dict[str, Any]]:
    """The filtration rules of :data:`memgen.fourier.FF_VARIANTS` side by side.

    Parameters
    ----------
    run : Run
        A trained run, filtered under each rule.

    Returns
    -------
    list of dict
        One row per rule: ``rule``, the G part's test accuracy and noisy-label accuracy (against
        the memorised and the true labels) and the R part's test and noisy-label accuracy.
    """
    data = run.data
    rows = []
    for name, opts in FF_VARIANTS.items():
        rep = filtration_report(run.weights, data, **opts)
        rows.append({"rule": name, "G test": rep["G"]["test_acc"], "G noisy (memorised)": rep["G"]["noisy_acc"],
                     "G noisy (true label)": rep["G"]["noisy_true_acc"], "R test": rep["R"]["test_acc"],
                     "R noisy (memorised)": rep["R"]["noisy_acc"]})
    return rows


def memorization_order(runs: list[Run], levels: tuple[float, ...] = (0.5, 0.9)) -> list[dict[str, Any]]:
    """For each run, the first step at which the noisy and the clean training subsets reach each
    accuracy level, and whether the noisy subset got there first at the lowest level
    (``noisy_first`` is None when neither subset reached it).

    Parameters
    ----------
    runs : list of Run
        Trained runs with ``noisy_acc`` and ``clean_acc`` histories.
    levels : tuple of float, default=(0.5, 0.9)
        The accuracy levels; ``noisy_first`` is judged at the first one.

    Returns
    -------
    list of dict
        One row per run: ``width``, ``seed``, ``noisy <level>%`` and ``clean <level>%`` (e.g. ``noisy 50%``; steps, NaN
        when never reached) for each level, and ``noisy_first``.
    """
    rows = []
    for r in runs:
        row: dict[str, Any] = {"width": r.config.width, "seed": r.config.seed}
        for lv in levels:
            row[f"noisy {lv:.0%}"] = first_step_reaching(r, "noisy_acc", lv)
            row[f"clean {lv:.0%}"] = first_step_reaching(r, "clean_acc", lv)
        n, c = row[f"noisy {levels[0]:.0%}"], row[f"clean {levels[0]:.0%}"]
        # never reaching the level counts as reaching it at step infinity
        row["noisy_first"] = None if np.isnan(n) and np.isnan(c) else bool(np.nan_to_num(n, nan=np.inf)
                                                                               < np.nan_to_num(c, nan=np.inf))
        rows.append(row)
    return rows


def early_gradient_gap(run: Run, steps: int = 20) -> float:
    """Mean relative excess of the noisy over the clean per-sample gradient norm over the
    recorded steps 1..``steps`` ((noisy - clean) / clean; positive: noisy samples pull harder).

    Parameters
    ----------
    run : Run
        A trained run with ``grad_noisy`` and ``grad_clean`` histories.
    steps : int, default=20
        The last step included.

    Returns
    -------
    float
        The mean relative excess (NaN when no step in 1..``steps`` was recorded).
    """
    h = run.history
    idx = [i for i, s in enumerate(h["step"]) if 1 <= s <= steps]
    if not idx:
        return float("nan")
    gn, gc = np.array(h["grad_noisy"])[idx], np.array(h["grad_clean"])[idx]
    return float(np.mean((gn - gc) / gc))
