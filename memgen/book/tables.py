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
    """How the three noise modes corrupt this setup's training set."""
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
    """First recorded step at which ``metric`` reaches ``level`` (NaN if never)."""
    for s, v in zip(run.history["step"], run.history[metric]):
        if v >= level:
            return float(s)
    return float("nan")


def ff_variants_table(run: Run) -> list[dict[str, Any]]:
    """The filtration rules of :data:`memgen.fourier.FF_VARIANTS` side by side."""
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
    (``noisy_first`` is None when neither subset reached it)."""
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
    recorded steps 1..``steps`` ((noisy - clean) / clean; positive: noisy samples pull harder)."""
    h = run.history
    idx = [i for i, s in enumerate(h["step"]) if 1 <= s <= steps]
    gn, gc = np.array(h["grad_noisy"])[idx], np.array(h["grad_clean"])[idx]
    return float(np.mean((gn - gc) / gc))
