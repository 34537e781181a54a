"""What chapters and the CLI call: validated chapter setups, run summaries and sweep tables.
Every number here comes from runs trained (or loaded) through the run store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .baselines import activation_swap
from .configs import ConfigError, Profile, RunConfig, get_profile, validate_noise
from .fourier import filtration, parts_report, phase_error
from .metrics import METRICS, test_accuracy_without_zero
from .store import sweep, train_or_load
from .train import Run


@dataclass(frozen=True)
class Setup:
    """A chapter's validated parameters: one base config plus the grids it sweeps.

    Parameters
    ----------
    profile : Profile
        The profile the chapter runs under.
    base : RunConfig
        The chapter's single-run config.
    widths : tuple of int
        The widths it sweeps.
    noises : tuple of float
        The noise levels it sweeps.
    seeds : tuple of int
        The seeds it sweeps.
    """

    profile: Profile
    base: RunConfig
    widths: tuple[int, ...]
    noises: tuple[float, ...]
    seeds: tuple[int, ...]

    def config(self, **changes: Any) -> RunConfig:
        """The base config with some fields changed (validated).

        Parameters
        ----------
        **changes : Any
            RunConfig fields and their new values.

        Returns
        -------
        RunConfig
            The changed config.
        """
        return self.base.replace(**changes)

    def grid(self, widths: tuple[int, ...] | None = None, noises: tuple[float, ...] | None = None,
             seeds: tuple[int, ...] | None = None, **changes: Any) -> list[RunConfig]:
        """Configs over widths x noises x seeds (defaults: the setup's grids).

        Parameters
        ----------
        widths : tuple of int or None, default=None
            Widths; None uses the setup's (an empty grid is an error).
        noises : tuple of float or None, default=None
            Noise levels; None uses the setup's.
        seeds : tuple of int or None, default=None
            Seeds; None uses the setup's (an empty grid is an error).
        **changes : Any
            Further RunConfig fields, the same for every config.

        Returns
        -------
        list of RunConfig
            Width-major, then noise, then seed.
        """
        grids = {"widths": self.widths if widths is None else widths,
                 "noises": self.noises if noises is None else noises,
                 "seeds": self.seeds if seeds is None else seeds}
        for name, values in grids.items():
            if len(values) == 0:
                raise ConfigError(f"{name}=[] is not allowed; give at least one value (None: the setup's own)")
        return [self.config(width=w, noise=a, seed=s, **changes)
                for w in grids["widths"] for a in grids["noises"] for s in grids["seeds"]]


def setup(profile: str = "book", *, widths: list[int] | None = None,
          noises: list[float] | None = None, seeds: list[int] | None = None,
          **params: Any) -> Setup:
    """Validate a chapter's parameters and return its :class:`Setup`.

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        The profile whose defaults and grids are used.
    widths : list of int or None, default=None
        Widths to sweep; None: the profile's.
    noises : list of float or None, default=None
        Noise levels to sweep; None: the profile's.
    seeds : list of int or None, default=None
        Seeds to sweep; None: the profile's.
    **params : Any
        RunConfig fields (task, p, noise, width, activation, steps, ...); ``None`` means the
        profile default.

    Returns
    -------
    Setup
        The validated base config and grids.

    Raises
    ------
    ConfigError
        Naming the first bad parameter. A grid (``widths``, ``noises``, ``seeds``) must be a
        non-empty list, tuple or 1-D array of valid values: a scalar, a string or an empty list
        is refused, never read as characters or replaced by the profile's grid. For ``mul`` the
        analyses need p >= 3.
    """
    prof = get_profile(profile)
    base = prof.config(**params)  # RunConfig refuses task="mul" with p < 3
    widths = checked_grid("widths", widths, lambda w: base.replace(width=w).width, "integers >= 1")
    noises = checked_grid("noises", noises, validate_noise, "numbers in [0, 1)")
    for a in noises or ():
        base.replace(noise=a)  # the noisy count must fit this split too
    seeds = checked_grid("seeds", seeds, lambda s: base.replace(seed=s).seed, "integers >= 0")
    return Setup(prof, base, widths or prof.widths, noises if noises is not None else prof.noises,
                 seeds or prof.seeds)


def checked_grid(name: str, values: Any, check: Callable[[Any], Any], what: str) -> tuple | None:
    """A grid parameter (of :func:`setup`, or a chapter's own) as a tuple of checked values.

    It must be a non-empty list (or tuple, or 1-D array) of values ``check`` accepts; anything
    else (a scalar, a string, an empty list, a bad element) is a ConfigError naming ``name``.

    Parameters
    ----------
    name : str
        The parameter's name, for the error message.
    values : list, tuple, 1-D array or None
        The values given; None stays None (the caller's default).
    check : callable
        Returns a value checked (and normalised), or raises ConfigError.
    what : str
        What each value must be, in words (e.g. ``"integers >= 0"``).

    Returns
    -------
    tuple or None
        The checked values, or None.

    Raises
    ------
    ConfigError
        ``<name>=<values> is not allowed; it must be a non-empty list of <what>``.
    """
    if values is None:
        return None
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    bad = ConfigError(f"{name}={values!r} is not allowed; it must be a non-empty list of {what}")
    if not isinstance(values, (list, tuple)) or not values:
        raise bad
    try:
        return tuple(check(v) for v in values)
    except ConfigError:
        raise bad from None


def summarize(run: Run) -> dict[str, Any]:
    """Every metric of one run.

    Final raw accuracies, FF under the default rule, the activation swap (test accuracy per
    activation) and the phase error.

    Parameters
    ----------
    run : Run
        A finished run with weights.

    Returns
    -------
    dict
        ``config``, ``key``, the :data:`~memgen.metrics.METRICS`, ``ff`` (metrics of full, G and
        R), ``act_swap`` and ``act_swap_noisy`` (per activation), ``phase_error``, and for
        ``mul`` ``test_acc_nonzero`` (also in ``ff["G"]``).
    """
    data = run.data
    out: dict[str, Any] = {"config": run.config.to_dict(), "key": run.config.key()}
    out.update({k: run.final(k) for k in METRICS})
    G, R = filtration(run.weights, run.config.task)
    out["ff"] = parts_report({"full": run.weights, "G": G, "R": R}, data)
    swap = activation_swap(run.weights, data)
    out["act_swap"] = {a: m["test_acc"] for a, m in swap.items()}
    out["act_swap_noisy"] = {a: m["noisy_acc"] for a, m in swap.items()}
    out["phase_error"] = phase_error(run.weights, run.config.task)["mean"]
    if run.config.task == "mul":
        out["test_acc_nonzero"] = test_accuracy_without_zero(run.weights.predict(), data)
        out["ff"]["G"]["test_acc_nonzero"] = test_accuracy_without_zero(G.predict(), data)
    return out


def table(configs: list[RunConfig], *, progress: bool | None = None) -> list[dict[str, Any]]:
    """Train or load ``configs`` (batched) and return one flat record per run.

    Parameters
    ----------
    configs : list of RunConfig
        The runs.
    progress : bool or None, default=None
        Progress bar while training.

    Returns
    -------
    list of dict
        Per run: the config fields, raw metrics, ``G_*``/``R_*`` filtration metrics and
        ``phase_error``.
    """
    rows = []
    for run in sweep(configs, progress=progress):
        s = summarize(run)
        row = {**s["config"], **{k: s[k] for k in METRICS}, "phase_error": s["phase_error"]}
        for part in ("G", "R"):
            row.update({f"{part}_{k}": v for k, v in s["ff"][part].items()})
        rows.append(row)
    return rows


#: Train or load one run through the default store (the chapters' name for it).
run = train_or_load


def column(rows: list[dict[str, Any]], key: str, **where: Any) -> np.ndarray:
    """Values of ``key`` in the rows matching ``where`` (in row order).

    Parameters
    ----------
    rows : list of dict
        Records as from :func:`table`.
    key : str
        The column.
    **where : Any
        Column values a row must equal to be kept.

    Returns
    -------
    numpy.ndarray
        The kept rows' values.
    """
    return np.array([r[key] for r in rows if all(r[k] == v for k, v in where.items())])
