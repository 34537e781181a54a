"""TF32 fidelity: do TF32 runs reach the same results as fp32 runs, within the spread over seeds?

Trains (or loads from the run store) every (width, noise, seed) of a profile twice, with
``precision="fp32"`` and with ``precision="tf32"`` (:attr:`memgen.configs.RunConfig.precision`:
TF32 matrix products on CUDA, no effect on the CPU), through the store's batched sweep. For each
(width, noise) and each metric it compares the two precisions:

``test_acc``
    raw test accuracy of the trained network (as recorded at the last step, in the run's precision);
``G_test_acc``
    test accuracy of its frequency-filtered G part (FF-G; evaluated after training, in fp32 on the CPU);
``noisy_acc``
    accuracy on the corrupted training labels (memorization; last step, in the run's precision).

The numbers are those of :func:`memgen.experiments.table` (:func:`memgen.experiments.summarize`
of each run); nothing is recomputed here.

Rule: with ``spread = max - min`` of a metric over the seeds (at least 3 seeds), TF32 *agrees*
with fp32 on a (width, noise, metric) when

    |mean_tf32 - mean_fp32| <= max(spread_fp32, spread_tf32, 1/P)

(1/P is a floor, so that cells where every seed lands on the same value, e.g. all at 100%, are
not flagged for a negligible difference). A metric that is undefined for every run of a cell in
both precisions (``noisy_acc`` at noise 0) is not compared; one that is missing for some runs
only (a run diverged) counts as a difference. The verdict: TF32 may be the default on the card
only if it agrees on every comparison; otherwise fp32 stays the default.

On ``--device cpu`` TF32 has no effect, so the two precisions compute the same numbers: the
comparison is then a self-check of this script. The store does not record which card trained a
run, so compare cards in separate ``--store`` folders; TF32 runs stored from a CPU run are refused
for a ``--device cuda`` comparison.

    python benchmarks/fidelity_tf32.py [--profile paper] [--device cuda|cpu] [--widths 513 2049]
        [--noises 0.2 0.8] [--seeds 0 1 2] [--steps N] [--store DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

METRICS = ("test_acc", "G_test_acc", "noisy_acc")
PRECISIONS = ("fp32", "tf32")
MIN_SEEDS = 3
RULE = "agree when |mean_tf32 - mean_fp32| <= max(spread_fp32, spread_tf32, 1/P), spread = max - min over seeds"


class FidelityError(ValueError):
    """The comparison cannot be made (too few seeds, seeds that differ between precisions)."""


def check_seeds(seeds: Iterable[int]) -> None:
    """Refuse fewer than :data:`MIN_SEEDS` distinct seeds, naming ``--seeds``.

    Parameters
    ----------
    seeds : iterable of int
        The seeds.

    Raises
    ------
    FidelityError
        When there are fewer than 3 distinct seeds.
    """
    distinct = sorted(set(seeds))
    if len(distinct) < MIN_SEEDS:
        got = " ".join(map(str, distinct)) or "none"
        raise FidelityError(f"--seeds needs at least {MIN_SEEDS} distinct seeds (got {len(distinct)}: {got}): "
                            "the rule compares the difference of means with the spread over seeds")


def _mean_spread(values: list[float]) -> tuple[float, float]:
    return sum(values) / len(values), max(values) - min(values)


def compare(measurements: list[dict[str, Any]], p: int, card: str = "this device") -> dict[str, Any]:
    """Compare fp32 and TF32 per (width, noise, metric) and give the verdict (no training).

    Parameters
    ----------
    measurements : list of dict
        One per run: ``width``, ``noise``, ``seed``, ``precision`` ("fp32" or "tf32") and the
        :data:`METRICS` (NaN where undefined or the run failed).
    p : int
        The modulus (1/P is the rule's floor).
    card : str, default="this device"
        The device named in the verdict.

    Returns
    -------
    dict
        ``rows`` (per width, noise, metric: ``fp32_mean``, ``fp32_spread``, ``tf32_mean``,
        ``tf32_spread``, ``diff``, ``tolerance``, ``agree``: True, False or None when not
        compared, ``note``), ``n`` (comparisons made), ``differ`` (how many disagree), ``agree``
        (all agree), ``rule`` and ``verdict`` (one line).

    Raises
    ------
    FidelityError
        When a (width, noise) has fewer than 3 seeds in a precision, or the two precisions have
        different seeds, or a precision is missing.
    """
    cells: dict[tuple, dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: {q: {} for q in PRECISIONS})
    for m in measurements:
        if m["precision"] not in PRECISIONS:
            raise FidelityError(f"precision={m['precision']!r} is not one of {', '.join(PRECISIONS)}")
        cells[(m["width"], float(m["noise"]))][m["precision"]][m["seed"]] = m
    floor = 1.0 / p
    rows, differ = [], []
    for (width, noise), by_prec in sorted(cells.items()):
        for q in PRECISIONS:
            check_seeds(by_prec[q])
        if set(by_prec["fp32"]) != set(by_prec["tf32"]):
            raise FidelityError(f"M={width} noise={noise:g}: fp32 seeds {sorted(by_prec['fp32'])} and tf32 seeds "
                                f"{sorted(by_prec['tf32'])} differ; --seeds must be the same for both")
        seeds = sorted(by_prec["fp32"])
        for metric in METRICS:
            vals = {q: [float(by_prec[q][s][metric]) for s in seeds] for q in PRECISIONS}
            row: dict[str, Any] = {"width": width, "noise": noise, "metric": metric, "seeds": seeds,
                                   "fp32": vals["fp32"], "tf32": vals["tf32"]}
            finite = {q: [v for v in vals[q] if math.isfinite(v)] for q in PRECISIONS}
            if not finite["fp32"] and not finite["tf32"]:
                row.update(fp32_mean=math.nan, fp32_spread=math.nan, tf32_mean=math.nan, tf32_spread=math.nan,
                           diff=math.nan, tolerance=math.nan, agree=None, note="undefined for every run: not compared")
                rows.append(row)
                continue
            if len(finite["fp32"]) < len(seeds) or len(finite["tf32"]) < len(seeds):
                missing = {q: [s for s, v in zip(seeds, vals[q]) if not math.isfinite(v)] for q in PRECISIONS}
                stats = {f"{q}_{k}": v for q in PRECISIONS
                         for k, v in zip(("mean", "spread"), _mean_spread(finite[q]) if finite[q] else (math.nan,) * 2)}
                row.update(stats, diff=math.nan, tolerance=math.nan, agree=False,
                           note=f"missing (failed runs): fp32 seeds {missing['fp32']}, tf32 seeds {missing['tf32']}")
            else:
                m32, s32 = _mean_spread(vals["fp32"])
                mtf, stf = _mean_spread(vals["tf32"])
                tol = max(s32, stf, floor)
                diff = abs(mtf - m32)
                row.update(fp32_mean=m32, fp32_spread=s32, tf32_mean=mtf, tf32_spread=stf, diff=diff,
                           tolerance=tol, agree=diff <= tol, note="")
            rows.append(row)
            if not row["agree"]:
                differ.append(f"M={width} noise={noise:g} {metric}")
    n = sum(r["agree"] is not None for r in rows)
    if n == 0:
        raise FidelityError("no metric could be compared (every value undefined)")
    if differ:
        verdict = (f"TF32 differs on {len(differ)} of {n} comparisons ({'; '.join(differ)}): "
                   "keep fp32 the default")
    else:
        verdict = (f"TF32 agrees with fp32 within the spread over seeds on all {n} comparisons: "
                   f"it may be the default on {card}")
    return {"rows": rows, "n": n, "differ": len(differ), "agree": not differ, "rule": RULE, "verdict": verdict}


def format_rows(result: dict[str, Any]) -> list[str]:
    """The comparison as text table lines (header first).

    Parameters
    ----------
    result : dict
        What :func:`compare` returns.

    Returns
    -------
    list of str
        One line per row.
    """
    def ms(mean: float, spread: float) -> str:
        return "n/a" if math.isnan(mean) else f"{mean:.4f} ± {spread:.4f}"

    lines = [f"{'M':>5} {'noise':>5} {'metric':>10} {'fp32 mean ± spread':>19} {'tf32 mean ± spread':>19} "
             f"{'|diff|':>7} {'tol':>7}  agree"]
    for r in result["rows"]:
        diff = "n/a" if math.isnan(r["diff"]) else f"{r['diff']:.4f}"
        tol = "n/a" if math.isnan(r["tolerance"]) else f"{r['tolerance']:.4f}"
        agree = {True: "yes", False: "NO", None: "-"}[r["agree"]]
        note = f"  ({r['note']})" if r["note"] else ""
        lines.append(f"{r['width']:>5} {r['noise']:>5g} {r['metric']:>10} {ms(r['fp32_mean'], r['fp32_spread']):>19} "
                     f"{ms(r['tf32_mean'], r['tf32_spread']):>19} {diff:>7} {tol:>7}  {agree}{note}")
    return lines


def measure(run) -> dict[str, float]:
    """The compared metrics of one run, as :func:`memgen.experiments.table` reports them.

    Parameters
    ----------
    run : memgen.train.Run
        A run from the store (a failed one gives NaN).

    Returns
    -------
    dict
        Each of :data:`METRICS` to its value.
    """
    if run.failed or run.weights is None:
        return {k: math.nan for k in METRICS}
    from memgen.experiments import summarize

    s = summarize(run)
    return {"test_acc": s["test_acc"], "noisy_acc": s["noisy_acc"], "G_test_acc": s["ff"]["G"]["test_acc"]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper", choices=("test", "book", "paper"))
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--widths", type=int, nargs="+", default=[513, 2049])
    ap.add_argument("--noises", type=float, nargs="+", default=[0.2, 0.8])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help=f"at least {MIN_SEEDS}")
    ap.add_argument("--steps", type=int, default=None, help="default: the profile's")
    ap.add_argument("--store", default=None, help="run store folder (default: the default store, $MEMGEN_STORE)")
    ap.add_argument("--json", action="store_true", help="print the rows and the verdict as JSON")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    name = "fidelity_tf32.py"
    try:
        check_seeds(ns.seeds)
    except FidelityError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2

    import torch

    from memgen.configs import ConfigError, get_profile
    from memgen.metrics import json_safe
    from memgen.store import RunStore
    from memgen.train import resolve_device

    if ns.device == "cuda" and not torch.cuda.is_available():
        print(f"{name}: error: --device cuda but no CUDA device is available (--device cpu runs the self-check)",
              file=sys.stderr)
        return 2
    dev = resolve_device(ns.device)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    judged = card if dev.type == "cuda" else "the CPU (a self-check: TF32 has no effect there)"
    prof = get_profile(ns.profile)
    seeds = sorted(set(ns.seeds))
    try:
        configs = [prof.config(width=w, noise=a, seed=s, steps=ns.steps, precision=q, device=ns.device)
                   for q in PRECISIONS for w in ns.widths for a in ns.noises for s in seeds]
    except ConfigError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    c0 = configs[0]
    store = RunStore(ns.store)
    out = sys.stderr if ns.json else sys.stdout
    header = [f"device {card}, torch {torch.__version__}, profile {prof.name} (P = {c0.p}, {c0.steps} steps, "
              f"{c0.optimizer} lr {c0.lr:g} wd {c0.weight_decay:g}), seeds {' '.join(map(str, seeds))}, "
              f"store {store.root}"]
    if dev.type == "cpu":
        header.append("TF32 has no effect on the CPU: fp32 and tf32 compute the same numbers, so this is a self-check")
    for line in header:
        print(line, file=out, flush=True)

    runs = store.sweep(configs, allow_failures=True)
    if dev.type == "cuda":
        off_gpu = [r for r in runs if r.config.precision == "tf32"
                   and not str(r.meta.get("device", "")).startswith("cuda")]
        if off_gpu:
            r = off_gpu[0]
            print(f"{name}: error: {len(off_gpu)} tf32 run(s) in {store.root} were trained on "
                  f"{r.meta.get('device', 'an unrecorded device')}, where TF32 has no effect "
                  f"(e.g. {r.config.label()}); use another --store", file=sys.stderr)
            return 2
    measurements = [{"width": r.config.width, "noise": r.config.noise, "seed": r.config.seed,
                     "precision": r.config.precision, **measure(r)} for r in runs]
    result = compare(measurements, c0.p, judged)
    if ns.json:
        print(json.dumps(json_safe({"device": card, "torch": torch.__version__, "profile": prof.name, "p": c0.p,
                                    "steps": c0.steps, "store": str(store.root), **result}), indent=1))
    else:
        print(f"rule: {RULE}, 1/P = {1 / c0.p:.4f}")
        for line in format_rows(result):
            print(line)
        print(result["verdict"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
