"""What chapters and the CLI call: validated chapter setups, run summaries and sweep tables.
Every number here comes from runs trained (or loaded) through the run store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .baselines import activation_swap
from .configs import ConfigError, Profile, RunConfig, get_profile, validate_noise, validate_width
from .fourier import filtration, parts_report, phase_error
from .metrics import METRICS, test_accuracy_without_zero
from .store import sweep, train_or_load
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
    """
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
    return Setup(prof, base, tuple(widths or prof.widths), tuple(noises if noises is not None else prof.noises),
                 tuple(seeds or prof.seeds))


def summarize(run: Run) -> dict[str, Any]:
    """Every metric of one run: final raw accuracies, FF under the default rule, the
    activation swap (test accuracy per activation) and the phase error."""
    data = run.data
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
