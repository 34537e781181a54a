"""What chapters, the CLI and the explorer call: validated chapter setups, run summaries and
sweep tables. Every number here comes from runs trained (or loaded) through the run store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .configs import ConfigError, Profile, RunConfig, get_profile, validate_noise, validate_width
from .fourier import activation_swap, filtration, filtration_report, parts_report, phase_error
from .metrics import METRICS, test_accuracy_without_zero
from .store import sweep, train_or_load
from .tasks import make_dataset
from .train import Run


@dataclass(frozen=True)
class Setup:
    """A chapter's validated parameters: one base config plus the grids it sweeps."""

    profile: Profile
    base: RunConfig
    widths: tuple[int, ...]
    noises: tuple[float, ...]
    seeds: tuple[int, ...]

    def config(self, **changes: Any) -> RunConfig:
        """The base config with some fields changed (validated)."""
        return self.base.replace(**changes)

    def grid(self, widths: tuple[int, ...] | None = None, noises: tuple[float, ...] | None = None,
             seeds: tuple[int, ...] | None = None, **changes: Any) -> list[RunConfig]:
        """Configs over widths x noises x seeds (defaults: the setup's grids)."""
        return [self.config(width=w, noise=a, seed=s, **changes)
                for w in (widths or self.widths) for a in (noises if noises is not None else self.noises)
                for s in (seeds or self.seeds)]


def setup(profile: str = "book", *, widths: list[int] | None = None,
          noises: list[float] | None = None, seeds: list[int] | None = None,
          **params: Any) -> Setup:
    """Validate a chapter's parameters and return its :class:`Setup`.

    ``params`` are RunConfig fields (task, p, noise, width, activation, steps, ...); ``None``
    means the profile default. Raises :class:`ConfigError` naming the first bad parameter.
    Also switches plotly to the book renderer, so figures appear in the built book.
    """
    from .plots import use_book_renderer

    prof = get_profile(profile)
    base = prof.config(**params)
    if widths is not None:
        for w in widths:
            validate_width(w)
    if noises is not None:
        noises = [validate_noise(a) for a in noises]
        for a in noises:
            base.replace(noise=a)  # the noisy count must fit this split too
    if seeds is not None and any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seeds={seeds!r} is not allowed; use non-negative integers")
    use_book_renderer()
    return Setup(prof, base, tuple(widths or prof.widths), tuple(noises if noises is not None else prof.noises),
                 tuple(seeds or prof.seeds))


def summarize(run: Run) -> dict[str, Any]:
    """Every metric of one run: final raw accuracies, FF under the default rule, the
    activation swap (test accuracy per activation) and the phase error."""
    data = make_dataset(run.config)
    out: dict[str, Any] = {"config": run.config.to_dict(), "key": run.config.key()}
    out.update({k: run.final(k) for k in METRICS})
    G, R = filtration(run.weights, run.config.task)
    out["ff"] = parts_report({"full": run.weights, "G": G, "R": R}, data)
    out["act_swap"] = {a: m["test_acc"] for a, m in activation_swap(run.weights, data).items()}
    out["phase_error"] = phase_error(run.weights, run.config.task)["mean"]
    if run.config.task == "mul":
        out["test_acc_nonzero"] = test_accuracy_without_zero(run.weights.predict(), data)
        out["ff"]["G"]["test_acc_nonzero"] = test_accuracy_without_zero(G.predict(), data)
    return out


def table(configs: list[RunConfig], *, progress: bool | None = None) -> list[dict[str, Any]]:
    """Train or load ``configs`` (batched) and return one flat record per run:
    the config fields, raw metrics, ``G_*``/``R_*`` filtration metrics and ``phase_error``."""
    rows = []
    for run in sweep(configs, progress=progress):
        s = summarize(run)
        row = {**s["config"], **{k: s[k] for k in METRICS}, "phase_error": s["phase_error"]}
        for part in ("G", "R"):
            row.update({f"{part}_{k}": v for k, v in s["ff"][part].items()})
        rows.append(row)
    return rows


def run(config: RunConfig, *, progress: bool | None = None) -> Run:
    """Train or load one run (through the store)."""
    return train_or_load(config, progress=progress)


def column(rows: list[dict[str, Any]], key: str, **where: Any) -> np.ndarray:
    """Values of ``key`` in the rows matching ``where`` (in row order)."""
    return np.array([r[key] for r in rows if all(r[k] == v for k, v in where.items())])


def noise_mode_table(st: Setup) -> list[dict[str, Any]]:
    """How the three noise modes corrupt this setup's training set."""
    from .configs import NOISE_MODES

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
    from .fourier import FF_VARIANTS

    data = make_dataset(run.config)
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
        row: dict[str, Any] = {"width": r.config.width}
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
